"""The history across commits: the store (append-only, keyed by commit and machine), its refusals, the
change points found in series with known steps, and `history regressions` against a git ref."""

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

from dnnbench.core.machine import machine_id
from dnnbench.results.history import changes, store
from dnnbench.results.journal import read_run_meta, write_run_meta
from tests.conftest import TEST_MACHINE, run_cli
from tests.test_gate import make_run


def history_run(folder, commit, throughput=1000.0, started="2026-12-01T10:00:00+00:00", matrix="smoke", **kw):
    """A hand-made run folder (6 cases x 3 seeds, tests/test_gate.make_run) at `commit`."""
    make_run(folder, throughput=throughput, **kw)
    meta = read_run_meta(folder)
    meta.update(matrix=matrix, device="cpu", started_at=started)
    meta["env"]["git_commit"] = commit
    write_run_meta(folder, meta)
    return folder


def no_git(commit):
    return None


def errors(out):
    """The error lines of a CLI run (warnings, such as a commit git does not know, are other lines)."""
    return [line for line in out.stderr.strip().splitlines() if line.startswith("dnnbench: error")]


def test_a_run_joins_the_history_with_its_commit_machine_and_medians(tmp_path):
    run = history_run(tmp_path / "run", "a" * 40, spread=(0.9, 1.0, 1.3))
    entry = store.entry_of(run, lambda c: "2026-11-30T09:00:00+00:00" if c == "a" * 40 else None)
    with store.Writer(tmp_path / "h") as writer:
        assert writer.add(entry)
    h = store.read(tmp_path / "h")
    (line,) = h.runs.to_dict("records")
    assert line["commit"] == "a" * 40 and line["commit_time"] == "2026-11-30T09:00:00+00:00"
    assert line["machine"] == machine_id(TEST_MACHINE) and line["matrix"] == "smoke" and line["status"] == "ok"
    assert line["calibration"] == pytest.approx(100.0)  # make_run's probes: reference_steps_per_s = 100
    assert len(h.points) == 6
    # the median over seeds, not the mean: (900, 1000, 1300) → 1000
    assert h.points["throughput_samples_per_s"].tolist() == pytest.approx([1000.0] * 6)
    assert (h.points["ok"] == 3).all()


def test_a_commit_git_does_not_know_takes_the_runs_start_time(tmp_path):
    run = history_run(tmp_path / "run", "b" * 40, started="2026-12-02T08:00:00+00:00")
    assert store.entry_of(run, no_git).line["commit_time"] == "2026-12-02T08:00:00+00:00"


def test_adding_appends_without_rewriting_and_a_run_added_twice_is_kept_once(tmp_path):
    first = history_run(tmp_path / "one", "a" * 40, started="2026-12-01T10:00:00+00:00")
    second = history_run(tmp_path / "two", "b" * 40, started="2026-12-01T11:00:00+00:00")
    with store.Writer(tmp_path / "h") as writer:
        writer.add(store.entry_of(first, no_git))
    before = {name: (tmp_path / "h" / name).read_bytes() for name in (store.RUNS, store.POINTS)}
    with store.Writer(tmp_path / "h") as writer:
        assert writer.add(store.entry_of(second, no_git))
        assert not writer.add(store.entry_of(first, no_git))
    for name, old in before.items():
        assert (tmp_path / "h" / name).read_bytes().startswith(old)
    assert store.read(tmp_path / "h").runs["commit"].tolist() == ["a" * 40, "b" * 40]


def test_points_of_an_add_that_did_not_finish_are_ignored(tmp_path):
    run = history_run(tmp_path / "run", "a" * 40)
    entry = store.entry_of(run, no_git)
    (tmp_path / "h").mkdir()
    # a process killed between the points and the run's line leaves points that no run names
    with open(tmp_path / "h" / store.POINTS, "w") as f:
        f.writelines(json.dumps(p) + "\n" for p in entry.points)
    h = store.read(tmp_path / "h")
    assert h.runs.empty and h.points.empty


