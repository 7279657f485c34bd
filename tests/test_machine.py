"""Machine fingerprints: what this machine offers is read, not assumed; speed is judged only between
runs of one machine, and baselines are kept per machine."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from dnnbench.core.machine import ISA_FLAGS, describe, differences, machine_id
from dnnbench.measurement.fingerprint import capture
from dnnbench.results import gate
from dnnbench.results.baselines import resolve_baseline, run_fingerprint
from tests.conftest import ROOT, TEST_MACHINE, run_cli
from tests.test_gate import make_run

# The two CPUs of this machine class seen so far: one with AVX-512 (and bf16), one with AVX2 and FMA only.
AVX512 = {**TEST_MACHINE}
AVX2_ONLY = {
    **TEST_MACHINE,
    "cpu_family": 25,
    "cpu_model_number": 1,
    "isa": ["avx", "avx2", "fma"],
    "torch_cpu_capability": "AVX2",
}


def _proc_flags() -> set[str]:
    text = Path("/proc/cpuinfo").read_text()
    line = next(line for line in text.splitlines() if line.startswith(("flags", "Features")))
    return set(line.split(":", 1)[1].split())


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="no /proc/cpuinfo on this system")
def test_the_fingerprint_reads_what_this_cpu_offers():
    fingerprint = capture("cpu")
    flags = _proc_flags()
    assert fingerprint["isa"] == [f for f in ISA_FLAGS if f in flags]  # every listed extension it has, no other
    assert fingerprint["cores"] == len(os.sched_getaffinity(0))
    # torch's own choice of kernels agrees with the flags it was chosen from
    capability = fingerprint["torch_cpu_capability"]
    if capability.startswith("AVX512"):
        assert "avx512f" in fingerprint["isa"]
    elif capability == "AVX2":
        assert {"avx2", "fma"} <= set(fingerprint["isa"])
    assert fingerprint["id"] == machine_id(fingerprint) and fingerprint["gpu"] is None
    assert fingerprint["cpu_model"] in describe(fingerprint)


def test_two_cpus_of_one_class_differ_and_say_how():
    found = differences(AVX512, AVX2_ONLY)
    assert "CPU family 26 vs 25" in found and "torch's CPU kernels AVX512 vs AVX2" in found
    assert "instruction sets: only the baseline has amx_bf16 amx_tile avx512_bf16 avx512bw avx512f avx512vl" in found
    assert machine_id(AVX512) != machine_id(AVX2_ONLY)
    assert machine_id(AVX512).startswith("amd-amxbf16-2c-") and machine_id(AVX2_ONLY).startswith("amd-avx2-2c-")


def test_the_same_machine_does_not_differ_and_an_unknown_field_is_not_a_difference():
    assert differences(AVX512, dict(AVX512)) == []
    older = {**AVX512, "torch_cpu_capability": None, "numpy_blas": None}  # a run made before these were recorded
    assert differences(older, AVX512) == []
    assert differences(None, AVX512) == ["no machine fingerprint on one side"]
    assert differences(AVX512, {**AVX512, "torch": "2.15.0"}) == ["torch 2.14.1 vs 2.15.0"]
    # a CPU run has no GPU; the same host's CUDA run is another machine for speed, not an unknown
    assert differences(AVX512, {**AVX512, "gpu": "1 x NVIDIA H200"}) == ["GPU None vs 1 x NVIDIA H200"]


def test_a_run_made_before_fingerprints_gets_one_rebuilt_from_its_benchmark_json():
    # The committed CI baseline was saved before runs recorded fingerprints: its CPU comes from
    # pytest-benchmark's machine_info (py-cpuinfo), as it would for any older run folder.
    saved = ROOT / "results" / "baselines" / "ci-cpu"
    (folder,) = [p for p in saved.iterdir() if p.is_dir()]
    fingerprint = run_fingerprint(folder)
    machine_info = json.loads((folder / "benchmark.json").read_text())["machine_info"]["cpu"]
    assert fingerprint["cpu_family"] == machine_info["family"] and fingerprint["cores"] == machine_info["count"]
    assert set(fingerprint["isa"]) == set(ISA_FLAGS) & set(machine_info["flags"])
    assert folder.name == fingerprint["id"]


def test_speed_is_not_judged_against_another_cpu_but_accuracy_is(tmp_path):
    base = make_run(tmp_path / "a", fingerprint=AVX512)
    slower_cpu = make_run(tmp_path / "b", throughput=250.0, fingerprint=AVX2_ONLY)  # 4x slower: another CPU
    out = run_cli("gate", "--baseline", str(base), "--current", str(slower_cpu))
    assert out.returncode == 0, out.stdout
    lines = [line for line in out.stdout.splitlines() if line.startswith("no speed verdict")]
    assert len(lines) == 1 and "CPU family 26 vs 25" in lines[0]
    rows = [line for line in out.stdout.splitlines() if not line.startswith("tolerances:")]
    assert not any("throughput_samples_per_s" in row for row in rows) and "calibration disagrees" not in out.stdout
    assert "accuracy and memory only" in out.stdout
    # accuracy is still judged across machines
    worse = make_run(tmp_path / "c", throughput=250.0, accuracy=0.80, fingerprint=AVX2_ONLY)
    out = run_cli("gate", "--baseline", str(base), "--current", str(worse))
    assert out.returncode == 1 and "final_test_accuracy" in out.stdout
    # and the same 4x on one machine is a regression; so it is when the user vouches for the machines
    same = make_run(tmp_path / "d", throughput=250.0, fingerprint=AVX512)
    assert run_cli("gate", "--baseline", str(base), "--current", str(same)).returncode == 1
    vouched = run_cli("gate", "--baseline", str(base), "--current", str(slower_cpu), "--assume-same-machine")
    assert vouched.returncode == 1 and "no speed verdict" not in vouched.stdout


def test_a_baseline_name_keeps_one_baseline_per_machine_and_the_gate_picks_this_ones(tmp_path):
    baselines = tmp_path / "baselines"
    fast = make_run(tmp_path / "fast", throughput=1000.0, fingerprint=AVX512)
    slow = make_run(tmp_path / "slow", throughput=250.0, fingerprint=AVX2_ONLY)
    for run in (fast, slow):
        saved = run_cli("baseline", str(run), "--name", "ci", "--dir", str(baselines))
        assert saved.returncode == 0, saved.stderr
    assert sorted(p.name for p in (baselines / "ci").iterdir()) == sorted(map(machine_id, (AVX512, AVX2_ONLY)))
    # a run of the slower CPU is judged against that CPU's baseline, with speed
    now = make_run(tmp_path / "now", throughput=250.0, fingerprint=AVX2_ONLY)
    choice = resolve_baseline(str(baselines / "ci"), AVX2_ONLY)
    assert choice.same_machine and choice.path.name == machine_id(AVX2_ONLY) and choice.others == 1
    out = run_cli("gate", "--baseline", str(baselines / "ci"), "--current", str(now))
    assert out.returncode == 0 and "no speed verdict" not in out.stdout and machine_id(AVX2_ONLY) in out.stdout
    slower = make_run(tmp_path / "slower", throughput=100.0, fingerprint=AVX2_ONLY)
    assert run_cli("gate", "--baseline", str(baselines / "ci"), "--current", str(slower)).returncode == 1
    # a third CPU finds no baseline of its own: the closest is named and speed is not judged
    third = {**AVX2_ONLY, "cpu_family": 23}
    choice = resolve_baseline(str(baselines / "ci"), third)
    assert not choice.same_machine and choice.differences == ["CPU family 25 vs 23"]


def test_saving_again_on_a_machine_finds_its_baseline_even_one_saved_before_fingerprints(tmp_path):
    # The committed baseline's fingerprint was rebuilt (no BLAS, no torch kernels): a run of the same
    # machine matches it, so saving again replaces it (with --force) instead of adding a second folder.
    baselines = tmp_path / "baselines"
    rebuilt = {**AVX512, "torch_cpu_capability": None, "torch_blas": None, "numpy": None, "numpy_blas": None}
    old = make_run(tmp_path / "old", fingerprint=rebuilt)
    assert run_cli("baseline", str(old), "--name", "ci", "--dir", str(baselines)).returncode == 0
    new = make_run(tmp_path / "new", fingerprint=AVX512)
    again = run_cli("baseline", str(new), "--name", "ci", "--dir", str(baselines))
    assert again.returncode == 2 and "pass --force" in again.stderr
    forced = run_cli("baseline", str(new), "--name", "ci", "--dir", str(baselines), "--force")
    assert forced.returncode == 0 and len(list((baselines / "ci").iterdir())) == 1


def test_runs_of_two_machines_are_not_pooled_into_one_baseline(tmp_path):
    a = make_run(tmp_path / "a", fingerprint=AVX512)
    b = make_run(tmp_path / "b", fingerprint=AVX2_ONLY)
    out = run_cli("baseline", str(a), str(b), "--name", "mixed", "--dir", str(tmp_path / "baselines"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "measured on different machines (CPU family 26 vs 25" in out.stderr
    assert not (tmp_path / "baselines" / "mixed").exists()


def test_machine_command_says_whether_a_baseline_was_measured_here(tmp_path):
    here = capture("cpu")
    other = {**here, "cpu_family": (here["cpu_family"] or 0) + 1}
    run = make_run(tmp_path / "other", fingerprint=other)
    assert run_cli("baseline", str(run), "--name", "ci", "--dir", str(tmp_path / "b")).returncode == 0
    out = run_cli("machine", "--baseline", str(tmp_path / "b" / "ci"))
    assert out.returncode == 1 and out.stdout.startswith(f"machine {here['id']}: ")
    assert "has no run of this machine" in out.stdout and "CPU family" in out.stdout
    mine = make_run(tmp_path / "mine", fingerprint=here)
    assert run_cli("baseline", str(mine), "--name", "ci", "--dir", str(tmp_path / "b")).returncode == 0
    assert run_cli("machine", "--baseline", str(tmp_path / "b" / "ci")).returncode == 0
    assert json.loads(run_cli("machine", "--json").stdout)["id"] == here["id"]


def _commit(repo: Path, name: str, when: int) -> str:
    env = {**os.environ, "GIT_COMMITTER_DATE": f"@{when} +0000", "GIT_AUTHOR_DATE": f"@{when} +0000"}
    (repo / name).write_text(name)
    subprocess.run(["git", "-C", str(repo), "add", name], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", name], check=True, env=env)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def test_ci_compares_with_the_newest_commit_before_this_submission(tmp_path):
    # .ci/base-commit: the commits of one submission lie within one session (3 h); the newest commit
    # more than 4 h older than the head was made before it, so it is a commit that had landed.
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    hour = 3600
    _commit(repo, "old", 1_700_000_000)
    landed = _commit(repo, "landed", 1_700_000_000 + 24 * hour)
    for i, offset in enumerate((48 * hour, 49 * hour, 50 * hour + 1800)):  # this session's commits
        _commit(repo, f"work{i}", 1_700_000_000 + offset)
    script = ROOT / ".ci" / "base-commit"
    out = subprocess.run(["bash", str(script)], cwd=repo, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == landed
    forced = subprocess.run(["bash", str(script)], cwd=repo, capture_output=True, text=True,
                            env={**os.environ, "CI_BASE": "HEAD~1"})  # fmt: skip
    assert forced.stdout.strip() == "HEAD~1"
    young = tmp_path / "young"  # every commit within one session: nothing to compare with
    young.mkdir()
    for args in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", "-C", str(young), *args], check=True)
    _commit(young, "a", 1_700_000_000)
    _commit(young, "b", 1_700_000_000 + hour)
    none = subprocess.run(["bash", str(script)], cwd=young, capture_output=True, text=True)
    assert none.returncode == 1 and none.stdout == "" and "no commit" in none.stderr
    # a shallow clone is deepened from its origin; where it cannot be, that is an error (the gate fails),
    # not "nothing to compare with"
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)], check=True)
    deepened = subprocess.run(["bash", str(script)], cwd=shallow, capture_output=True, text=True)
    assert deepened.returncode == 0 and deepened.stdout.strip() == landed
    cut_off = tmp_path / "cut-off"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(cut_off)], check=True)
    subprocess.run(["git", "-C", str(cut_off), "remote", "remove", "origin"], check=True)
    cut = subprocess.run(["bash", str(script)], cwd=cut_off, capture_output=True, text=True)
    assert cut.returncode == 3 and cut.stdout == "" and "shallow clone" in cut.stderr


def test_the_gate_reads_the_fingerprint_each_side_recorded(tmp_path):
    a = make_run(tmp_path / "a", fingerprint=AVX2_ONLY)
    assert gate.load_side(a).fingerprint == AVX2_ONLY
