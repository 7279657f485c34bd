"""Beyond one machine: data-parallel cases through torchrun, and a matrix spread over shards and merged."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from dnnbench.core.record import Record
from dnnbench.definitions import shards
from dnnbench.definitions.cases import Case
from dnnbench.definitions.plan import PlannedCase, expand
from dnnbench.measurement import distributed
from dnnbench.measurement.engine import run
from dnnbench.results.analysis import scaling
from dnnbench.results.frames import load
from dnnbench.results.journal import Journal
from tests.conftest import ROOT, run_bench, run_cli, tiny

SMALL = Case(train_samples=2000, eval_samples=1000, epochs=2, eval_every=500)


def _ranks_alive() -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"dnnbench.measurement.distributed" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_two_gloo_processes_train_and_rank_0_writes_one_record(tmp_path):
    one, two = run(SMALL, seed=1), run(SMALL.replace(world_size=2), seed=1)
    assert two.status == "ok", two.reason
    assert two.resolved["world_size"] == 2 and two.resolved["backend"] == "gloo"
    assert two.resolved["rank_batch_size"] == 50 and two.resolved["batch_size"] == 100
    ranks = two.resolved["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["steps"] == 40 for r in ranks)  # both ranks trained
    assert two.metrics["samples"] == 4000  # 2 epochs of 2,000 over both ranks
    assert 0.5 < two.metrics["final_test_accuracy"] <= 1.0  # far above chance: the averaged gradients learn
    assert two.phase_fractions["allreduce"] > 0 and two.metrics["allreduce_fraction"] > 0
    # the roofline per rank: all ranks' FLOP rate over two ranks' peaks (each rank measured its own)
    m = two.metrics
    assert m["roofline_fraction"] == pytest.approx(m["achieved_gflops"] / (2 * m["peak_gflops"]))
    journal = Journal(tmp_path)
    for r in (one, two):
        journal.append(r)
    table = scaling(load(tmp_path))
    (efficiency,) = table.loc[table["world_size"] == 2, "scaling_efficiency"]
    assert 0 < efficiency <= 1.2
    assert not _ranks_alive()


@pytest.mark.slow
def test_a_rank_trains_through_the_same_path_as_one_process(tmp_path, monkeypatch):
    # One case as a single process and as the only rank of a torchrun group (DDP over gloo, world size 1):
    # the same measuring path gives the same losses step for step, and the rank honours what the single
    # process does (DNNBENCH_CALIBRATION=off: no probes; the collector off while steps are timed).
    case = tiny(epochs=2)
    env = {**os.environ, "DNNBENCH_CALIBRATION": "off", "OMP_NUM_THREADS": str(torch.get_num_threads())}
    out = tmp_path / "record.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1"]
    cmd += ["-m", "dnnbench.measurement.distributed", "--case", json.dumps(case.to_dict()), "--seed", "1"]
    done = subprocess.run([*cmd, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rank = Record.from_json(json.loads(out.read_text()))
    monkeypatch.setenv("DNNBENCH_CALIBRATION", "off")
    alone = run(case, seed=1)
    assert rank.status == alone.status == "ok" and rank.resolved["backend"] == "gloo"
    assert len(alone.curves["loss"]["loss"]) == alone.metrics["steps"] == rank.metrics["steps"] > 5
    assert rank.curves["loss"]["loss"] == pytest.approx(alone.curves["loss"]["loss"], rel=1e-5)
    assert rank.metrics["final_test_accuracy"] == pytest.approx(alone.metrics["final_test_accuracy"], abs=0.002)
    assert rank.calibration.what == alone.calibration.what == "not measured (DNNBENCH_CALIBRATION=off)"


@pytest.mark.slow
def test_a_rank_killed_mid_run_is_an_error_record_and_leaves_no_process(tmp_path):
    marker = tmp_path / "marker"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'tests' / 'faults'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "DNNBENCH_FAULT": "pause_step",
        "DNNBENCH_FAULT_RANK": "1",
        "DNNBENCH_FAULT_AFTER": "8",
        "DNNBENCH_FAULT_MARKER": str(marker),
    }
    case = "fashion-mnist_b100_adam_tensor_e2_n2000_ev25000_ws2_cpu"
    cmd = [sys.executable, "-m", "dnnbench", "run", "--matrix", "scaling", "--set", "train_samples=2000"]
    cmd += ["--case", case, "--results", str(tmp_path / "run")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()
    os.kill(int(marker.read_text()), signal.SIGKILL)  # rank 1, mid-step
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err  # an error record: `dnnbench run` says so in its exit code
    (record,) = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert record["status"] == "error" and record["reason"] == "rank 1 killed by SIGKILL"
    assert "Traceback" not in out + err
    time.sleep(1)
    assert not _ranks_alive()


def _torchrun_summary(failures: list[tuple[int, int]], root: tuple[int, int]) -> str:
    """torchrun's failure summary in its own layout (as torch 2.14 prints it)."""

    def block(i: int, rank: int, code: int) -> str:
        return (
            f"[{i}]:\n  time      : 2026-11-29_19:37:16\n  host      : localhost\n"
            f"  rank      : {rank} (local_rank: {rank})\n  exitcode  : {code} (pid: 2264{rank})\n"
            "  error_file: <N/A>\n"
        )

    others = "".join(block(i + 1, r, c) for i, (r, c) in enumerate(failures)) or "  <NO_OTHER_FAILURES>\n"
    return f"Failures:\n{others}----\nRoot Cause (first observed failure):\n{block(0, *root)}===="