def test_a_corrupt_line_is_one_line_exit_2_and_the_history_is_left_as_it_was(tmp_path):
    history_run(tmp_path / "one", "a" * 40)
    history_run(tmp_path / "two", "b" * 40, started="2026-12-01T11:00:00+00:00")
    assert run_cli("history", "--dir", str(tmp_path / "h"), "--add", str(tmp_path / "one")).returncode == 0
    with open(tmp_path / "h" / store.POINTS, "a") as f:
        f.write('{"run": "x", "case": \n')
    before = {p.name: p.read_bytes() for p in (tmp_path / "h").iterdir() if p.is_file()}
    for args in (["--add", str(tmp_path / "two")], [], ["regressions"]):
        out = run_cli("history", *args, "--dir", str(tmp_path / "h"))
        assert out.returncode == 2, out.stderr
        (line,) = errors(out)
        assert f"{store.POINTS}:7 is not a history line" in line and "Traceback" not in out.stderr
    after = {p.name: p.read_bytes() for p in (tmp_path / "h").iterdir() if p.is_file()}
    assert after == before


def test_a_run_of_another_matrix_is_refused_and_nothing_of_the_batch_is_added(tmp_path):
    history_run(tmp_path / "smoke", "a" * 40)
    history_run(tmp_path / "smoke2", "b" * 40, started="2026-12-01T11:00:00+00:00")
    history_run(tmp_path / "quick", "c" * 40, matrix="quick", started="2026-12-01T12:00:00+00:00")
    assert run_cli("history", "--dir", str(tmp_path / "h"), "--add", str(tmp_path / "smoke")).returncode == 0
    out = run_cli("history", "--dir", str(tmp_path / "h"), "--add", str(tmp_path / "smoke2"), str(tmp_path / "quick"))
    assert out.returncode == 2
    (line,) = errors(out)
    assert "is the quick matrix on cpu" in line and "holds the smoke matrix on cpu" in line
    assert store.read(tmp_path / "h").runs["commit"].tolist() == ["a" * 40]  # smoke2 was not added either


def test_a_run_with_records_of_two_machines_is_refused(tmp_path):
    run = history_run(tmp_path / "run", "a" * 40)
    other = {**TEST_MACHINE, "cores": 4, "id": "other-machine"}
    records = (tmp_path / "run" / "records.jsonl").read_text().splitlines()
    moved = json.loads(records[0])
    moved["env"]["fingerprint"] = other
    (tmp_path / "run" / "records.jsonl").write_text("\n".join([json.dumps(moved), *records[1:]]) + "\n")
    out = run_cli("history", "--dir", str(tmp_path / "h"), "--add", str(run))
    assert out.returncode == 2
    assert "holds records of 2 machines" in out.stderr and not (tmp_path / "h" / store.RUNS).exists()


def test_runs_that_are_no_commit_of_one_matrix_are_refused(tmp_path):
    make_run(tmp_path / "no-run-json")
    (tmp_path / "no-run-json" / "run.json").unlink()
    history_run(tmp_path / "no-commit", "")
    history_run(tmp_path / "dirty", "a" * 40 + "-dirty")
    history_run(tmp_path / "two-commits", "a" * 40)
    lines = (tmp_path / "two-commits" / "records.jsonl").read_text().splitlines()
    moved = json.loads(lines[0])
    moved["env"]["git_commit"] = "b" * 40
    (tmp_path / "two-commits" / "records.jsonl").write_text("\n".join([json.dumps(moved), *lines[1:]]) + "\n")
    (tmp_path / "empty").mkdir()
    for folder, expected in (
        ("no-run-json", "has no run.json naming its matrix"),
        ("no-commit", "names no git commit"),
        ("dirty", "uncommitted changes"),
        ("two-commits", "holds records of 2 commits"),
        ("empty", "no dnnbench run at"),
    ):
        out = run_cli("history", "--dir", str(tmp_path / "h"), "--add", str(tmp_path / folder))
        assert out.returncode == 2 and len(errors(out)) == 1 and expected in errors(out)[0], (folder, out.stderr)
    assert not (tmp_path / "h" / store.RUNS).exists()


def test_rebuild_makes_the_history_from_run_folders_alone(tmp_path):
    for i, commit in enumerate(("a", "b", "c")):
        history_run(tmp_path / "runs" / commit, commit * 40, started=f"2026-12-01T1{i}:00:00+00:00")
    with open(tmp_path / "stale.jsonl", "w") as f:
        f.write("not json\n")
    out = run_cli("history", "--dir", str(tmp_path / "h"), "--rebuild", str(tmp_path / "runs"))
    assert out.returncode == 0, out.stderr
    h = store.read(tmp_path / "h")
    assert sorted(h.runs["commit"]) == ["a" * 40, "b" * 40, "c" * 40] and len(h.points) == 18


