"""The noise of a training-loss curve: its spread around its own trend, so progress is not counted as noise.

The loss is taken in logs (a relative measure: a curve at 2.3 and one at 0.05 compare), its trend is a
centred running mean, and the noise is the median absolute residual. A curve that falls smoothly has
noise near 0 however fast it falls; one that jumps from batch to batch has noise of about its typical
relative jump. (A running median would call every monotone curve noiseless, however jagged.) Losses are
floored at 1e-6: a batch-1 loss can be exactly 0, and below that the log measures float rounding.
docs/metrics.md states the definition; tests/test_claims.py checks it on constructed curves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FLOOR = 1e-6
MIN_POINTS = 10  # fewer steps give no trend to measure around (a 5-step full-batch run says so instead)


def trend_window(n: int) -> int:
    """A running mean over about a tenth of the curve (odd, at least 3 steps, at most 501)."""
    return int(min(501, max(3, (n // 10) | 1)))


def loss_noise(losses: np.ndarray | list[float]) -> float | None:
    """Median |log(loss) − running mean of log(loss)|; None for fewer than MIN_POINTS finite losses."""
    values = np.asarray(losses, dtype=float)
    if len(values) < MIN_POINTS or not np.isfinite(values).all():
        return None
    logs = pd.Series(np.log(np.maximum(values, FLOOR)))
    trend = logs.rolling(trend_window(len(values)), center=True, min_periods=1).mean()
    return float(np.median(np.abs(logs - trend)))
