"""Tuning results: the best learning rate per problem and optimizer (on validation only), default
against tuned, and AlgoPerf-style performance profiles. Pure pandas over records."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from dnnbench.results.frames import listed_in

TAU_MAX = 4.0  # performance profiles run from τ = 1 to 4 (AlgoPerf)


def _problem(frame: pd.DataFrame) -> pd.Series:
    reg = frame["regularization"].where(frame["regularization"] != "none", "")
    return frame["workload"] + np.where(reg != "", "+" + reg, "")


def trials(frame: pd.DataFrame) -> pd.DataFrame:
    """The sweep's trials (suite 'tuning'): problem, optimizer, lr, status, the validation score (higher is
    better: best validation accuracy, or minus the best validation loss for regression) and training time."""
    rows = frame[listed_in(frame, "tuning")].copy()
    if rows.empty:
        return rows
    rows["problem"] = _problem(rows)
    rows["lr_value"] = pd.to_numeric(rows["resolved_lr"], errors="coerce")
    classification = rows["target_metric"].fillna("").str.endswith("accuracy")
    score = np.where(classification, rows["best_val_accuracy"], -rows["best_val_loss"])
    rows["score"] = pd.Series(score, index=rows.index).where(rows["status"] == "ok")  # diverged: no score
    return rows


@dataclass(frozen=True)
class TunedChoice:
    """The choice for one problem and optimizer. A rate no trial reached a score with is None, never NaN
    (a NaN is truthy and once became Case(lr=nan))."""

    problem: str
    workload: str
    regularization: str
    optimizer: str
    default_lr: float | None
    tuned_lr: float | None  # None: every trial diverged or failed
    default_score: float | None
    tuned_score: float | None
    trials: int
    diverged: int
    tuning_cost_s: float


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def choose(frame: pd.DataFrame) -> list[TunedChoice]:
    """Per problem and optimizer: the default and the tuned rate (best validation score; a diverged trial
    never wins), the score at each, how many trials, and the tuning cost (training seconds of the sweep).
    The test set plays no part in the choice."""
    t = trials(frame)
    if t.empty:
        return []
    out = []
    for (problem, optimizer), group in t.groupby(["problem", "optimizer"], sort=False):
        scored = group.dropna(subset=["score"])
        default = group[group["lr"].isna()]
        best = scored.loc[scored["score"].idxmax()] if len(scored) else None
        out.append(
            TunedChoice(
                problem=str(problem),
                workload=str(group["workload"].iloc[0]),
                regularization=str(group["regularization"].iloc[0]),
                optimizer=str(optimizer),
                default_lr=_number(default["lr_value"].iloc[0]) if len(default) else None,
                tuned_lr=_number(best["lr_value"]) if best is not None else None,
                default_score=_number(default["score"].iloc[0]) if len(default) else None,
                tuned_score=_number(best["score"]) if best is not None else None,
                trials=len(group),
                diverged=int((group["status"] == "diverged").sum()),
                tuning_cost_s=float(group["train_time_s"].sum()),
            )
        )
    return out


def select(frame: pd.DataFrame) -> pd.DataFrame:
    """choose() as a table, for the report (a missing rate shows as NaN there, and only there)."""
    return pd.DataFrame([asdict(choice) for choice in choose(frame)])


def reruns(frame: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The re-runs on fresh seeds (suites 'default' and 'tuned'): per problem, optimizer and setting the
    median time to target over seeds (None: not reached by most seeds) and test accuracy."""
    rows = []
    for setting in ("default", "tuned"):
        part = frame[listed_in(frame, setting)].copy()
        if part.empty:
            continue
        part["problem"] = _problem(part)
        for (problem, optimizer), group in part.groupby(["problem", "optimizer"], sort=False):
            times = group["time_to_target_s"].where(group["status"] == "ok")
            reached = times.notna().sum()
            median = float(times.fillna(math.inf).median())  # a seed that missed counts as never reaching it
            rows.append(
                {
                    "problem": problem,
                    "optimizer": optimizer,
                    "setting": setting,
                    "lr": float(pd.to_numeric(group["resolved_lr"], errors="coerce").iloc[0]),
                    "seeds": len(group),
                    "reached": int(reached),
                    "time_to_target_s": median if math.isfinite(median) else None,
                    "final_test_accuracy": group["final_test_accuracy"].median(),
                    "final_test_loss": group["final_test_loss"].median(),
                }
            )
    return pd.DataFrame(rows)


