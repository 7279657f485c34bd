"""Change points in a history: per machine, case and metric, where the series steps, by how much, and
how sure that is.

The search is ruptures' KernelCPD with a linear kernel (PELT on the squared-error cost, in C), run on
the series standardized by a noise scale that steps do not inflate (the median absolute difference of
neighbouring points). Each change it proposes is then tested as Apache Otava tests E-Divisive's
candidates, Welch's t-test between the segments on either side, with two corrections Otava leaves out:
the p-value is multiplied by the number of places the split could have been put (the search chose the
best, so its own p-value flatters it), and over all the series of a history the false discovery rate
is held at 5% (Benjamini-Hochberg, the ALL CASES series and the cases' series each a family of their
own; a history of 55 cases x 5 metrics tests 275 case series at once). Why
not E-Divisive itself: MongoDB's signal-processing-algorithms pins numpy<2 and setuptools<71, and
Apache Otava pins numpy 2.2.0, so neither installs beside torch and pandas 3 (docs/history.md).

A series point is a commit: the median of that commit's runs on that machine, normalized to the
series' own level (value / the series' median; accuracy: minus it, in points), so that every series
reads on one scale. Ratios are compared on the log scale (a step's size is a factor), accuracy in
points. `calibrate=True` first divides each speed by its run's calibration probe (the reference step
measured at the run's start and end); it is off by default because on the 2-core VMs it made the A/A
runs' per-case spread wider, not narrower (docs/history.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import ruptures
from scipy import stats

from dnnbench.core.metrics import METRICS
from dnnbench.results.history.store import History

PENALTY = 3.0  # per change, in units of log(n) x noise variance (BIC's is 2; 3 keeps noise from splitting)
MIN_SIZE = 2  # points on each side of a change: one point alone is an outlier, not a level
MAX_PVALUE = 0.05  # per change, after the correction for where the split was put
FDR = 0.05  # over every series of a history
MIN_CHANGE = {"relative": 0.02, "points": 0.5}  # smaller changes are listed, not called regressions
ALL_CASES = "ALL CASES (geometric mean)"
# The speeds `calibrate` divides by the probe, with their direction (+1: higher is faster).
SPEEDS = {"throughput_samples_per_s": 1, "time_to_target_s": -1, "step_time_ms_median": -1}


@dataclass(frozen=True)
class Step:
    index: int  # the first point of the new level
    size: float  # factor − 1 (ratios) or points (accuracy)
    pvalue: float


def _in_points(metric: str) -> bool:
    return metric in METRICS and METRICS[metric].kind == "accuracy"


def _noise_scale(y: np.ndarray) -> float:
    diffs = np.diff(y)
    mad = float(np.median(np.abs(diffs - np.median(diffs)))) / 0.6745 / np.sqrt(2)
    if mad > 0:
        return mad
    spread = float(np.std(diffs)) / np.sqrt(2)
    return spread if spread > 0 else 0.0


def _pvalue(before: np.ndarray, after: np.ndarray) -> float:
    if before.std() == 0 and after.std() == 0:
        return 0.0 if before.mean() != after.mean() else 1.0
    return float(stats.ttest_ind(before, after, equal_var=False).pvalue)


def steps(
    values: np.ndarray | list[float],
    in_points: bool = False,
    penalty: float = PENALTY,
    min_size: int = MIN_SIZE,
    max_pvalue: float = MAX_PVALUE,
) -> list[Step]:
    """The level changes of one series (in order, no missing values): ratios (positive) on the log scale,
    or, `in_points`, values already in points."""
    raw = np.asarray(values, dtype=float)
    y = raw if in_points else np.log(raw)
    n = len(y)
    if n < 2 * min_size:
        return []
    scale = _noise_scale(y)
    if scale == 0.0:
        return []  # a constant series
    z = (y - np.median(y)) / scale
    ends = ruptures.KernelCPD(kernel="linear", min_size=min_size).fit(z).predict(pen=penalty * np.log(n))
    bounds = [0, *[int(e) for e in ends]]
    out = []
    for i in range(1, len(bounds) - 1):
        before, after = y[bounds[i - 1] : bounds[i]], y[bounds[i] : bounds[i + 1]]
        places = len(before) + len(after) - 2 * min_size + 1  # where in this stretch the split could be
        p = min(1.0, _pvalue(before, after) * places)
        if p > max_pvalue:
            continue
        shift = float(np.mean(after) - np.mean(before))
        out.append(Step(bounds[i], shift if in_points else float(np.expm1(shift)), p))
    return out


# --- a history's series -------------------------------------------------------------------------------------


def _ordered_runs(history: History) -> pd.DataFrame:
    """The finished runs with `rank`, their place in commit order: committer time, then the number of
    ancestors (commits made within one second, as a rebase makes, share a time), then when each was
    measured."""
    runs = history.runs[history.runs["status"] == "ok"].copy()
    if runs.empty:
        return runs.assign(rank=pd.Series(dtype=int))
    runs["time"] = pd.to_datetime(runs["commit_time"], utc=True, format="ISO8601")
    runs["ancestors"] = pd.to_numeric(runs["ancestors"], errors="coerce") if "ancestors" in runs else np.nan
    runs["measured"] = runs["started_at"].fillna("") if "started_at" in runs else ""
    runs = runs.sort_values(["time", "ancestors", "measured", "run"], kind="stable", na_position="last")
    runs["rank"] = np.arange(len(runs))
    return runs


def series(history: History, metrics: list[str], calibrate: bool = False) -> pd.DataFrame:
    """Long form, one row per machine x case x metric x commit, in commit order (`_ordered_runs`): `value`
    (the median of the commit's runs), `normalized` (relative to the series' median; speeds first divided
    by the calibration when `calibrate`), and `run` (the commit's latest run on that machine). A ratio
    that is not positive (a throughput of 0) has no log: it is left out, as a missing figure is."""
    columns = ["machine", "case", "metric", "commit", "commit_time", "value", "normalized", "run"]
    runs = _ordered_runs(history)
    if runs.empty or history.points.empty:
        return pd.DataFrame(columns=columns)
    runs["calibration"] = pd.to_numeric(runs["calibration"], errors="coerce") if "calibration" in runs else np.nan
    runs["typical"] = runs.groupby("machine")["calibration"].transform("median")
    keep = ["run", "commit", "commit_time", "rank", "machine", "calibration", "typical"]
    frame = history.points.merge(runs[keep], on="run")
    long = frame.melt(
        id_vars=[*keep, "case"], value_vars=[m for m in metrics if m in frame], var_name="metric", value_name="value"
    ).dropna(subset=["value"])
    ratio = ~long["metric"].map(_in_points).astype(bool)
    long = long[~ratio | (long["value"] > 0)]
    long["normalized"] = long["value"]
    if calibrate:
        for metric in long["metric"].unique():
            if metric not in SPEEDS:
                continue
            rows = (long["metric"] == metric) & long["calibration"].notna()
            factor = long.loc[rows, "calibration"] / long.loc[rows, "typical"]  # > 1: the machine ran fast
            long.loc[rows, "normalized"] = long.loc[rows, "value"] / factor ** SPEEDS[metric]
    keys = ["machine", "case", "metric", "commit"]
    order = [*keys[:3], "rank"]
    long = long.sort_values(order, kind="stable")
    if long.duplicated(keys).any():  # a commit measured more than once on a machine: the median of its runs
        grouped = long.groupby(keys, sort=False)
        first = grouped[["commit_time", "rank"]].first()
        first["value"] = grouped["value"].median()
        first["normalized"] = grouped["normalized"].median()
        first["run"] = grouped["run"].last()
        long = first.reset_index().sort_values(order, kind="stable")
    out = long[[*columns, "rank"]].reset_index(drop=True)
    level = out.groupby(["machine", "case", "metric"], sort=False)["normalized"].transform("median")
    points = out["metric"].map(_in_points).astype(bool)
    out["normalized"] = (out["normalized"] / level).where(~points, (out["normalized"] - level) * 100.0)
    out = pd.concat([_all_cases(out), out], ignore_index=True)
    return out.drop(columns=["rank"])


def _all_cases(out: pd.DataFrame) -> pd.DataFrame:
    """Per machine and metric, the series over all cases: per commit, the geometric mean of the cases'
    normalized values (accuracy: their mean in points). A change too small to tell from one case's noise
    in a few commits shows here when it moves every case (the gate's aggregate, over commits)."""
    rows = out.assign(log=np.log(out["normalized"].where(out["normalized"] > 0)))
    points = rows["metric"].map(_in_points).astype(bool)
    rows["log"] = rows["log"].where(~points, rows["normalized"])
    keys = ["machine", "metric", "commit"]
    agg = rows.drop_duplicates(keys)[[*keys, "commit_time", "rank", "run"]]
    mean = rows.groupby(keys, sort=False)["log"].mean().rename("normalized")
    agg = agg.merge(mean, left_on=keys, right_index=True)
    ratio = ~agg["metric"].map(_in_points).astype(bool)
    agg.loc[ratio, "normalized"] = np.exp(agg.loc[ratio, "normalized"])
    agg["value"] = agg["normalized"]
    agg["case"] = ALL_CASES
    return agg.sort_values(["machine", "metric", "rank"], kind="stable")[out.columns]


def changes(frame: pd.DataFrame, fdr: float = FDR, **options: float) -> pd.DataFrame:
    """Every change point of every series in `frame` (from `series`): machine, case, metric, the commit
    range it points to (`after`..`commit`: the last commit of the old level, the first of the new), its
    size (a fraction, or points for accuracy), p-value (corrected for where the split was put), q-value
    (over all series), confidence (1 − q), whether it is a regression, and whether the newest level is
    still that much worse (`still`: a regression fixed since reads False)."""
    # Two families, each with its false discovery rate: the ALL CASES series (a few, chosen beforehand, as
    # the gate's aggregate is) and the cases' series (hundreds).
    found: dict[bool, list] = {True: [], False: []}
    tested = {True: 0, False: 0}
    for (machine, case, metric), group in frame.groupby(["machine", "case", "metric"], sort=False):
        values = group["normalized"].to_numpy(dtype=float)
        in_points = _in_points(metric)
        family = case == ALL_CASES
        tested[family] += len(values) >= 2 * MIN_SIZE
        y = values if in_points else np.log(values)
        commits, times = group["commit"].to_list(), group["commit_time"].to_list()
        for s in steps(values, in_points, **options):  # type: ignore[arg-type]
            found[family].append((machine, case, metric, s, y, commits, times))
    kept = []
    for family, items in found.items():
        pvalues = [f[3].pvalue for f in items] + [1.0] * max(0, tested[family] - len(items))
        qvalues = stats.false_discovery_control(pvalues)[: len(items)] if items else []
        kept += [(f, q) for f, q in zip(items, qvalues, strict=True) if q <= fdr]
    bounds: dict[tuple[str, str, str], list[int]] = {}
    for f, _ in kept:
        bounds.setdefault(f[:3], []).append(f[3].index)
    rows = []
    for (machine, case, metric, s, y, commits, times), q in kept:
        in_points = _in_points(metric)
        direction = METRICS[metric].direction
        floor = MIN_CHANGE["points" if in_points else "relative"]
        worse = direction != 0 and np.sign(s.size) == -direction and abs(s.size) >= floor
        cuts = sorted(bounds[(machine, case, metric)])
        previous = max([0, *[c for c in cuts if c < s.index]])
        newest = float(np.mean(y[cuts[-1] :])) - float(np.mean(y[previous : s.index]))
        newest_size = newest if in_points else float(np.expm1(newest))
        still = bool(worse) and np.sign(newest_size) == np.sign(s.size) and abs(newest_size) >= floor
        rows.append(
            {
                "machine": machine,
                "case": case,
                "metric": metric,
                "kind": "level",
                "after": commits[s.index - 1],
                "commit": commits[s.index],
                "commit_time": times[s.index],
                "points_before": s.index,
                "size": s.size,
                "pvalue": s.pvalue,
                "qvalue": float(q),
                "confidence": 1.0 - float(q),
                "regression": bool(worse),
                "still": still,
            }
        )
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


CHANGE_COLUMNS = [
    "machine", "case", "metric", "kind", "after", "commit", "commit_time", "points_before", "size", "pvalue",
    "qvalue", "confidence", "regression", "still",
]  # fmt: skip


def state_changes(history: History) -> pd.DataFrame:
    """A case that stops reaching its target, or starts failing, and stays so: a regression with no size
    (a level change cannot see it: the figure is gone). `MIN_SIZE` commits of each state either side."""
    runs = _ordered_runs(history)
    if runs.empty or history.points.empty:
        return pd.DataFrame(columns=CHANGE_COLUMNS)
    frame = history.points.merge(runs[["run", "commit", "commit_time", "machine", "rank"]], on="run")
    frame = frame.sort_values(["machine", "case", "rank"], kind="stable")
    missed = frame.get("time_to_target_missed", pd.Series(False, index=frame.index)).fillna(False).astype(bool)
    frame["reached"] = np.where(frame["time_to_target_s"].notna(), 1.0, np.where(missed, 0.0, np.nan))
    frame["healthy"] = (frame["ok"] >= frame["seeds"]).astype(float)
    rows = []
    for (machine, case), group in frame.groupby(["machine", "case"], sort=False):
        group = group.drop_duplicates("commit", keep="last")
        for column, metric, kind in (("healthy", "status", "fails"), ("reached", "time_to_target_s", "target lost")):
            known = group[group[column].notna()]
            flags = known[column].to_numpy()
            for i in range(MIN_SIZE, len(flags) - MIN_SIZE + 1):
                if flags[i - MIN_SIZE : i].all() and not flags[i:].any():  # good before, bad ever since
                    rows.append(
                        {
                            "machine": machine,
                            "case": case,
                            "metric": metric,
                            "kind": kind,
                            "after": known["commit"].iloc[i - 1],
                            "commit": known["commit"].iloc[i],
                            "commit_time": known["commit_time"].iloc[i],
                            "points_before": i,
                            "size": float("nan"),
                            "pvalue": float("nan"),
                            "qvalue": float("nan"),
                            "confidence": float("nan"),
                            "regression": True,
                            "still": True,
                        }
                    )
                    break
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


def new_since(found: pd.DataFrame, is_new: Callable[[str, str], bool]) -> pd.DataFrame:
    """The regressions still there at the newest commit whose first commit is new (`is_new(commit,
    commit_time)`: not in the history of the tag or ref; front-ends ask git)."""
    regressions = found[found["regression"] & found["still"]]
    if regressions.empty:
        return regressions
    new = [is_new(c, t) for c, t in zip(regressions["commit"], regressions["commit_time"], strict=True)]
    return regressions[new]


def describe(change: Any) -> str:
    """A change's size in words: a factor, points of accuracy, or what stopped working."""
    if change.kind == "target lost":
        return "no longer reached"
    if change.kind == "fails":
        return "fails now"
    return f"{change.size:+.2f} pt" if _in_points(change.metric) else f"{change.size:+.1%}"
