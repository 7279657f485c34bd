import time

import numpy as np
import pytest
import torch

from dnnbench.measurement.clocks import PHASES, CpuStepClock, StepStats
from dnnbench.measurement.memory import SavedActivations


def test_cpu_clock_times_each_phase():
    clock = CpuStepClock()
    for _ in range(3):
        clock.begin()
        for i, phase in enumerate(PHASES):
            time.sleep(0.05 * (i == 3))  # only "backward" takes time
            clock.mark(phase)
    rows = clock.collect()
    assert rows.shape == (3, len(PHASES))
    assert (rows[:, 3] >= 0.049).all()
    # the empty phases get what happens between two marks: far below the sleep even on a loaded machine
    # (a 1.5 ms bound failed once with 4 processes on 2 cores)
    assert (rows[:, [0, 1, 2, 4]] < 0.025).all()
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


def test_saved_activations_count_what_autograd_keeps_not_the_parameters():
    layer = torch.nn.Linear(1000, 1000)
    x = torch.randn(64, 1000)
    with SavedActivations(list(layer.parameters())) as saved:
        y = torch.relu(layer(x))
    y.sum().backward()
    # addmm keeps its input (64 x 1000 floats) and relu its output (64 x 1000): not the 4 MB weight
    assert saved.nbytes == 2 * 64 * 1000 * 4


def test_cpu_footprint_adds_optimizer_state_and_process_peak_is_recorded():
    from dnnbench.measurement.engine import run
    from tests.conftest import tiny

    adam, sgd = run(tiny(), seed=1), run(tiny(optimizer="sgd"), seed=1)
    params = 784 * 500 + 500 + 500 * 10 + 10
    extra = adam.metrics["peak_memory_bytes"] - sgd.metrics["peak_memory_bytes"]
    # Adam keeps two moments per parameter (and a step counter per tensor)
    assert 2 * params * 4 <= extra <= 2 * params * 4 + 4 * 8
    assert adam.memory_kind == "cpu_tensor_footprint"
    assert adam.metrics["process_peak_rss_bytes"] > 100 * 2**20  # torch alone is hundreds of MB
    again = run(tiny(), seed=1)
    assert again.metrics["peak_memory_bytes"] == adam.metrics["peak_memory_bytes"]  # deterministic
