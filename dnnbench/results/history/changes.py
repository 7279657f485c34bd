"""Change points in a history: per machine, case and metric, where the series steps, by how much, and
how sure that is.

The search is ruptures' KernelCPD with a linear kernel (PELT on the squared-error cost, in C), run on
the series standardized by a noise scale that steps do not inflate (the median absolute difference of
neighbouring points). Each change it proposes is then tested as Apache Otava tests E-Divisive's
candidates: Welch's t-test between the segments on either side; a change with p above `max_pvalue` is
dropped. Why not E-Divisive itself: MongoDB's signal-processing-algorithms pins numpy<2 and
setuptools<71, and Apache Otava pins numpy 2.2.0, so neither installs beside torch and pandas 3
(docs/history.md).

A series point is a commit: the median of that commit's runs on that machine, normalized to the
series' own level (value / the series' median; accuracy: minus it, in points), so that every series
reads on one scale. Ratios are compared on the log scale (a step's size is a factor), accuracy in
points. `calibrate=True` first divides each speed by its run's calibration probe (the reference step
measured at the run's start and end); it is off by default because on the 2-core VMs it made the A/A
runs' per-case spread wider, not narrower (docs/history.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import ruptures
from scipy import stats

from dnnbench.core.metrics import METRICS
from dnnbench.results.history.store import History

PENALTY = 3.0  # per change, in units of log(n) x noise variance (BIC's is 2; 3 keeps noise from splitting)
MIN_SIZE = 2  # points on each side of a change: one point alone is an outlier, not a level
MAX_PVALUE = 0.01
MIN_CHANGE = {"relative": 0.02, "points": 0.5}
ALL_CASES = "ALL CASES (geometric mean)"  # smaller changes are listed, not called regressions


@dataclass(frozen=True)
class Step:
    index: int  # the first point of the new level
    size: float  # factor − 1 (ratios) or points (accuracy)
    pvalue: float


def _in_points(metric: str) -> bool:
    return METRICS[metric].kind == "accuracy"


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
        p = _pvalue(before, after)
        if p > max_pvalue:
            continue
        shift = float(np.mean(after) - np.mean(before))
        out.append(Step(bounds[i], shift if in_points else float(np.expm1(shift)), p))
    return out


# --- a history's series -------------------------------------------------------------------------------------


def series(history: History, metrics: list[str], calibrate: bool = False) -> pd.DataFrame:
    """Long form, one row per machine x case x metric x commit, ordered by commit time: `value` (the median
    of the commit's runs), `normalized` (relative to the series' median; speeds first divided by the
    calibration when `calibrate`), and `run` (the commit's latest run on that machine)."""
    columns = ["machine", "case", "metric", "commit", "commit_time", "value", "normalized", "run"]
    runs = history.runs[history.runs["status"] == "ok"].copy()
    if runs.empty or history.points.empty:
        return pd.DataFrame(columns=columns)
    runs["time"] = pd.to_datetime(runs["commit_time"], utc=True, format="ISO8601")
    # commits made within one second (a rebase, a cherry-pick) tie on commit time: the order they were
    # measured in breaks the tie (a range is measured oldest first, CI measures pushes as they come)
    runs["measured"] = runs["started_at"].fillna("") if "started_at" in runs else ""
    runs["calibration"] = pd.to_numeric(runs["calibration"], errors="coerce")
    runs["typical"] = runs.groupby("machine")["calibration"].transform("median")
    keep = ["run", "commit", "commit_time", "time", "measured", "machine", "calibration", "typical"]
    frame = history.points.merge(runs[keep], on="run")
    long = frame.melt(
        id_vars=[*keep, "case"], value_vars=[m for m in metrics if m in frame], var_name="metric", value_name="value"
    ).dropna(subset=["value"])
    long["normalized"] = long["value"]
    if calibrate:
        for metric in long["metric"].unique():
            m = METRICS[metric]
            if not m.speed:
                continue
            rows = (long["metric"] == metric) & long["calibration"].notna()
            factor = long.loc[rows, "calibration"] / long.loc[rows, "typical"]  # > 1: the machine ran fast
            long.loc[rows, "normalized"] = long.loc[rows, "value"] / factor**m.direction
    keys = ["machine", "case", "metric", "commit"]
    order = [*keys[:3], "time", "measured", "run"]
    long = long.sort_values(order, kind="stable")
    if long.duplicated(keys).any():  # a commit measured more than once on a machine: the median of its runs
        grouped = long.groupby(keys, sort=False)
        first = grouped[["commit_time", "time", "measured"]].first()
        first["value"] = grouped["value"].median()
        first["normalized"] = grouped["normalized"].median()
        first["run"] = grouped["run"].last()
        long = first.reset_index().sort_values(order, kind="stable")
    out = long[[*columns, "time", "measured"]].reset_index(drop=True)
    level = out.groupby(["machine", "case", "metric"], sort=False)["normalized"].transform("median")
    points = out["metric"].map(_in_points).astype(bool)
    out["normalized"] = (out["normalized"] / level).where(~points, (out["normalized"] - level) * 100.0)
    out = pd.concat([_all_cases(out), out], ignore_index=True)
    return out.drop(columns=["time", "measured"])


def _all_cases(out: pd.DataFrame) -> pd.DataFrame:
    """Per machine and metric, the series over all cases: per commit, the geometric mean of the cases'
    normalized values (accuracy: their mean in points). A change too small to tell from one case's noise
    in a few commits shows here when it moves every case (the gate's aggregate, over commits)."""
    rows = out.assign(log=np.log(out["normalized"].where(out["normalized"] > 0)))
    points = rows["metric"].map(_in_points).astype(bool)
    rows["log"] = rows["log"].where(~points, rows["normalized"])
    keys = ["machine", "metric", "commit"]
    agg = rows.drop_duplicates(keys)[[*keys, "commit_time", "time", "measured", "run"]]
    mean = rows.groupby(keys, sort=False)["log"].mean().rename("normalized")
    agg = agg.merge(mean, left_on=keys, right_index=True)
    ratio = ~agg["metric"].map(_in_points).astype(bool)
    agg.loc[ratio, "normalized"] = np.exp(agg.loc[ratio, "normalized"])
    agg["value"] = agg["normalized"]
    agg["case"] = ALL_CASES
    return agg.sort_values(["machine", "metric", "time", "measured", "run"], kind="stable")[out.columns]


def changes(frame: pd.DataFrame, **options: float) -> pd.DataFrame:
    """Every change point of every series in `frame` (from `series`): machine, case, metric, the commit
    range it points to (`after`..`commit`: the last commit of the old level, the first of the new),
    its size (a fraction, or points for accuracy), p-value and confidence, and whether it is a regression."""
    rows = []
    for (machine, case, metric), group in frame.groupby(["machine", "case", "metric"], sort=False):
        values = group["normalized"].to_numpy(dtype=float)
        in_points = _in_points(metric)
        if not in_points and (values <= 0).any():
            continue
        commits, times = group["commit"].to_list(), group["commit_time"].to_list()
        for s in steps(values, in_points, **options):  # type: ignore[arg-type]
            direction = METRICS[metric].direction
            worse = direction != 0 and np.sign(s.size) == -direction
            rows.append(
                {
                    "machine": machine,
                    "case": case,
                    "metric": metric,
                    "after": commits[s.index - 1],
                    "commit": commits[s.index],
                    "commit_time": times[s.index],
                    "points_before": s.index,
                    "size": s.size,
                    "pvalue": s.pvalue,
                    "confidence": 1.0 - s.pvalue,
                    "regression": bool(worse) and abs(s.size) >= MIN_CHANGE["points" if in_points else "relative"],
                }
            )
    columns = ["machine", "case", "metric", "after", "commit", "commit_time", "points_before", "size", "pvalue"]
    return pd.DataFrame(rows, columns=[*columns, "confidence", "regression"])


def new_since(found: pd.DataFrame, since_time: str | None) -> pd.DataFrame:
    """The regressions whose first commit of the new level is later than `since_time` (all when None)."""
    regressions = found[found["regression"]]
    if since_time is None or regressions.empty:
        return regressions
    times = pd.to_datetime(regressions["commit_time"], utc=True, format="ISO8601")
    return regressions[times > pd.Timestamp(since_time).tz_convert("UTC")]