# --- change points ------------------------------------------------------------------------------------------


def test_a_step_is_found_at_its_commit_with_its_size():
    rng = np.random.default_rng(3)
    values = np.exp(0.02 * rng.standard_normal(80))
    values[50:] *= 0.8
    (step,) = changes.steps(values)
    assert abs(step.index - 50) <= 1
    assert step.size == pytest.approx(-0.2, abs=0.02) and step.pvalue < 1e-6


def test_noise_alone_gives_no_change_points():
    rng = np.random.default_rng(4)
    found = [changes.steps(np.exp(0.15 * rng.standard_normal(200))) for _ in range(30)]
    assert sum(map(len, found)) == 0


def test_a_series_too_short_for_two_levels_has_none():
    assert changes.steps([1.0, 0.5, 0.5]) == []


def synthetic(tmp_path, series_by_case, metric="throughput_samples_per_s", machine="m1", start=0):
    """A history with one run per commit whose `metric` follows the given series per case."""
    n = len(next(iter(series_by_case.values())))
    entries = []
    for i in range(n):
        commit = f"{start + i:040x}"
        run = f"{commit[:12]}@{machine}@{i}"
        when = (pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(hours=start + i)).isoformat()
        line = {
            "run": run,
            "add": run,
            "commit": commit,
            "commit_time": when,
            "machine": machine,
            "matrix": "smoke",
            "device": "cpu",
            "status": "ok",
            "reason": "",
            "calibration": 100.0,
            "source": None,
        }
        points = [
            {"run": run, "add": run, "case": case, "seeds": 2, "ok": 2, metric: float(values[i])}
            for case, values in series_by_case.items()
        ]
        entries.append(store.RunEntry(line, points))
    return entries


def test_changes_name_the_commit_range_and_call_only_a_worse_change_a_regression(tmp_path):
    rng = np.random.default_rng(5)
    slower = 1000 * np.exp(0.02 * rng.standard_normal(40))
    slower[25:] *= 0.7
    faster = 1000 * np.exp(0.02 * rng.standard_normal(40))
    faster[10:] *= 1.5
    store.rebuild(tmp_path / "h", synthetic(tmp_path, {"slower": slower, "faster": faster}))
    found = changes.changes(changes.series(store.read(tmp_path / "h"), ["throughput_samples_per_s"]))
    by_case = found.set_index("case")
    assert by_case.loc["slower", "commit"] == f"{25:040x}" and by_case.loc["slower", "after"] == f"{24:040x}"
    assert bool(by_case.loc["slower", "regression"]) and not bool(by_case.loc["faster", "regression"])
    assert by_case.loc["slower", "size"] == pytest.approx(-0.3, abs=0.03)


def test_accuracy_changes_are_in_points_and_a_drop_is_a_regression(tmp_path):
    rng = np.random.default_rng(6)
    accuracy = 0.85 + 0.001 * rng.standard_normal(30)
    accuracy[15:] -= 0.02
    store.rebuild(tmp_path / "h", synthetic(tmp_path, {"case": accuracy}, metric="final_test_accuracy"))
    found = changes.changes(changes.series(store.read(tmp_path / "h"), ["final_test_accuracy"]))
    (row,) = found[found["case"] == "case"].to_dict("records")
    assert row["size"] == pytest.approx(-2.0, abs=0.2) and row["regression"]


def test_a_commit_measured_twice_is_one_point_the_median_of_its_runs(tmp_path):
    entries = synthetic(tmp_path, {"case": [100.0, 100.0]})
    again = store.RunEntry(
        {**entries[1].line, "run": "again"},
        [{**entries[1].points[0], "run": "again", "throughput_samples_per_s": 300.0}],
    )
    third = store.RunEntry(
        {**entries[1].line, "run": "third"},
        [{**entries[1].points[0], "run": "third", "throughput_samples_per_s": 200.0}],
    )
    store.rebuild(tmp_path / "h", [*entries, again, third])
    frame = changes.series(store.read(tmp_path / "h"), ["throughput_samples_per_s"])
    assert frame[frame["case"] == "case"]["value"].tolist() == [100.0, 200.0]  # median of 100, 300, 200


