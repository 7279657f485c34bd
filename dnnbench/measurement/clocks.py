"""Clocks: per-step phase timing and step-time statistics.

On CPU a step's phases are timed with perf_counter (CPU kernels run synchronously). On CUDA they are
CUDA events read back only at window edges (evaluation points), so timing adds no synchronization
inside a window; an event gap then measures what the GPU timeline actually waited for, including a
host that is late with the next batch.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
import torch

PHASES = ("data_wait", "copy", "forward", "backward", "optimizer")


class CpuStepClock:
    """Marks: begin(), then mark(phase) for each of PHASES in order. collect() returns finished steps."""

    def __init__(self) -> None:
        self._steps: list[list] = []
        self._current: list | None = None

    def _now(self):
        return time.perf_counter()

    def begin(self) -> None:
        self._current = [self._now()]

    def mark(self, phase: str) -> None:
        assert self._current is not None
        self._current.append(self._now())
        if phase == PHASES[-1]:
            self._steps.append(self._current)
            self._current = None

    def collect(self) -> np.ndarray:
        """Phase durations in seconds, shape (steps, len(PHASES)); clears the finished steps."""
        out = np.diff(np.array(self._steps, dtype=np.float64).reshape(-1, len(PHASES) + 1), axis=1)
        self._steps = []
        return out


class CudaStepClock(CpuStepClock):
    """The same marks, recorded as CUDA events and read back (one synchronize) in collect()."""

    def _now(self) -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def collect(self) -> np.ndarray:
        torch.cuda.synchronize()
        out = np.array(
            [[a.elapsed_time(b) / 1e3 for a, b in itertools.pairwise(s)] for s in self._steps],
            dtype=np.float64,
        ).reshape(-1, len(PHASES))
        self._steps = []
        return out


def step_clock(device: str) -> CpuStepClock | CudaStepClock:
    return CudaStepClock() if device == "cuda" else CpuStepClock()


def synchronized_perf_counter() -> float:
    """perf_counter after draining the CUDA queue: a wall clock that sees asynchronous GPU work.
    The pytest-benchmark timer for CUDA runs (set by frontends/pytest_plugin.py)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


@dataclass(frozen=True)
class StepStats:
    """Throughput statistics over a run's steady-state steps."""

    step_times_s: np.ndarray
    samples: np.ndarray  # samples per step (the last batch of an epoch may be short)

    @property
    def total_time_s(self) -> float:
        return float(self.step_times_s.sum())

    @property
    def throughput(self) -> float | None:
        t = self.total_time_s
        return float(self.samples.sum() / t) if t > 0 else None

    def percentile_ms(self, q: float) -> float | None:
        if len(self.step_times_s) == 0:
            return None
        return float(np.percentile(self.step_times_s, q) * 1e3)
