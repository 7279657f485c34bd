"""Test-side fault injection: every training step of the engine takes about 25% longer.

Loaded into a benchmark run with `pytest bench -p tests.plugins.slow_step`; the product has no
switch for it. The extra time is a busy wait placed before the step's last clock mark, so both the
engine's clocks and pytest-benchmark's timer see it, as they would a real regression in the step.
The calibration probes around each case do not run the engine's step, so they do not see it.
"""

import time

from dnnbench.measurement.training import Training

SLOWDOWN = 0.25
_original_step = Training.step


def _busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _slow_step(self: Training) -> None:
    start = time.perf_counter()
    real_mark = self._mark

    def mark(phase: str) -> None:
        if phase == "optimizer":  # the step's last mark: stretch the step before it closes
            _busy_wait(SLOWDOWN * (time.perf_counter() - start))
        real_mark(phase)

    self._mark = mark
    try:
        _original_step(self)
    finally:
        self._mark = real_mark


def pytest_configure(config) -> None:
    Training.step = _slow_step
