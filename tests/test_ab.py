"""A/B mode: base and head alternately on one machine, judged on paired differences."""

import json
import os
import subprocess
import sys

import pytest

from dnnbench.definitions.cases import Case
from dnnbench.results.gate.paired import load_rounds, run_paired_gate
from dnnbench.results.journal import Journal
from dnnbench.views.gate import GateConfig
from tests.conftest import ROOT, record, run_cli

CASES = [Case(optimizer=o) for o in ("sgd", "momentum", "adagrad", "rmsprop", "adam")]


def make_ab(folder, head_factor=1.0, drift=(1.0, 0.6, 1.3), accuracy=0.86):
    """Three rounds; the machine's speed drifts by `drift` from round to round, hitting both sides of a
    pair alike; the head's throughput is `head_factor` times the base's."""
    for side, factor in (("base", 1.0), ("head", head_factor)):
        for r, speed in enumerate(drift, start=1):
            journal = Journal(folder / side / f"r{r}")
            for i, case in enumerate(CASES):
                tp = 1000.0 * (1 + i) * speed * factor
                acc = accuracy if side == "head" else 0.86
                journal.append(record(case, 1, ["optimizers"], throughput_samples_per_s=tp, final_test_accuracy=acc))
    return folder


def judge(folder):
    return run_paired_gate(load_rounds(folder, "base"), load_rounds(folder, "head"), GateConfig())


def test_pairs_cancel_the_machines_drift(tmp_path):
    result = judge(make_ab(tmp_path))  # the machine ran at 0.6x in round 2: both sides alike
    (aggregate,) = [f for f in result.findings if f.scope == "aggregate"]
    assert aggregate.normalized_change_pct == pytest.approx(0.0, abs=1e-9) and result.exit_code == 0
    assert result.normalization.startswith("none needed: base and head ran alternately")


def test_a_broad_slowdown_fails_and_a_small_one_passes(tmp_path):
    slowed = judge(make_ab(tmp_path / "a", head_factor=0.8))  # every case 20% slower
    assert slowed.exit_code == 1
    assert [f.scope for f in slowed.regressions] == ["aggregate"]  # per case within 2x, together not
    assert judge(make_ab(tmp_path / "b", head_factor=0.97)).exit_code == 0


def test_a_head_failing_in_one_round_is_a_regression(tmp_path):
    folder = make_ab(tmp_path)
    Journal(folder / "head" / "r2").append(
        record(CASES[0], 1, ["optimizers"], status="diverged", reason="training loss became nan at step 9")
    )
    frame = load_rounds(folder, "head")
    head = frame[~((frame["run"] == "r2") & (frame["case_id"] == CASES[0].id) & (frame["status"] == "ok"))]
    result = run_paired_gate(load_rounds(folder, "base"), head, GateConfig())
    (finding,) = result.regressions
    assert finding.case_id == CASES[0].id and finding.note.startswith("head: diverged in run r2 of 3: training loss")


def test_an_out_folder_that_holds_a_run_is_refused(tmp_path):
    make_ab(tmp_path)
    out = run_cli("ab", "--base", "HEAD", "--out", str(tmp_path))
    assert out.returncode == 2 and "already holds an A/B run" in out.stderr and out.stderr.count("\n") == 1


def test_accuracy_is_paired_by_seed_and_round(tmp_path):
    result = judge(make_ab(tmp_path, accuracy=0.80))  # 6 points lower in every pair
    assert {f.metric for f in result.regressions} == {"final_test_accuracy"}


def test_no_rounds_is_one_line_exit_2(tmp_path):
    out = run_cli("ab", "--judge-only", "--out", str(tmp_path))
    assert out.returncode == 2 and "no A/B rounds under" in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.slow