@pytest.mark.parametrize(
    ("failures", "root", "expected"),
    [
        ([(1, -9)], (0, 1), "rank 1 killed by SIGKILL"),  # the peer's "connection closed" was seen first
        ([(1, -15)], (0, 1), "rank 0: RuntimeError: boom"),  # torchrun's own SIGTERM to the others
        ([], (1, -9), "rank 1 killed by SIGKILL"),
    ],
)
def test_the_failure_named_is_the_cause_not_its_echo(tmp_path, failures, root, expected):
    out = tmp_path / "record.json"
    (tmp_path / "record.json.rank0.error").write_text("rank 0: RuntimeError: boom")
    assert distributed._first_failure(out, _torchrun_summary(failures, root)) == expected


def _pairs(plan) -> set:
    return {(p.case.id, p.seed) for p in plan}


@pytest.mark.parametrize("matrix", ["smoke", "full"])
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_shards_partition_the_matrix(matrix, count):
    plan = expand(matrix)
    parts = [_pairs(shards.select(plan, i, count)) for i in range(1, count + 1)]
    assert set().union(*parts) == _pairs(plan)
    assert sum(len(p) for p in parts) == len(plan)  # no pair in two shards


def test_shards_balance_expected_cost_not_count():
    plan = expand("full")
    costs = shards.loads(plan, 3)
    assert shards.imbalance(costs) <= shards.SLACK + 0.01
    counts = [len(shards.select(plan, i, 3)) for i in (1, 2, 3)]
    assert len(set(counts)) > 1  # balanced by seconds, so the counts differ


def test_adding_a_case_elsewhere_moves_almost_no_other_pair():
    plan = expand("full")
    before = shards.assign(plan, 4)
    after = shards.assign([*plan, PlannedCase(("batch",), Case(batch_size=37), 1, None)], 4)
    moved = sum(before[k] != after[k] for k in before)
    assert moved <= len(before) // 50, f"{moved} of {len(before)} pairs moved"


def test_shard_input_is_one_line_exit_2():
    out = run_cli("list", "--matrix", "smoke", "--shard", "3/2")
    assert out.returncode == 2 and "--shard expects I/N with 1 <= I <= N, such as 1/4, got '3/2'" in out.stderr


@pytest.mark.slow
def test_merged_shards_equal_the_unsharded_run(smoke_run, tmp_path):
    results, _ = smoke_run
    for i in (1, 2):
        out = run_bench("--matrix", "smoke", "--shard", f"{i}/2", "--results", str(tmp_path / f"shard{i}"))
        assert out.returncode == 0, out.stdout[-2000:]
    merged = run_cli("merge", str(tmp_path / "shard1"), str(tmp_path / "shard2"), "--out", str(tmp_path / "all"))
    assert merged.returncode == 0, merged.stderr
    whole, parts = load(results), load(tmp_path / "all")
    assert set(zip(whole.case_id, whole.seed, strict=True)) == set(zip(parts.case_id, parts.seed, strict=True))
    assert len(parts) == len(whole) and set(whole.columns) == set(parts.columns)
    meta = json.loads((tmp_path / "all" / "run.json").read_text())
    assert [m["shard"] for m in meta["merged_from"]] == ["1/2", "2/2"] and meta["matrix"] == "smoke"
    benchmarks = json.loads((tmp_path / "all" / "benchmark.json").read_text())["benchmarks"]
    # a case whose time budget ran out within its warm-up steps (a slow or loaded CPU) timed no round
    timed = (parts.status == "ok") & (parts.world_size == 1) & (parts.steps > parts.resolved_warmup_steps)
    assert len(benchmarks) == timed.sum()
    assert run_cli("report", str(tmp_path / "all")).returncode == 0
    assert run_cli("gate", "--baseline", str(results), "--current", str(tmp_path / "all")).returncode in (0, 1)
    again = run_cli("merge", str(tmp_path / "shard1"), str(tmp_path / "shard1"), "--out", str(tmp_path / "twice"))
    assert again.returncode == 2 and "the shards overlap" in again.stderr and again.stderr.count("\n") == 1


