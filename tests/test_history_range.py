"""`history --range` on a real git repository (a clone of this one): each commit measured once in its own
worktree, a commit that does not build recorded as a failure, and the range resumable."""

import json
import os
import subprocess

import pytest

from dnnbench.results.history import store
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

CASE = "fashion-mnist_b100_adam_tensor_e1_n2000_v1000_ev500_cpu"  # a smoke case, a few seconds
AUTHOR = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}


def git(repo, *args):
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env={**os.environ, **AUTHOR}
    ).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """This repository's HEAD, then a commit that changes nothing, then one whose dnnbench does not import."""
    repo = tmp_path_factory.mktemp("range") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    git(repo, "commit", "-q", "--allow-empty", "-m", "good")
    (repo / "dnnbench" / "__init__.py").write_text("def broken(:\n")
    git(repo, "commit", "-q", "-am", "broken")
    return repo


def measure(repo, history):
    args = ["--dir", str(history), "--runs", str(history) + "-runs", "--repo", str(repo)]
    return run_cli("history", *args, "--range", "HEAD~2..HEAD", "-k", CASE, "--seeds", "1", timeout=600)


def test_each_commit_is_measured_once_and_a_broken_one_is_recorded(repo, tmp_path):
    history = tmp_path / "h"
    out = measure(repo, history)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    good, broken = git(repo, "rev-parse", "HEAD~1"), git(repo, "rev-parse", "HEAD")
    assert f"{good[:12]}: added" in out.stdout and f"{broken[:12]}: failed" in out.stdout
    h = store.read(history)
    runs = h.runs.set_index("commit")
    assert runs.loc[good, "status"] == "ok" and runs.loc[broken, "status"] == "failed"
    assert "died" in runs.loc[broken, "reason"] and "SyntaxError" in runs.loc[broken, "reason"]
    assert h.points["case"].tolist() == [CASE] and h.points["throughput_samples_per_s"].iloc[0] > 0
    # the worktrees are gone; the runs stay for the page's links
    assert git(repo, "worktree", "list").count("\n") == 0
    assert (tmp_path / "h-runs").is_dir()

    again = measure(repo, history)  # resumable: the good commit is not measured again; the broken one is retried
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{good[:12]}: measured before" in again.stdout and f"{broken[:12]}: failed" in again.stdout
    lines = [json.loads(line) for line in (history / store.RUNS).read_text().splitlines()]
    assert [line["status"] for line in lines] == ["ok", "failed", "failed"]

    page = run_cli("history", "--dir", str(history), "--repo", str(repo))
    assert page.returncode == 0 and "1 commit(s) that failed to measure" in page.stdout


def test_a_range_that_is_not_one_is_one_line_exit_2(repo, tmp_path):
    for spec, expected in (("HEAD", "--range needs A..B"), ("nope..HEAD", "--range nope..HEAD:")):
        out = run_cli("history", "--dir", str(tmp_path / "h"), "--repo", str(repo), "--range", spec)
        assert out.returncode == 2 and expected in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "h").exists()
