"""The bare reference loop follows the case the engine trains: the same losses for the same seed, and the
fields it cannot follow refused by name; the engine's wall-clock throughput counts what lies between steps."""

import subprocess
import sys
import time

import pandas as pd
import pytest

from dnnbench.core.errors import BadInput
from dnnbench.measurement.bare import bare_run
from dnnbench.measurement.engine import loop_driver, run
from dnnbench.results.frames import load
from tests.conftest import ROOT, run_cli, tiny


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
    # ... while evaluation between steps is subtracted: validating every 50 samples (ten evaluations of
    # 500 samples for 500 trained) takes about as long as the training, yet leaves the wall figure near the
    # step figure; were it counted, the wall figure would be well under two thirds of it
    evaluated = run(tiny(batch_size=50, eval_every=50), seed=1).metrics
    assert evaluated["eval_time_s"] > 0.3 * evaluated["train_time_s"]
    assert evaluated["wall_throughput_samples_per_s"] > 0.8 * evaluated["throughput_samples_per_s"]


def test_a_ratio_goal_holds_fails_or_is_undecided_by_its_interval():
    from dnnbench.results.intervals import ratio_interval

    steady = ratio_interval([0.99, 0.985, 0.995, 0.99, 0.988, 0.992])
    assert steady.against(0.97) == "holds" and steady.low <= steady.point <= steady.high
    assert ratio_interval([0.90, 0.91, 0.89, 0.905, 0.9, 0.895]).against(0.97) == "fails"
    noisy = ratio_interval([0.8, 1.2, 0.85, 1.15, 0.9, 1.1])  # the same mean, rounds far apart
    assert noisy.against(0.97) == "undecided" and noisy.high - noisy.low > 0.1


def test_the_harness_compares_wall_clock_figures_and_reports_an_interval(tmp_path):
    out = run_cli("harness", "--matrix", "smoke", "-k", "synthetic_b100", "--rounds", "2", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    raw = pd.read_csv(tmp_path / "harness_raw.csv")
    assert set(raw.front_end) == {"bare", "cli", "pytest"} and set(raw["round"]) == {1, 2}
    cli = load(tmp_path / "cli-synthetic_b100_adam_tensor_n2000_cpu-r1")
    assert raw[(raw.front_end == "cli") & (raw["round"] == 1)].throughput.iloc[0] == pytest.approx(
        cli.wall_throughput_samples_per_s.iloc[0]
    )
    table = (tmp_path / "harness.md").read_text()
    assert "cli / bare [95% CI]" in table and "(n=2)" in table
    assert any(verdict in table for verdict in ("holds", "fails", "undecided"))
    odd = run_cli("harness", "--rounds", "1", "--out", str(tmp_path / "one"))
    assert odd.returncode == 2 and "--rounds must be at least 2" in odd.stderr