def test_calibrate_divides_each_speed_by_its_runs_probe(tmp_path):
    entries = synthetic(tmp_path, {"case": [100.0, 200.0, 100.0]})
    entries[1].line["calibration"] = 200.0  # that run's machine was twice as fast: same code speed
    store.rebuild(tmp_path / "h", entries)
    h = store.read(tmp_path / "h")
    raw = changes.series(h, ["throughput_samples_per_s"]).query("case == 'case'")["normalized"].tolist()
    calibrated = changes.series(h, ["throughput_samples_per_s"], calibrate=True).query("case == 'case'")
    calibrated = calibrated["normalized"].tolist()
    assert raw == pytest.approx([1.0, 2.0, 1.0]) and calibrated == pytest.approx([1.0, 1.0, 1.0])


# --- history regressions against git refs -----------------------------------------------------------------------


def git(repo, *args, date=None):
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env={**os.environ, **env}
    )


def test_regressions_exit_1_only_when_one_is_newer_than_the_ref(tmp_path):
    rng = np.random.default_rng(7)
    values = 1000 * np.exp(0.02 * rng.standard_normal(40))
    values[30:] *= 0.7  # the step's first commit is at 2026-11-01 + 30 h
    store.rebuild(tmp_path / "h", synthetic(tmp_path, {"case": values}))
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "old", date="2026-11-02T01:00:00+00:00")  # before: 25 h
    git(repo, "tag", "v1")
    git(repo, "commit", "-q", "--allow-empty", "-m", "new", date="2026-11-03T00:00:00+00:00")  # after: 48 h
    h = str(tmp_path / "h")
    out = run_cli("history", "regressions", "--dir", h, cwd=repo)  # the last tag, v1: the step is newer
    # the case and ALL CASES, its only case: the same step twice
    assert out.returncode == 1 and "2 found, 2 new (since v1" in out.stdout and "NEW" in out.stdout
    out = run_cli("history", "regressions", "--dir", h, "--since", "HEAD", cwd=repo)
    assert out.returncode == 0 and "2 found, 0 new" in out.stdout
    out = run_cli("history", "regressions", "--dir", h, "--since", "nope", cwd=repo)
    assert out.returncode == 2 and "--since 'nope'" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = run_cli("history", "regressions", "--dir", h, "--machine", "m9", cwd=repo)
    assert out.returncode == 2 and "unknown machine 'm9'" in out.stderr and "m1" in out.stderr


def test_a_step_every_case_takes_shows_in_all_cases_when_no_case_alone_shows_it(tmp_path):
    rng = np.random.default_rng(9)
    series = {}
    for i in range(30):  # 30 cases with 15% noise (as between A/A runs here), all 6% slower from commit 12 of 24
        values = 1000 * np.exp(0.15 * rng.standard_normal(24))
        values[12:] *= 0.94
        series[f"case{i}"] = values
    store.rebuild(tmp_path / "h", synthetic(tmp_path, series))
    found = changes.changes(changes.series(store.read(tmp_path / "h"), ["throughput_samples_per_s"]))
    overall = found[found["case"] == changes.ALL_CASES]
    assert overall["commit"].tolist() == [f"{12:040x}"] and overall["size"].iloc[0] == pytest.approx(-0.06, abs=0.02)
    alone = found.loc[found["case"] != changes.ALL_CASES, "case"].nunique()
    assert alone <= 6  # within one case's noise, most cases alone show nothing


def test_two_runs_of_different_matrices_added_to_an_empty_history_add_neither(tmp_path):
    history_run(tmp_path / "smoke", "a" * 40)
    history_run(tmp_path / "quick", "b" * 40, matrix="quick", started="2026-12-01T11:00:00+00:00")
    out = run_cli("history", "--dir", str(tmp_path / "h"), "--add", str(tmp_path / "smoke"), str(tmp_path / "quick"))
    assert out.returncode == 2 and "the first run added is the smoke matrix" in errors(out)[0]
    assert not (tmp_path / "h" / store.RUNS).exists() and not (tmp_path / "h" / store.META).exists()