def profile_times(runs: pd.DataFrame) -> pd.DataFrame:
    """Problems x 'optimizer (setting)' times to target from the re-runs (NaN: ran, missed the target).

    Pooled over the default and tuned settings, so that each problem has one best time and the scores at
    default and at tuned rates are on one scale; and only the problems every optimizer ran, since an
    optimizer that was not run on a problem (the race runs 5 of the 8) has not failed it."""
    if runs.empty:
        return pd.DataFrame()
    everyone = set(runs["optimizer"])
    ran = runs.groupby("problem")["optimizer"].agg(set)
    shared = runs[runs["problem"].isin([p for p, optimizers in ran.items() if optimizers == everyone])]
    labelled = shared.assign(label=shared["optimizer"] + " (" + shared["setting"] + ")")
    times = labelled.set_index(["problem", "label"])["time_to_target_s"]
    return pd.to_numeric(times, errors="coerce").unstack("label")


def performance_profile(times: pd.DataFrame, taus: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """AlgoPerf-style profiles from a problems × optimizers table of times to target (NaN: not reached).

    ρ_o(τ) is the share of problems where optimizer o's time is within τ × the best time on that problem;
    the score is the area under ρ_o from τ = 1 to TAU_MAX, divided by TAU_MAX − 1 (1: best everywhere,
    0: never within 4x). Problems nobody solved are left out. Returns (ρ at each τ, score per optimizer)."""
    solved = times.dropna(how="all")
    taus = np.linspace(1, TAU_MAX, 121) if taus is None else taus
    if solved.empty:
        return pd.DataFrame(index=taus), pd.Series(dtype=float)
    ratios = solved.div(solved.min(axis=1), axis=0).fillna(np.inf)
    rho = pd.DataFrame({o: [(ratios[o] <= tau).mean() for tau in taus] for o in ratios.columns}, index=taus)
    score = ((TAU_MAX - ratios.clip(lower=1.0)).clip(lower=0.0) / (TAU_MAX - 1)).mean()
    return rho, score


POPULAR = "adam"  # the optimizer a user would tune if they tuned one
MATCH = 0.1  # the defaults "match" tuning one optimizer when their times to target are within 10%


@dataclass(frozen=True)
class CrowdedValley:
    """The Crowded Valley question for one problem (Schmidt et al. 2021): does trying every optimizer at
    its default rate reach the target as soon as tuning the popular one? Times are medians over the
    fresh seeds; `unanswerable` says why there is no answer (no optimizer reached the target)."""

    problem: str
    tried: int
    unanswerable: str | None = None
    best_default: tuple[str, float] | None = None  # (optimizer, seconds)
    popular_tuned: float | None = None  # seconds; None when it never reached the target
    best_tuned: tuple[str, float] | None = None

    @property
    def verdict(self) -> str | None:
        """'match', 'beat' or 'lose to': the best default against the popular optimizer tuned."""
        if self.best_default is None or self.popular_tuned is None:
            return None
        ratio = self.best_default[1] / self.popular_tuned
        return "match" if abs(ratio - 1) <= MATCH else "beat" if ratio < 1 else "lose to"


def crowded_valley(frame: pd.DataFrame) -> list[CrowdedValley]:
    runs = reruns(frame, select(frame))
    out: list[CrowdedValley] = []
    for problem, group in [] if runs.empty else runs.groupby("problem", sort=False):
        tried = group.loc[group["setting"] == "default", "optimizer"].nunique()
        default = group[group["setting"] == "default"].dropna(subset=["time_to_target_s"])
        tuned = group[group["setting"] == "tuned"].dropna(subset=["time_to_target_s"])
        if default.empty or tuned.empty:
            which = "default" if default.empty else "tuned"
            out.append(CrowdedValley(str(problem), tried, f"no optimizer reached the target at {which} rates"))
            continue
        best_d = default.loc[default["time_to_target_s"].idxmin()]
        best_t = tuned.loc[tuned["time_to_target_s"].idxmin()]
        popular = tuned.loc[tuned["optimizer"] == POPULAR, "time_to_target_s"]
        out.append(
            CrowdedValley(
                str(problem),
                tried,
                best_default=(str(best_d.optimizer), float(best_d.time_to_target_s)),
                popular_tuned=float(popular.iloc[0]) if len(popular) else None,
                best_tuned=(str(best_t.optimizer), float(best_t.time_to_target_s)),
            )
        )
    return out
