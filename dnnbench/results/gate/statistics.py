"""The gate's statistics: speed adjusted for the machine's speed, bootstrap intervals, and the
'worse' scale on which every metric is judged (log slowdown, or lost accuracy points)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnnbench.core.metrics import METRICS

MIN_CALIBRATION_SPREAD = 0.05  # sd of log calibration within a side below which no slope is fitted
MIN_RECORDS_FOR_SLOPE = 8  # both sides together: 3 seeds against 3 are too few to fit a slope on
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


def fit_slope(b_ok: pd.DataFrame, c_ok: pd.DataFrame, ref: SpeedReference) -> float:
    """How closely one case's throughput follows the machine's speed: d log(throughput) / d log(calibration).

    Cases do not all follow the machine's speed one to one (docs/gate.md), so speed is normalized by a
    covariate adjustment (ANCOVA; CUPED in A/B testing) whose slope is fitted per case by least squares
    on both sides' records (every seed: throughput does not depend on it) after centring each side, so
    that a real regression between the sides does not bias it; clipped to [0, MAX_SLOPE]. Where the
    calibration hardly varies within the sides, or they hold fewer than MIN_RECORDS_FOR_SLOPE records
    (one run against one run), the slope is 1: plain division by the calibration."""
    if ref.column is None:
        return 1.0
    b_rows, c_rows = b_ok[b_ok[THROUGHPUT].notna()], c_ok[c_ok[THROUGHPUT].notna()]
    x_b, x_c = ref.log_speed(b_rows, "baseline"), ref.log_speed(c_rows, "current")
    if x_b is None or x_c is None or len(x_b) + len(x_c) < MIN_RECORDS_FOR_SLOPE:
        return 1.0
    y_b, y_c = np.log(b_rows[THROUGHPUT].to_numpy(float)), np.log(c_rows[THROUGHPUT].to_numpy(float))
    dx = np.concatenate([x_b - x_b.mean(), x_c - x_c.mean()])
    dy = np.concatenate([y_b - y_b.mean(), y_c - y_c.mean()])
    if np.sqrt((dx**2).sum() / (len(dx) - 2)) < MIN_CALIBRATION_SPREAD:
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
