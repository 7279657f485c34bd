"""The pytest front-end as a plugin: found through its entry point, inert where no suite is collected,
usable from a suite module of the user's own, and working with the lowest pytest-benchmark allowed."""

import json
import os
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

from dnnbench.results.frames import load
from tests.conftest import ROOT, run_bench

pytestmark = pytest.mark.slow

USER_SUITE = """
SUITE = "batch"


def test_my_suite(planned, measure):
    measure(planned)
"""


def _pytest(args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_the_plugin_is_inert_in_a_session_without_suites(tmp_path):
    (tmp_path / "test_plain.py").write_text("def test_one():\n    assert True\n")
    out = _pytest(["test_plain.py"], cwd=tmp_path)
    assert out.returncode == 0, out.stdout
    assert not (tmp_path / "results").exists()  # no run folder, no calibration, no run.json
    assert "dnnbench: matrix" not in out.stdout


def test_a_suite_module_of_the_users_own_is_measured(tmp_path):
    (tmp_path / "test_mine.py").write_text(USER_SUITE)
    results = tmp_path / "run"
    out = _pytest(["test_mine.py", "--matrix", "smoke", "--results", str(results), "-k", "synthetic_b100"], tmp_path)
    assert out.returncode == 0, out.stdout[-2000:]
    frame = load(results)
    assert list(frame["case_id"]) == ["synthetic_b100_adam_tensor_n2000_cpu"]
    assert frame.loc[0, "suite"] == "batch" and frame.loc[0, "throughput_samples_per_s"] > 0
    data = json.loads((results / "benchmark.json").read_text())
    assert [b["group"] for b in data["benchmarks"]] == ["batch"]


def _lowest_allowed(name: str) -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (req,) = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == name]
    (lowest,) = [s.version for s in req.specifier if s.operator == ">="]
    return lowest


def test_the_lowest_allowed_pytest_benchmark_writes_a_valid_benchmark_json(tmp_path):
    version = _lowest_allowed("pytest-benchmark")
    target = tmp_path / "site"
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            f"pytest-benchmark=={version}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    results = tmp_path / "run"
    env = {"PYTHONPATH": f"{target}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider", "--matrix", "smoke"]
    cmd += ["--results", str(results), "-k", "cubic or b1_adam_tensor"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:]
    data = json.loads((results / "benchmark.json").read_text())
    assert data["version"] == version  # written by that release's own hooks
    frame = load(results)
    ok = frame[frame.status == "ok"]
    timed = ok[ok.steps > ok.resolved_warmup_steps]  # a budget spent within the warm-up times no round
    assert len(data["benchmarks"]) == len(timed) > 0
    # the batch-1 case is stopped by its time budget: pytest-benchmark drops it, the record puts it back
    budgeted = ok[ok.reason.str.contains("training-time budget")]
    assert len(budgeted) >= 1
    names = {b["extra_info"]["case_id"] for b in data["benchmarks"]}
    assert set(budgeted[budgeted.case_id.isin(timed.case_id)].case_id) <= names
    assert all(b["stats"]["rounds"] >= 1 and b["stats"]["median"] > 0 for b in data["benchmarks"])


def test_bad_matrix_through_pytest_is_one_line_exit_2():
    out = run_bench("--matrix", "seed")
    assert out.returncode == 2
    assert "matrix 'seed' is now called 'note'" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_run_and_pytest_write_the_same_run_json_keys_and_metric_names(tmp_path):
    """One Run orchestrator behind both front-ends: the same case through `dnnbench run` and through a
    pytest suite leaves run.json with the same keys (calibration, status counts, exit status included)
    and records with the same fields."""
    case = "synthetic_b100_adam_tensor_n2000_cpu"
    (tmp_path / "test_mine.py").write_text(USER_SUITE)
    through_pytest, through_run = tmp_path / "pytest-run", tmp_path / "cli-run"
    out = _pytest(["test_mine.py", "--matrix", "smoke", "--results", str(through_pytest), "-k", case], tmp_path)
    assert out.returncode == 0, out.stdout[-2000:]
    cli = [sys.executable, "-m", "dnnbench", "run", "--matrix", "smoke", "--case", case, "--results", str(through_run)]
    done = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    metas = [json.loads((folder / "run.json").read_text()) for folder in (through_pytest, through_run)]
    assert set(metas[0]) == set(metas[1])
    assert {"calibration_start", "calibration_end", "status_counts", "exit_status"} <= set(metas[1])
    records = [
        json.loads((folder / "records.jsonl").read_text().splitlines()[0]) for folder in (through_pytest, through_run)
    ]
    assert set(records[0]["metrics"]) == set(records[1]["metrics"])
    assert set(records[0]) - {"benchmark"} == set(records[1]) - {"benchmark"}
