import time

import numpy as np
import pytest
import torch

from dnnbench.meter import PHASES, CpuStepClock, PeakMemory, StepStats


def test_cpu_clock_times_each_phase():
    clock = CpuStepClock()
    for _ in range(3):
        clock.begin()
        for i, phase in enumerate(PHASES):
            time.sleep(0.002 * (i == 3))  # only "backward" takes time
            clock.mark(phase)
    rows = clock.collect()
    assert rows.shape == (3, len(PHASES))
    assert (rows[:, 3] >= 0.0019).all()
    assert (rows[:, [0, 1, 2, 4]] < 0.0015).all()
    assert clock.collect().shape == (0, len(PHASES))  # collect clears


def test_an_unfinished_step_is_not_collected():
    clock = CpuStepClock()
    clock.begin()
    clock.mark("data_wait")
    assert clock.collect().shape == (0, len(PHASES))


def test_step_stats():
    stats = StepStats(np.array([0.01, 0.02, 0.03, 0.04]), np.array([100, 100, 100, 50]))
    assert stats.throughput == pytest.approx(350 / 0.10)
    assert stats.percentile_ms(50) == pytest.approx(25.0)
    assert StepStats(np.array([]), np.array([])).percentile_ms(50) is None


def test_peak_memory_sees_a_large_allocation():
    meter = PeakMemory("cpu")
    base = meter.peak_bytes()
    block = torch.ones(64 * 1024 * 1024 // 4 * 4)  # 256 MiB, touched
    grown = meter.peak_bytes()
    del block
    assert grown - base > 200 * 1024 * 1024
    meter.reset()  # the next case's peak starts from what is resident now
    assert meter.kind == "process_peak_rss"
    assert meter.peak_bytes() < grown
