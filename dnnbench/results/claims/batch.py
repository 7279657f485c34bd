"""The note's claims about batch size: mini-batches (1), full batch (2), batch 1 (3), the 50–256 sweet spot (15).

Claims 1–3 read the batch regimes: one setting (plain Adam, no regularization, the tensor loader) at batch 1,
a mini-batch and the whole training set, matched on every other field but the budget (batch 1 runs on
seconds, the full batch on more epochs). A target missed counts as "at least the time it trained".
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from dnnbench.results.claims.select import (
    BUDGET_FIELDS,
    by_seed,
    case_ids,
    finished,
    matched_groups,
    ratio_by_seed,
)
from dnnbench.results.claims.verdicts import Claim, Estimate, judged, none_measured, unmeasured

BATCH_SPEEDUP = 2.0  # "uses matrix math well": a mini-batch trains at least 2x the samples/s of batch 1
FULL_PASS_SHARE = 0.5  # "a full pass per step": a full-batch step costs at least half a mini-batch epoch
STEP_SHARE = 0.5  # "fast per step": a batch-1 step takes at most half a mini-batch step
SWEET_SPOT = (50, 256)  # the note's usual mini-batch sizes
NOTE_RUN = "make bench MATRIX=note"


def regimes(frame: pd.DataFrame) -> dict[str, pd.DataFrame] | None:
    """{'1', 'm', 'full'}: rows of one setting at batch 1, a mini-batch (the one nearest 100, the note's) and the
    whole training set. The setting run under the most seeds (an interval needs two), then the note's protocol."""
    rows = finished(frame)
    rows = with_targets(rows[(rows["regularization"] == "none") & (rows["loader"] == "tensor")])
    rows = rows[~rows["stop_at_target"].astype(bool)] if "stop_at_target" in rows else rows
    complete = []
    for group in matched_groups(rows, ["batch_size", "batch", *BUDGET_FIELDS]):
        sizes = set(group["batch"])
        minis = [int(b) for b in sizes - {"1", "full"}]
        if {"1", "full"} <= sizes and minis:
            complete.append((group, min(minis, key=lambda b: abs(np.log(b / 100)))))
    if not complete:
        return None
    group, mini = max(complete, key=lambda gm: (gm[0]["seed"].nunique(), (gm[0]["protocol"] == "note").all()))
    return {
        "1": group[group["batch"] == "1"],
        "m": group[group["batch"] == str(mini)],
        "full": group[group["batch"] == "full"],
    }


def _window(groups: list[pd.DataFrame], seed: int, clock: str, spent: str) -> tuple[float, float] | None:
    """Where the soonest of `groups` reached the target under `seed`, as [low, high]: exact when every case
    reached it (or missed having spent more than the soonest took); a case that missed counts as at least
    what it spent. None when any case has no figure for the seed (it failed): it might have been soonest."""
    low = high = float("inf")
    for rows in groups:
        reached, used = by_seed(rows, clock).dropna(), by_seed(rows, spent).dropna()
        if seed in reached.index:
            low, high = min(low, float(reached[seed])), min(high, float(reached[seed]))
        elif seed in used.index:
            low = min(low, float(used[seed]))
        else:
            return None
    return low, high


def time_ratio(
    a: list[pd.DataFrame], b: list[pd.DataFrame], clock: str = "time_to_target_s", spent: str = "train_time_s"
) -> pd.Series:
    """Per seed, the soonest of `a` to the target over the soonest of `b` (time, or steps with clock/spent).
    A miss is a lower bound: where it still decides which side was sooner, the bound stands in for the time;
    where it does not (one side missed having spent less than the other needed), or a case failed, the seed
    is NaN (undecided)."""
    seeds = sorted({int(s) for rows in (*a, *b) for s in rows["seed"]})
    out = {}
    for seed in seeds:
        wa, wb = _window(a, seed, clock, spent), _window(b, seed, clock, spent)
        if wa is None or wb is None:
            out[seed] = np.nan
        elif wa[0] == wa[1] and wb[0] == wb[1]:
            out[seed] = wa[0] / wb[0] if np.isfinite(wa[0]) and np.isfinite(wb[0]) else np.nan
        elif wa[1] < wb[0]:  # a reached before b had even stopped trying: a sooner, by at least this much
            out[seed] = wa[1] / wb[0]
        elif wb[1] < wa[0]:
            out[seed] = wa[0] / wb[1]
        else:
            out[seed] = np.nan
    return pd.Series(out, dtype=float)


def with_targets(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of the workloads that have a target (not random labels), failed ones included: a record of a
    case that failed before training carries no target, but its seed must still count."""
    return rows[rows["workload"].isin(rows.loc[rows["target_value"].notna(), "workload"])]


def _missed(rows: pd.DataFrame, clock: str) -> bool:
    return bool(rows[clock].isna().any()) if clock in rows else True


def _where(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    return f"{first['workload']}, {first['protocol']} protocol"


NO_REGIMES = "no batch 1 / mini-batch / full-batch cases of one setting in this run"


def claim_minibatch(frame: pd.DataFrame) -> Claim:
    text = "Mini-batch gradient descent balances the two extremes and uses matrix math well."
    math_rule = f"throughput at the mini-batch / at batch 1 above {BATCH_SPEEDUP:g}"
    balance_rule = (
        "training time to the target: the nearer extreme's (what it trained, if it missed) / the mini-batch's, above 1"
    )
    b = regimes(frame)
    if b is None:
        rules = {"uses matrix math well": math_rule, "balances the extremes": balance_rule}
        return none_measured(1, text, rules, NO_REGIMES, NOTE_RUN)
    m = b["m"]["batch"].iloc[0]
    speed = Estimate.ratios(
        ratio_by_seed(by_seed(b["m"], "throughput_samples_per_s"), by_seed(b["1"], "throughput_samples_per_s"))
    )
    parts = [
        judged(
            "uses matrix math well",
            math_rule,
            speed,
            f"{_where(b['m'])}: batch {m} / batch 1 samples/s",
            above=BATCH_SPEEDUP,
        )
    ]
    balance = Estimate.ratios(time_ratio([b["1"], b["full"]], [b["m"]]).to_numpy())
    parts.append(
        judged(
            "balances the extremes",
            balance_rule,
            balance,
            "nearer extreme's time / the mini-batch's",
            above=1.0,
            missing=f"no seed decided it: batch {m} missed the target, or a case failed",
            settle="a longer budget (more epochs), or runs that finish",
        )
    )
    return Claim(1, text, tuple(parts), case_ids(b["1"], b["m"], b["full"]))


def claim_full_batch(frame: pd.DataFrame) -> Claim:
    text = "Batch gradient descent has the steadiest updates but costs a full pass over the data per step."
    steady_rule = "loss noise (docs/metrics.md) at full batch / the lower of batch 1's and the mini-batch's, below 1"
    cost_rule = (
        f"time per sample at full batch / at the mini-batch (a step / a mini-batch epoch), above {FULL_PASS_SHARE:g}"
    )
    b = regimes(frame)
    if b is None:
        rules = {"steadiest updates": steady_rule, "costs a full pass per step": cost_rule}
        return none_measured(2, text, rules, NO_REGIMES, NOTE_RUN)
    m = b["m"]["batch"].iloc[0]
    others = pd.concat([by_seed(b["1"], "loss_noise"), by_seed(b["m"], "loss_noise")], axis=1).min(axis=1, skipna=False)
    steady = Estimate.ratios(ratio_by_seed(by_seed(b["full"], "loss_noise"), others))
    cost = Estimate.ratios(
        ratio_by_seed(by_seed(b["m"], "throughput_samples_per_s"), by_seed(b["full"], "throughput_samples_per_s"))
    )
    parts = (
        judged(
            "steadiest updates",
            steady_rule,
            steady,
            "full batch's loss noise / the others'",
            below=1.0,
            missing="no loss noise for the full batch or the others (it needs 10 steps or more)",
            settle="12 or more full-batch steps (epochs)",
        ),
        judged(
            "costs a full pass per step",
            cost_rule,
            cost,
            f"per-sample time full / batch {m}",
            above=FULL_PASS_SHARE,
        ),
    )
    return Claim(2, text, parts, case_ids(b["1"], b["m"], b["full"]))


def claim_sgd(frame: pd.DataFrame) -> Claim:
    text = "Stochastic gradient descent (batch 1) is fast per step but noisy and needs more iterations."
    fast_rule = f"step time at batch 1 / at the mini-batch, below {STEP_SHARE:g}"
    noisy_rule = "loss noise at batch 1 / at the mini-batch, above 1"
    more_rule = "steps to the target at batch 1 (the steps it ran, if it missed) / the mini-batch's, above 1"
    b = regimes(frame)
    if b is None:
        rules = {"fast per step": fast_rule, "noisy": noisy_rule, "needs more iterations": more_rule}
        return none_measured(3, text, rules, NO_REGIMES, NOTE_RUN)
    m = b["m"]["batch"].iloc[0]
    step = Estimate.ratios(
        ratio_by_seed(by_seed(b["1"], "step_time_ms_median"), by_seed(b["m"], "step_time_ms_median"))
    )
    noisy = Estimate.ratios(ratio_by_seed(by_seed(b["1"], "loss_noise"), by_seed(b["m"], "loss_noise")))
    more = Estimate.ratios(time_ratio([b["1"]], [b["m"]], "steps_to_target", "steps").to_numpy())
    parts = (
        judged("fast per step", fast_rule, step, f"step time batch 1 / batch {m}", below=STEP_SHARE),
        judged("noisy", noisy_rule, noisy, f"loss noise batch 1 / batch {m}", above=1.0),
        judged(
            "needs more iterations",
            more_rule,
            more,
            f"steps batch 1 / batch {m}",
            above=1.0,
            missing=f"no seed decided it: batch {m} missed the target, or a case failed",
            settle="a longer budget (more epochs), or runs that finish",
        ),
    )
    if more is not None and not _missed(b["m"], "steps_to_target") and _missed(b["1"], "steps_to_target"):
        parts = (*parts[:2], replace(parts[2], figure=parts[2].figure + " (batch 1 missed: the steps it ran)"))
    return Claim(3, text, parts, case_ids(b["1"], b["m"]))


def sweep(frame: pd.DataFrame) -> pd.DataFrame | None:
    """A batch-size sweep: one setting at 4 or more batch sizes, some inside the sweet spot and some outside."""
    rows = finished(frame)
    rows = with_targets(rows[rows["batch"] != "full"])
    for group in matched_groups(rows, ["batch_size", "batch"]):
        sizes = {int(b) for b in group["batch"]}
        inside = {s for s in sizes if SWEET_SPOT[0] <= s <= SWEET_SPOT[1]}
        if len(sizes) >= 4 and inside and sizes - inside:
            return group
    return None


def claim_sweet_spot(frame: pd.DataFrame) -> Claim:
    text = "Mini-batches of 50–256 samples are the usual choice (pick by trying several)."
    rule = "best time to the target inside 50–256 / best outside (what a case trained, if it missed), below 1"
    rows = sweep(frame)
    if rows is None:
        return Claim(
            15,
            text,
            (
                unmeasured(
                    "50–256 reach the target soonest", rule, "no batch-size sweep (4+ sizes) in this run", NOTE_RUN
                ),
            ),
        )
    size = rows["batch"].astype(int)
    inside = (size >= SWEET_SPOT[0]) & (size <= SWEET_SPOT[1])
    reached = {b: by_seed(g, "time_to_target_s") for b, g in rows.groupby("batch")}
    inner, outer = set(rows.loc[inside, "batch"]), set(rows.loc[~inside, "batch"])
    groups = dict(list(rows.groupby("batch")))
    estimate = Estimate.ratios(time_ratio([groups[b] for b in inner], [groups[b] for b in outer]).to_numpy())
    failed = {b for b, g in groups.items() if (g["status"] != "ok").any()}
    medians = {int(b): float(v.fillna(np.inf).median()) for b, v in reached.items()}  # a miss counts as never
    order = ", ".join(
        f"{b}: {'failed' if str(b) in failed else 'not reached' if np.isinf(t) else f'{t:.3g} s'}"
        for b, t in sorted(medians.items())
    )
    part = judged(
        "50–256 reach the target soonest",
        rule,
        estimate,
        lambda e: f"best inside / best outside {e.text()} (median time to target by batch: {order})",
        below=1.0,
        missing="no seed decided it: no size reached the target, or a size failed",
        settle="a longer budget (more epochs), or runs that finish",
    )
    return Claim(15, text, (part,), case_ids(rows))
