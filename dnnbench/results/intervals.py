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


def ratio_interval(ratios: np.ndarray | list[float], confidence: float = 0.95, seed: int = 0) -> RatioInterval:
    """Geometric mean of `ratios` (each one round's A / B, measured back to back) with a percentile
    bootstrap interval of the mean log ratio over the rounds."""
    logs = np.log(np.asarray(ratios, dtype=float))
    if len(logs) == 0:
        raise ValueError("no ratios")
    rng = np.random.default_rng(seed)
    draws = rng.choice(logs, size=(RESAMPLES, len(logs))).mean(axis=1) if len(logs) > 1 else logs
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return RatioInterval(float(np.exp(logs.mean())), float(np.exp(low)), float(np.exp(high)), len(logs), confidence)
