"""The smoke matrix through the real pytest-benchmark front-end, on real Fashion-MNIST slices."""

import json
import subprocess
import sys

import pytest

from dnnbench.definitions.matrices import SUITES
from dnnbench.definitions.plan import expand
from dnnbench.results.frames import load
from tests.conftest import ROOT, bench_command, kill_after_records, run_bench

pytestmark = pytest.mark.slow


def _timed_by_pytest_benchmark(frame) -> int:
    """The records that have a benchmark.json entry: every measured case that timed a round after its
    warm-up. A data-parallel one has none (its steps run in torchrun's processes), and neither has a case
    whose time budget ran out within its warm-up steps (on a slow or loaded CPU: batch 1, 0.5 s)."""
    timed = (frame.status == "ok") & (frame.world_size == 1) & (frame.steps > frame.resolved_warmup_steps)
    return int(timed.sum())


def test_every_planned_case_has_exactly_one_record(smoke_run):
    results, _ = smoke_run
    frame = load(results)
    planned = {(p.case.id, p.seed) for p in expand("smoke")}
    got = list(zip(frame["case_id"], frame["seed"], strict=True))
    assert len(got) == len(set(got)) == len(planned)
    assert set(got) == planned


def test_every_axis_produced_a_sane_record(smoke_run):
    results, _ = smoke_run
    frame = load(results)
    ok = frame[frame.status == "ok"]
    skipped = frame[frame.status == "skipped"]
    assert set(frame.status) <= {"ok", "skipped"}
    for column, values in {
        "optimizer": {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "adadelta"},
        "regularization": {"none", "batchnorm", "dropout", "batchnorm+dropout", "l1", "l2"},
        "loader": {"torchvision", "tensor", "device"},
        "workload": {"fashion-mnist", "cubic", "synthetic"},
        "num_workers": {0, 2},
    }.items():
        assert values <= set(ok[column]), column
    assert {1, 100, 2000} <= set(ok["resolved_batch_size"])  # 1, m and the full 2,000-sample split
    assert {s for ss in ok["suites"] for s in ss} == set(SUITES) - {"harness"}
    assert (ok.throughput_samples_per_s > 0).all()
    assert (ok.step_time_ms_median > 0).all()
    assert ok.data_wait_fraction.between(0, 1).all()
    classified = ok[ok.workload == "fashion-mnist"]
    # A case that trains its epochs learns far above the 0.1 of chance. One stopped by a training-time
    # budget (batch 1: 0.5-1 s) takes as many steps as this CPU's speed allows (2-4x apart between
    # machines of this class, fewer still on a loaded one): judged by the steps it took, not the clock.
    budgeted = classified.reason.fillna("").str.contains("training-time budget")
    assert (classified[budgeted].steps > 0).all()
    learned = classified[~budgeted | (classified.steps >= 490)]  # ci-cpu: 492-643 steps of batch 1 gave 0.50-0.70
    assert learned.final_test_accuracy.between(0.3, 1.0).all()
    assert classified.final_test_accuracy.between(0.0, 1.0).all()
    assert (ok[ok.workload == "cubic"].final_test_loss < 0.1).all()  # below the 0.153 of predicting 0
    # skipped combinations are recorded with their reason, not dropped
    assert len(skipped) >= 5 and skipped.reason.str.len().gt(10).all()
    assert skipped.reason.str.contains("pin_memory").any()


def test_progress_and_skip_reasons_are_printed(smoke_run):
    _, out = smoke_run
    assert "samples/s" in out.stdout and "test acc" in out.stdout
    assert "skipped: pin_memory only speeds host-to-GPU copies" in out.stdout


def test_the_note_race_uses_the_same_batches_for_every_optimizer(smoke_run):
    results, _ = smoke_run
    frame = load(results)
    race = frame[(frame.workload == "cubic") & (frame.status == "ok")]
    assert len(race) == 5
    records = [json.loads(line) for line in (results / "records.jsonl").read_text().splitlines()]
    first_losses = {r["curves"]["loss"]["loss"][0] for r in records if r["case"]["workload"] == "cubic"}
    assert len(first_losses) == 1  # same init, same first batch → the same first loss