def test_a_shard_that_held_no_pair_merges_as_empty(tmp_path):
    """With more shards than pairs some shards are empty; their folders must not break the merge."""
    plan, count = expand("smoke"), 80
    owner = shards.assign(plan, count)
    empty = next(i for i in range(1, count + 1) if i not in owner.values())
    cheap = next(owner[(p.case.id, p.seed)] for p in plan if p.case.workload == "cubic" and not p.skip_reason)
    assert all(p.case.workload == "cubic" for p in shards.select(plan, cheap, count))
    for i in (empty, cheap):
        out = run_cli("run", "--matrix", "smoke", "--shard", f"{i}/{count}", "--results", str(tmp_path / f"s{i}"))
        assert out.returncode == 0, out.stderr
    folders = [str(tmp_path / f"s{i}") for i in (empty, cheap)]
    merged = run_cli("merge", *folders, "--out", str(tmp_path / "all"))
    assert merged.returncode == 0, merged.stderr
    meta = json.loads((tmp_path / "all" / "run.json").read_text())
    assert meta["matrix"] == "smoke"
    assert [(m["shard"], m["records"]) for m in meta["merged_from"]] == [
        (f"{empty}/{count}", 0),
        (f"{cheap}/{count}", len(shards.select(plan, cheap, count))),
    ]


def test_merge_refuses_shards_of_different_matrices(tmp_path):
    from dnnbench.results.journal import write_run_meta
    from tests.conftest import record

    for name, matrix in (("a", "smoke"), ("b", "quick")):
        Journal(tmp_path / name).append(record(Case(optimizer="sgd" if name == "a" else "adam"), 1, ["optimizers"]))
        write_run_meta(tmp_path / name, {"matrix": matrix, "device": "cpu"})
    out = run_cli("merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "the shards are of different matrix values (a: smoke, b: quick)" in out.stderr


@pytest.mark.slow
def test_dnnbench_run_under_a_users_torchrun_journals_once_and_resumes(tmp_path):
    """`torchrun -m dnnbench run`: every process is a rank, rank 0 holds the run folder through the same
    Run as a single process (run.json's end included); a second run refuses the pair unless --resume,
    and --resume measures nothing twice."""
    case = next(p.case.id for p in expand("smoke") if p.case.world_size == 2 and not p.skip_reason)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "dnnbench", "run"]
    args = [*torchrun, "--matrix", "smoke", "--case", case, "--results", str(tmp_path)]
    env = {**os.environ, "DNNBENCH_CALIBRATION": "off"}
    first = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    (record,) = load(tmp_path).itertuples()
    assert record.case_id == case and record.status == "ok"
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["status_counts"] == {"ok": 1} and meta["exit_status"] == 0
    again = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode != 0 and "pass --resume" in again.stderr
    resumed = subprocess.run([*args, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert len(load(tmp_path)) == 1
    after = json.loads((tmp_path / "run.json").read_text())
    assert after["started_at"] == meta["started_at"] and after["resumed_at"] >= meta["started_at"]
    (suites,) = {p.suites for p in expand("smoke") if p.case.id == case}
    assert record.suite == suites[0]  # a rank's record names the suite that ran it, as a process's does


def test_each_data_parallel_case_is_paired_with_its_one_process_reference():
    from dnnbench.tools.scaling import reference_of

    strong = Case(world_size=2, batch_size=100)
    weak = Case(world_size=2, batch_size=200, lr_rule="linear")
    assert reference_of(strong) == Case(batch_size=100)  # the same global batch
    assert reference_of(weak) == Case(batch_size=100)  # the same per-rank batch, the plain rate


@pytest.mark.slow
def test_scaling_rounds_alternate_the_two_sides_and_give_an_interval(tmp_path):
    out = run_cli("scaling", "--matrix", "smoke", "--rounds", "2", "--out", str(tmp_path), timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    rounds = pd.read_csv(tmp_path / "scaling_rounds.csv")
    assert list(rounds["round"]) == [1, 2] and (rounds.world_size == 2).all()
    assert rounds.efficiency.tolist() == pytest.approx((rounds.ranks / (2 * rounds.one_process)).tolist())
    # both sides ran in each round: one folder per side and round
    assert len(list(tmp_path.glob("one-*-r*"))) == 2 and len(list(tmp_path.glob("ranks-*-r*"))) == 2
    assert "efficiency [95% CI]" in (tmp_path / "scaling.md").read_text()
