"""Ratios measured in rounds, with a bootstrap interval: what the harness (front-end against the bare
loop) and the scaling rounds (N ranks against one process) report, and how a goal is judged on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 4000


@dataclass(frozen=True)
class RatioInterval:
    """The geometric mean of per-round ratios and its bootstrap interval over the rounds."""

    point: float
    low: float
    high: float
    n: int
    confidence: float

    def against(self, goal: float) -> str:
        """'holds' when the whole interval is at or above the goal, 'fails' when it is wholly below,
        'undecided' when it straddles it (more rounds, or a quieter machine, would settle it)."""
        if self.low >= goal:
            return "holds"
        if self.high < goal:
            return "fails"
        return "undecided"

    def text(self) -> str:
        return f"{self.point:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


def _bootstrap_mean(data: np.ndarray, confidence: float, seed: int) -> tuple[float, float, float]:
    """(mean, low, high): the mean of `data` and the percentile bootstrap interval of it over the values."""
    if len(data) == 0:
        raise ValueError("no values")
    rng = np.random.default_rng(seed)
    draws = rng.choice(data, size=(RESAMPLES, len(data))).mean(axis=1) if len(data) > 1 else data
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return float(data.mean()), float(low), float(high)


def ratio_interval(ratios: np.ndarray | list[float], confidence: float = 0.95, seed: int = 0) -> RatioInterval:
    """Geometric mean of `ratios` (each one round's A / B, measured back to back) with a percentile
    bootstrap interval of the mean log ratio over the rounds."""
    logs = np.log(np.asarray(ratios, dtype=float))
    point, low, high = _bootstrap_mean(logs, confidence, seed)
    return RatioInterval(float(np.exp(point)), float(np.exp(low)), float(np.exp(high)), len(logs), confidence)


def mean_interval(values: np.ndarray | list[float], confidence: float = 0.95, seed: int = 0) -> RatioInterval:
    """The mean of `values` (differences, shares: anything that may be 0 or negative) with a percentile
    bootstrap interval over them; the same record as ratio_interval's, in the values' own units."""
    data = np.asarray(values, dtype=float)
    point, low, high = _bootstrap_mean(data, confidence, seed)
    return RatioInterval(point, low, high, len(data), confidence)