def test_a_torn_last_line_is_skipped_and_closed_by_the_next_add_and_orphans_are_not_adopted(tmp_path):
    one = history_run(tmp_path / "one", "a" * 40)
    two = history_run(tmp_path / "two", "b" * 40, started="2026-12-01T11:00:00+00:00")
    with store.Writer(tmp_path / "h") as writer:
        writer.add(store.entry_of(one, no_git))
    # an add of `two` killed after its points, and another killed mid-line
    orphan = store.entry_of(two, no_git)
    with open(tmp_path / "h" / store.POINTS, "a") as f:
        f.writelines(json.dumps(p) + "\n" for p in orphan.points)
        f.write('{"run": "torn", "add": "x", "ca')
    with store.Writer(tmp_path / "h") as writer:
        assert writer.add(store.entry_of(two, no_git))  # the same run again: a new add
    h = store.read(tmp_path / "h")
    assert len(h.points) == 12 and h.points.groupby("run").size().tolist() == [6, 6]  # not 6 + 12


def test_a_target_no_longer_reached_and_a_case_that_starts_failing_are_regressions(tmp_path):
    entries = synthetic(tmp_path, {"reached": np.full(8, 10.0), "breaks": np.full(8, 10.0)}, metric="time_to_target_s")
    for entry in entries[5:]:
        lost, broken = entry.points
        lost.update(time_to_target_s=None, time_to_target_missed=True)
        broken.update(time_to_target_s=None, ok=0)
    store.rebuild(tmp_path / "h", entries)
    found = changes.state_changes(store.read(tmp_path / "h")).set_index("case")
    assert found.loc["reached", "kind"] == "target lost" and found.loc["reached", "commit"] == f"{5:040x}"
    assert found.loc["breaks", "kind"] == "fails" and found.loc["breaks", "after"] == f"{4:040x}"
    assert found["regression"].all()
    out = run_cli("history", "regressions", "--dir", str(tmp_path / "h"))
    assert out.returncode == 1 and "no longer reached" in out.stdout and "fails now" in out.stdout


def test_a_regression_fixed_since_is_listed_but_not_new(tmp_path):
    rng = np.random.default_rng(10)
    values = 1000 * np.exp(0.02 * rng.standard_normal(40))
    values[10:25] *= 0.7  # slower for 15 commits, then back
    store.rebuild(tmp_path / "h", synthetic(tmp_path, {"case": values}))
    found = changes.changes(changes.series(store.read(tmp_path / "h"), ["throughput_samples_per_s"]))
    regression = found[(found["case"] == "case") & found["regression"]]
    assert regression["commit"].tolist() == [f"{10:040x}"] and not regression["still"].iloc[0]
    out = run_cli("history", "regressions", "--dir", str(tmp_path / "h"))
    assert out.returncode == 0 and "0 new" in out.stdout and "fixed since" in out.stdout


def test_commits_sharing_a_second_are_ordered_by_ancestry_not_by_when_they_were_measured(tmp_path):
    rng = np.random.default_rng(11)
    values = 1000 * np.exp(0.02 * rng.standard_normal(12))
    values[6:] *= 0.7
    entries = synthetic(tmp_path, {"case": values})
    for i, entry in enumerate(entries):
        entry.line["ancestors"] = 100 + i
        if i >= 4:  # a rebased push: one committer second, and the tip measured first
            entry.line["commit_time"] = entries[4].line["commit_time"]
            entry.line["started_at"] = f"2026-12-01T{23 - i:02d}:00:00+00:00"
    store.rebuild(tmp_path / "h", entries)
    frame = changes.series(store.read(tmp_path / "h"), ["throughput_samples_per_s"])
    assert frame[frame["case"] == "case"]["commit"].tolist() == [f"{i:040x}" for i in range(12)]
    found = changes.changes(frame)
    assert found.loc[found["case"] == "case", "commit"].tolist() == [f"{6:040x}"]


def test_regressions_need_a_history_that_exists(tmp_path):
    out = run_cli("history", "regressions", "--dir", str(tmp_path / "typo"))
    assert out.returncode == 2 and "no history at" in errors(out)[0]


def test_a_real_ab_history_of_unchanged_code_gives_no_regression(tmp_path):
    """Five A/A-like runs: the same code, the machine's own noise between them (a hand-made 15% spread)."""
    rng = np.random.default_rng(12)
    cases = {f"case{i}": 1000 * np.exp(0.15 * rng.standard_normal(6)) for i in range(55)}
    store.rebuild(tmp_path / "h", synthetic(tmp_path, cases))
    found = changes.changes(changes.series(store.read(tmp_path / "h"), ["throughput_samples_per_s"]))
    assert found.empty
