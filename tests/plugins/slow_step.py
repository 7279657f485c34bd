"""Test-side fault injection: every training step takes about 25% longer.

Loaded into a benchmark run with `pytest bench -p tests.plugins.slow_step`; the product has no
switch for it. The extra time is a busy wait placed before the step's last clock mark, so both the
engine's clocks and pytest-benchmark's timer see it, as they would a real regression in the step.
"""

import time

from dnnbench import engine

SLOWDOWN = 0.25
_original_step = engine.Training.step


def _busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _slow_step(self: engine.Training) -> None:
    start = time.perf_counter()
    real_mark = self.clock.mark

    def mark(phase: str) -> None:
        if phase == "optimizer":  # the step's last mark: stretch the step before it closes
            _busy_wait(SLOWDOWN * (time.perf_counter() - start))
        real_mark(phase)

    self.clock.mark = mark
    try:
        _original_step(self)
    finally:
        del self.clock.mark


def pytest_configure(config) -> None:
    engine.Training.step = _slow_step
