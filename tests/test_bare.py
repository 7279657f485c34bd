"""The bare reference loop follows the case the engine trains: the same losses for the same seed, and the
fields it cannot follow refused by name; the engine's wall-clock throughput counts what lies between steps."""

import subprocess
import sys
import time

import pytest

from dnnbench.core.errors import BadInput
from dnnbench.measurement.bare import bare_run
from dnnbench.measurement.engine import loop_driver, run
from tests.conftest import ROOT, tiny


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"regularization": "dropout"},
        {"regularization": "batchnorm", "optimizer": "sgd"},
        {"regularization": "l1"},
        {"regularization": "l2", "batch_size": 64},  # 500 samples: a short last batch, or dropped by the plan
    ],
    ids=["plain", "dropout", "batchnorm", "l1", "l2-uneven"],
)
def test_the_bare_loop_and_the_engine_compute_the_same_losses_for_the_same_seed(changes):
    case = tiny(**changes)
    record = run(case, seed=3)
    bare = bare_run(case, seed=3, keep_losses=True)
    engine_losses = record.curves["loss"]["loss"]
    assert record.curves["loss"]["bucket"] == 1 and bare.steps == record.metrics["steps"]
    assert bare.losses == pytest.approx(engine_losses, rel=1e-6, abs=1e-7)
    other = bare_run(case, seed=4, keep_losses=True)  # and a different seed trains differently
    assert other.losses != pytest.approx(engine_losses, rel=1e-6, abs=1e-7)


def test_a_field_the_bare_loop_cannot_follow_is_refused_by_name():
    with pytest.raises(BadInput, match="world_size=2: the bare loop is one process"):
        bare_run(tiny(world_size=2))


def test_an_unknown_case_id_is_one_line_exit_2():
    done = subprocess.run(
        [sys.executable, "-m", "dnnbench.measurement.bare", "no_such_case"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no case 'no_such_case'" in done.stderr


def test_the_wall_clock_throughput_counts_the_work_between_steps():
    # Work between steps (a driver's, the bookkeeping's) is outside the per-step intervals but inside the
    # wall clock: 20 ms of it per step must lower the wall-clock figure and leave the step figure alone.
    def slow_driver(step, between, warmup, steps):
        def slower_between():
            time.sleep(0.02)
            between()

        return loop_driver(step, slower_between, warmup, steps)

    case = tiny(batch_size=50)
    plain = run(case, seed=1).metrics
    slowed = run(case, seed=1, drive=slow_driver).metrics
    assert plain["wall_throughput_samples_per_s"] <= plain["throughput_samples_per_s"] * 1.05
    assert slowed["wall_throughput_samples_per_s"] < 0.8 * slowed["throughput_samples_per_s"]