def test_benchmark_json_is_pytest_benchmarks_own_format(smoke_run):
    results, _ = smoke_run
    data = json.loads((results / "benchmark.json").read_text())
    assert {"machine_info", "commit_info", "benchmarks", "version"} <= set(data)
    frame = load(results)
    assert len(data["benchmarks"]) == _timed_by_pytest_benchmark(frame)
    bench = data["benchmarks"][0]
    assert bench["stats"]["rounds"] >= 1 and bench["stats"]["median"] > 0
    assert bench["extra_info"]["case_id"] and "throughput_samples_per_s" in bench["extra_info"]
    assert bench["group"] in SUITES
    # pytest-benchmark's own tool reads it unchanged
    out = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", str(results / "benchmark.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert "test_optimizers[" in out.stdout


def test_pytest_benchmark_compare_works_on_our_files(smoke_run, tmp_path):
    # pytest-benchmark's own --benchmark-compare / --benchmark-compare-fail read benchmark.json as is.
    results, _ = smoke_run
    baseline = results / "benchmark.json"
    args = ["--matrix", "smoke", "-k", "cubic"]
    lenient = run_bench(
        *args,
        "--results",
        str(tmp_path / "a"),
        f"--benchmark-compare={baseline}",
        "--benchmark-compare-fail=mean:1000%",
    )
    assert lenient.returncode == 0, lenient.stdout[-2000:]
    assert "Comparing against benchmarks from" in lenient.stdout + lenient.stderr
    # A baseline made 100x faster than what was measured: every case has regressed against it.
    data = json.loads(baseline.read_text())
    for bench in data["benchmarks"]:
        for key in ("min", "max", "mean", "median", "q1", "q3", "iqr", "ld15iqr", "hd15iqr", "total"):
            bench["stats"][key] /= 100
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps(data))
    strict = run_bench(
        *args, "--results", str(tmp_path / "b"), f"--benchmark-compare={fast}", "--benchmark-compare-fail=mean:50%"
    )
    assert strict.returncode == 1
    assert "Performance has regressed" in strict.stdout + strict.stderr


def test_a_second_run_into_the_same_folder_needs_resume(smoke_run):
    results, _ = smoke_run
    out = run_bench("--matrix", "smoke", "--results", str(results))
    assert out.returncode == 2
    assert "already holds" in out.stdout + out.stderr and "--resume" in out.stdout + out.stderr


def test_diverging_cases_are_recorded_and_the_run_goes_on(tmp_path):
    out = run_bench("--matrix", "smoke", "--results", str(tmp_path), "--set", "lr=1e9", "-k", "cubic")
    assert out.returncode == 0, out.stdout[-2000:]
    frame = load(tmp_path)
    assert len(frame) == 5 and set(frame.status) == {"diverged"}
    assert frame.reason.str.contains("training loss became").all()


def test_killed_run_keeps_its_records_and_resume_finishes_it(tmp_path):
    before = kill_after_records(bench_command("--matrix", "smoke", "--results", str(tmp_path)), tmp_path, 8)
    journal = tmp_path / "records.jsonl"
    assert 8 <= len(before) < len(expand("smoke"))  # killed part-way, the finished ones kept
    assert not (tmp_path / "benchmark.json").exists()

    out = run_bench("--matrix", "smoke", "--results", str(tmp_path), "--resume")
    assert out.returncode == 0, out.stdout[-2000:]
    after = journal.read_text().splitlines()
    assert after[: len(before)] == before  # nothing already measured was touched
    frame = load(tmp_path)
    keys = list(zip(frame.case_id, frame.seed, strict=True))
    assert len(keys) == len(set(keys)) == len(expand("smoke"))
    assert "measured already in this run (--resume)" in out.stdout
    # benchmark.json covers the cases of both sessions
    data = json.loads((tmp_path / "benchmark.json").read_text())
    assert len(data["benchmarks"]) == _timed_by_pytest_benchmark(frame)
