"""The gate's statistics: speed adjusted for the machine's speed, bootstrap intervals, and the
'worse' scale on which every metric is judged (log slowdown, or lost accuracy points)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnnbench.core.metrics import METRICS

MIN_CALIBRATION_SPREAD = 0.05  # sd of log calibration within a side below which no slope is fitted
MIN_RECORDS_FOR_SLOPE = 6  # baseline records: one run of 3 seeds is too few to fit a slope on
MAX_SLOPE = 1.5  # a case cannot be more than 1.5x as sensitive to the machine's speed as the reference
THROUGHPUT = "throughput_samples_per_s"


@dataclass(frozen=True)
class SpeedReference:
    """What speed figures are adjusted by: a per-case calibration column, and each run's own value of
    the same probe for records that carry none. `column` None means no adjustment."""

    column: str | None
    baseline_run: float | None = None
    current_run: float | None = None

    def log_speed(self, rows: pd.DataFrame, side: str) -> np.ndarray | None:
        """log of the calibration of each row of one side ('baseline' or 'current'); None if unknown."""
        run_value = self.baseline_run if side == "baseline" else self.current_run
        cal = rows[self.column] if self.column in rows else pd.Series(np.nan, index=rows.index)
        speed = cal.fillna(run_value if run_value else np.nan).to_numpy(float)
        return None if np.isnan(speed).any() else np.log(speed)


def fit_slope(b_ok: pd.DataFrame, ref: SpeedReference) -> float:
    """How closely one case's throughput follows the machine's speed: d log(throughput) / d log(calibration).

    Cases do not all follow the machine's speed one to one (docs/gate.md), so speed is normalized by a
    covariate adjustment (ANCOVA; CUPED in A/B testing) whose slope is fitted per case by least squares
    on the baseline's records only (every seed: throughput does not depend on it). The run being judged
    takes no part: were it fitted on too, a regression that moved the probe and the case together (or
    a probe that drifted while the case slowed) would tune the slope that is meant to judge it. Clipped
    to [0, MAX_SLOPE]. Where the calibration hardly varies within the baseline, or it holds fewer than
    MIN_RECORDS_FOR_SLOPE records (a single run), the slope is 1: plain division by the calibration."""
    if ref.column is None:
        return 1.0
    b_rows = b_ok[b_ok[THROUGHPUT].notna()]
    x = ref.log_speed(b_rows, "baseline")
    if x is None or len(x) < MIN_RECORDS_FOR_SLOPE:
        return 1.0
    dx = x - x.mean()
    dy = np.log(b_rows[THROUGHPUT].to_numpy(float))
    dy = dy - dy.mean()
    if np.sqrt((dx**2).sum() / (len(dx) - 1)) < MIN_CALIBRATION_SPREAD:
        return 1.0
    return float(np.clip((dx * dy).sum() / (dx**2).sum(), 0.0, MAX_SLOPE))


def adjusted(
    metric: str, b_rows: pd.DataFrame, c_rows: pd.DataFrame, ref: SpeedReference, slope: float
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Both sides' values of `metric`; a speed metric is put at the baseline's median machine speed:
    log(metric) shifted by slope × (log calibration − that median); time to target moves against
    throughput (its slope is −slope). Also the signed slope used, None where nothing was adjusted."""
    raw_b, raw_c = b_rows[metric].to_numpy(float), c_rows[metric].to_numpy(float)
    if not METRICS[metric].speed or ref.column is None:
        return raw_b, raw_c, None
    x_b, x_c = ref.log_speed(b_rows, "baseline"), ref.log_speed(c_rows, "current")
    if x_b is None or x_c is None:
        return raw_b, raw_c, None  # compared raw; run_gate warns
    signed = slope if METRICS[metric].direction > 0 else -slope
    x0 = float(np.median(x_b))
    return raw_b * np.exp(-signed * (x_b - x0)), raw_c * np.exp(-signed * (x_c - x0)), signed


MIN_RUNS_FOR_TOLERANCE = 3  # a baseline of this many runs (or more) carries each case's own tolerance


@dataclass(frozen=True)
class CaseTolerance:
    """A speed metric's tolerance for one case, on the metric's own relative scale (0.2 = 20%), and
    where it came from: the spread between the baseline's runs, or the configured default."""

    value: float
    runs: int = 0  # baseline runs the spread was measured over; 0 = the configured default
    spread: float | None = None  # sd of log(per-run median) over those runs

    @property
    def source(self) -> str:
        if not self.runs:
            return "default"
        return f"{self.runs} runs, A/A sd {self.spread:.1%}"


def case_tolerance(
    values: np.ndarray, runs: np.ndarray, default: float, multiplier: float, floor: float
) -> CaseTolerance:
    """A case's tolerance from its own A/A spread in a baseline of several runs: `multiplier` standard
    deviations of a new run's median against the baseline's mean, sd × sqrt(1 + 1/runs), (the spread
    between runs, not between seeds: a run's shift hits all its seeds alike), never below `floor` and
    never wider than the configured `default`. Fewer than MIN_RUNS_FOR_TOLERANCE runs: the default."""
    frame = pd.DataFrame({"log": np.log(values), "run": runs})
    per_run = frame.groupby("run")["log"].median()
    if len(per_run) < MIN_RUNS_FOR_TOLERANCE:
        return CaseTolerance(default)
    sd = float(per_run.std(ddof=1))
    width = multiplier * sd * math.sqrt(1 + 1 / len(per_run))
    return CaseTolerance(min(default, max(floor, math.expm1(width))), len(per_run), sd)


def worse(metric: str, baseline: np.ndarray | float, current: np.ndarray | float) -> np.ndarray:
    """How much worse current is than baseline, per pair of (resampled) medians: log of the slowdown
    factor for relative metrics (> 0 is worse), lost accuracy points for a points metric."""
    m = METRICS[metric]
    if m.in_points:
        return (np.asarray(baseline) - np.asarray(current)) * 100
    return -m.direction * np.log(np.asarray(current) / np.asarray(baseline))


def change_from_worse(metric: str, value: float) -> float:
    """Back from the 'worse' scale to the metric's own change: % (or points for a points metric)."""
    m = METRICS[metric]
    if m.in_points:
        return -value
    return (math.exp(-m.direction * value) - 1) * 100


def threshold(metric: str, tolerance: float) -> float:
    """A tolerance on the 'worse' scale."""
    return tolerance if METRICS[metric].in_points else math.log1p(tolerance)


def bootstrap_medians(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    if len(values) == 1:
        return np.repeat(values, resamples)
    return np.median(rng.choice(values, size=(resamples, len(values))), axis=1)


@dataclass(frozen=True)
class Interval:
    """A confidence interval on the 'worse' scale and the same bounds as changes of the metric."""

    low: float
    high: float
    change_low: float
    change_high: float


def interval(metric: str, draws: np.ndarray, confidence: float) -> Interval:
    alpha = (1 - confidence) / 2
    low, high = (float(q) for q in np.quantile(draws, [alpha, 1 - alpha]))
    change_low, change_high = sorted((change_from_worse(metric, low), change_from_worse(metric, high)))
    return Interval(low, high, change_low, change_high)


def verdict(point: float, ci: Interval, limit: float) -> str:
    """regressed / improved when beyond the limit and the interval excludes no change; noise when
    beyond the limit but the interval straddles it; ok otherwise."""
    if point > limit:
        return "regressed" if ci.low > 0 else "noise"
    if point < -limit:
        return "improved" if ci.high < 0 else "noise"
    return "ok"