def test_ab_catches_a_slower_torch_between_two_environments(tmp_path):
    # The head is a second environment: the same code under an interpreter whose torch.autograd.backward
    # is slower for every caller (tests/faults/python with DNNBENCH_FAULT=slow_backward).
    env = {**os.environ, "DNNBENCH_FAULT": "slow_backward", "DNNBENCH_FAULT_SIZE": "2.0"}
    cmd = [sys.executable, "-m", "dnnbench", "ab", "--base-python", sys.executable]
    cmd += ["--head-python", str(ROOT / "tests" / "faults" / "python"), "--matrix", "smoke", "--rounds", "2"]
    cmd += ["-k", "cubic", "-k", "synthetic_b100", "-k", "fashion-mnist_b100_adam_tensor_e2", "--out", str(tmp_path)]
    cmd += ["--markdown", str(tmp_path / "ab.md")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "REGRESSED" in done.stdout and "Traceback" not in done.stdout + done.stderr
    meta = json.loads((tmp_path / "ab.json").read_text())
    assert meta["rounds"] == 2 and len(meta["cases"]) == 7 and not meta["failures"]
    assert (tmp_path / "ab.md").read_text().startswith("## dnnbench gate: ❌ FAIL")


@pytest.mark.slow
def test_a_head_that_crashes_on_a_class_of_cases_fails(tmp_path):
    # The head raises while recording every batch-100 case (tests/faults: crash_b100, from outside the
    # product); it writes no record for them. That is a failure, named with its cause, not "only in the base".
    env = {**os.environ, "DNNBENCH_FAULT": "crash_b100"}
    cmd = [sys.executable, "-m", "dnnbench", "ab", "--base-python", sys.executable]
    cmd += ["--head-python", str(ROOT / "tests" / "faults" / "python"), "--matrix", "smoke", "--rounds", "2"]
    cmd += ["-k", "synthetic", "--out", str(tmp_path)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    lost = [line for line in done.stdout.splitlines() if line.startswith("not recorded by the head:")]
    assert len(lost) == 1 and "synthetic_b100" in lost[0] and "(round 1, 2)" in lost[0]
    assert "crashed: RuntimeError: injected by tests/faults: crash_b100" in lost[0]
    assert "gate: FAIL" in done.stdout and "1 case(s) not recorded (--allow-missing accepts them)" in done.stdout
    meta = json.loads((tmp_path / "ab.json").read_text())
    assert {u["side"] for u in meta["unrecorded"]} == {"head"} and len(meta["cases"]) == 3
    # allowed, the lost case no longer fails it (speed judged so loosely here that only the rule is tested)
    loose = [f"--tolerance={m}=100" for m in ("throughput_samples_per_s", "time_to_target_s", "aggregate")]
    relaxed = run_cli("ab", "--judge-only", "--out", str(tmp_path), "--allow-missing", *loose)
    assert relaxed.returncode == 0, relaxed.stdout[-2000:]
    assert "not recorded by the head: synthetic_b100" in relaxed.stdout
    strict = run_cli("ab", "--judge-only", "--out", str(tmp_path), *loose)
    assert strict.returncode == 1 and "1 case(s) not recorded" in strict.stdout


@pytest.mark.slow
def test_ab_of_a_git_ref_against_itself_passes_and_leaves_no_worktree(tmp_path):
    # --out relative to where ab runs: the base's worker runs inside its worktree and must still write there
    select = ["-k", "cubic_b20_adam", "-k", "synthetic_b100", "--out", os.path.relpath(tmp_path / "ab", ROOT)]
    out = run_cli("ab", "--base", "HEAD", "--head", "HEAD", "--matrix", "smoke", "--rounds", "2", *select, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    meta = json.loads((tmp_path / "ab" / "ab.json").read_text())
    assert meta["base"].startswith("base: HEAD (") and meta["base_module"].startswith(
        str(tmp_path / "ab" / "worktrees")
    )
    worktrees = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in worktrees
    bad = run_cli("ab", "--base", "no-such-ref", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "git rev-parse" in bad.stderr and bad.stderr.count("\n") == 1


BEFORE_THE_FOLDERS = "5b975b9"  # the last commit with dnnbench/cli.py at the package's top


@pytest.mark.slow
def test_ab_against_a_commit_from_before_the_front_ends_moved(tmp_path):
    # CI's A/B base can predate a move of modules: each side's worker must run its own side's CLI, not
    # find the other side's through the editable install (which is what broke .ci/gate once).
    known = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{BEFORE_THE_FOLDERS}^{{commit}}"])
    if known.returncode != 0:
        pytest.skip(f"this clone's history lacks {BEFORE_THE_FOLDERS} (a shallow clone)")
    select = ["-k", "cubic_b20_adam", "--out", str(tmp_path / "ab")]
    out = run_cli("ab", "--base", BEFORE_THE_FOLDERS, "--matrix", "smoke", "--rounds", "2", *select, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    meta = json.loads((tmp_path / "ab" / "ab.json").read_text())
    assert meta["base_module"].startswith(str(tmp_path / "ab" / "worktrees"))
    assert meta["failures"] == [] and meta["unrecorded"] == []


def _rounds(folder, head_factors):
    """Four rounds of every case; `head_factors[r][i]` scales the head's throughput of case i in round r+1."""
    for side in ("base", "head"):
        for r, factors in enumerate(head_factors, start=1):
            journal = Journal(folder / side / f"r{r}")
            for i, case in enumerate(CASES):
                tp = 1000.0 * (1 + i) * (factors.get(i, 1.0) if side == "head" else 1.0)
                journal.append(record(case, 1, ["optimizers"], throughput_samples_per_s=tp, final_test_accuracy=0.86))
    config = GateConfig().with_overrides({"throughput_samples_per_s": 0.15})
    return run_paired_gate(load_rounds(folder, "base"), load_rounds(folder, "head"), config)


def test_one_case_slower_in_three_of_four_rounds_fails_on_its_own(tmp_path):
    # Case 0 is 25% slower in rounds 1-3 and as fast in round 4 (a quiet round): the interval of a median
    # over four rounds needs every round worse; the mean's does not.
    result = _rounds(tmp_path, [{0: 0.75}, {0: 0.75}, {0: 0.75}, {}])
    cases = [f for f in result.regressions if f.scope == "case"]
    assert [(f.case_id, f.metric) for f in cases] == [(CASES[0].id, "throughput_samples_per_s")]
    assert result.exit_code == 1


def test_one_loud_round_does_not_convict_a_case(tmp_path):
    # Case 0's head was 60% slower in one round only (another job ran then): beyond the tolerance on
    # average (-20%), but the median over rounds is no change.
    result = _rounds(tmp_path, [{}, {0: 0.4}, {}, {}])
    (finding,) = [f for f in result.findings if f.case_id == CASES[0].id and f.metric == "throughput_samples_per_s"]
    assert finding.verdict == "ok" and finding.normalized_change_pct == pytest.approx(0.0, abs=1e-9)
    assert result.exit_code == 0


def test_an_odd_number_of_rounds_is_refused_before_anything_runs(tmp_path):
    out = run_cli("ab", "--base", "HEAD", "--rounds", "3", "--out", str(tmp_path / "ab"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "--rounds must be an even number of at least 2" in out.stderr and "got 3" in out.stderr
    assert not (tmp_path / "ab").exists()


def test_a_slowdown_of_one_batch_class_fails_through_its_group(tmp_path):
    # Three batch-1 cases among fourteen, 20% slower in every round: each within its per-case tolerance,
    # the mean over all fourteen (-4.7%) within the aggregate's; their group's mean (-20%) is not.
    cases = [Case(batch_size=1, optimizer=o) for o in ("sgd", "momentum", "adam")]
    cases += [Case(optimizer=o, lr=lr) for o in ("sgd", "adam") for lr in (0.01, 0.02, 0.03, 0.05, 0.1, 0.2)]
    cases += [Case(optimizer="rmsprop")]
    for side in ("base", "head"):
        for r in range(1, 5):
            journal = Journal(tmp_path / side / f"r{r}")
            for i, case in enumerate(cases):
                factor = 0.8 if side == "head" and case.batch_size == 1 else 1.0
                journal.append(record(case, 1, ["optimizers"], throughput_samples_per_s=1000.0 * (1 + i) * factor))
    result = run_paired_gate(load_rounds(tmp_path, "base"), load_rounds(tmp_path, "head"), GateConfig())
    speed = [f for f in result.regressions if f.metric == "throughput_samples_per_s"]
    assert [(f.scope, f.case_id) for f in speed] == [("group", "GROUP batch 1 (3 cases, geometric mean)")]
    assert speed[0].normalized_change_pct == pytest.approx(-20.0, abs=0.01)
    assert result.exit_code == 1


def test_the_vectorized_two_stage_bootstrap_draws_like_the_plain_loop():
    # Cases resampled, then each chosen case's own rounds (1 to 6 of them): the same distribution as
    # the loop it replaced, to within the sampling error of 20,000 draws.
    import numpy as np

    from dnnbench.results.gate.paired import _two_stage_draws

    data = np.random.default_rng(1)
    per_case = [data.normal(shift, 0.1, size=n) for shift, n in ((0.0, 4), (0.3, 1), (-0.2, 6), (0.1, 2), (0.5, 4))]
    fast = _two_stage_draws(per_case, 20000, np.random.default_rng(2))
    rng = np.random.default_rng(3)
    loop = np.array(
        [
            np.mean([np.median(rng.choice(per_case[j], len(per_case[j]))) for j in rng.integers(0, 5, 5)])
            for _ in range(20000)
        ]
    )
    assert np.quantile(fast, [0.025, 0.5, 0.975]) == pytest.approx(np.quantile(loop, [0.025, 0.5, 0.975]), abs=0.01)
