"""Profiles of a tiny real case: py-spy's flame graph and speedscope, torch.profiler's ops and trace."""

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pandas as pd
import pytest

from dnnbench.measurement.engine import run
from dnnbench.measurement.profile import PTRACE_HINT, StepWindow, _ptrace_refused
from dnnbench.views.report import build_report
from tests.conftest import run_cli, tiny

pytestmark = pytest.mark.slow

# from the smoke matrix's loaders suite, trained 5 epochs (100 steps): a few seconds of steps for py-spy's window
CASE = "fashion-mnist_b100_adam_tensor_n2000_v1000_ev500_cpu"
EPOCHS = ("--set", "epochs=5")
STEPS = 100  # 5 epochs of 2,000 samples in batches of 100


def stack_share(speedscope: dict, holds: Callable[[dict], bool]) -> float:
    """The share of py-spy's samples (by weight, over every process and thread) whose stack holds a frame
    for which `holds` is true."""
    frames = speedscope["shared"]["frames"]
    total = hit = 0.0
    for profile in speedscope["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            total += weight
            hit += weight if any(holds(frames[i]) for i in stack) else 0.0
    return hit / total


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    results = tmp_path_factory.mktemp("run")
    out = run_cli("profile", "--matrix", "smoke", *EPOCHS, "--case", CASE, "--results", str(results))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return results / "profiles" / CASE, out


def test_flame_graph_is_svg_naming_dnnbench_code(profiled):
    folder, _ = profiled
    root = ET.parse(folder / "flame.svg").getroot()
    assert root.tag.endswith("svg")
    text = (folder / "flame.svg").read_text()
    assert "dnnbench/measurement/step.py" in text and "training_step" in text


def test_speedscope_has_samples(profiled):
    folder, _ = profiled
    data = json.loads((folder / "speedscope.json").read_text())
    assert data["$schema"].startswith("https://www.speedscope.app/")
    samples = sum(len(p.get("samples", [])) for p in data["profiles"])
    assert samples > 50
    names = {f["name"] for f in data["shared"]["frames"]}
    assert "training_step" in names


def test_py_spy_samples_the_steps_not_the_start_up(profiled):
    # The whole-run profile this replaced: 36% of the samples in imports, 35% in Training.step (it fails both).
    folder, _ = profiled
    data = json.loads((folder / "speedscope.json").read_text())
    importing = stack_share(data, lambda f: f["name"] == "_find_and_load" and "importlib" in (f["file"] or ""))
    stepping = stack_share(data, lambda f: f["name"] == "Training.step" and f["file"].endswith("training.py"))
    assert importing < 0.10, f"{importing:.1%} of the samples import modules"
    assert stepping > 0.50, f"only {stepping:.1%} of the samples are in Training.step"


def test_window_is_recorded_and_printed(profiled):
    folder, out = profiled
    windows = json.loads((folder / "profile.json").read_text())["py_spy_windows"]
    assert set(windows) == {"flame.svg", "speedscope.json"}
    for name, window in windows.items():
        assert window["covers"] == "steps" and window["status"] == "ok" and window["missed"] == []
        assert (window["first_step"], window["last_step"], window["warmup_steps"]) == (1, STEPS, 10)
        assert 0 < window["train_time_s"] <= window["window_s"] < window["child_s"]
        line = f"py-spy window ({name}): steps 1–{STEPS} (10 of them warm-up, with the evaluations between them), "
        line += f"{window['window_s']:.1f} s of the child's {window['child_s']:.1f} s run; imports and set-up left out"
        assert line in out.stdout and line.endswith(window["says"])  # profile.json says it in the same words


def test_the_child_holds_for_the_parent_a_bounded_time(tmp_path):
    # a parent that never answers costs the child hold_s at each edge, and the window says it is not exact
    window = StepWindow(tmp_path, hold_s=0.05)
    window.steps_begin()
    (tmp_path / "stopped").touch()
    window.steps_end()
    assert (tmp_path / "begin").exists() and (tmp_path / "end").exists()
    assert window.missed == ["go"] and 0.05 <= window.held_s < 1.0


FAKE_PY_SPY = """#!/bin/sh
# py-spy where ptrace allows a child of py-spy's but not another process (Yama's ptrace_scope=1, not root)
for arg in "$@"; do
  if [ "$arg" = --pid ]; then echo "Error: Permission Denied: Try running again with elevated permissions"; exit 1; fi
done
while [ $# -gt 0 ]; do if [ "$1" = -o ]; then echo stand-in > "$2"; fi; shift; done
"""


def test_a_refused_attach_records_the_whole_run(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "py-spy").write_text(FAKE_PY_SPY)
    (bin_dir / "py-spy").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    args = ("profile", "--matrix", "smoke", *EPOCHS, "--case", CASE, "--tool", "py-spy", "--out", str(tmp_path / "p"))
    out = run_cli(*args, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "warning: py-spy may not attach to the running case here (ptrace refused)" in out.stdout
    meta = json.loads((tmp_path / "p" / "profile.json").read_text())
    assert set(meta["files"]) == {"flame.svg", "speedscope.json"}
    assert {w["covers"] for w in meta["py_spy_windows"].values()} == {"whole run"}
    assert "py-spy window (flame.svg): the whole run, start-up included" in out.stdout


def test_ops_csv_and_trace(profiled):
    folder, out = profiled
    ops = pd.read_csv(folder / "ops.csv")
    assert "aten::addmm" in set(ops["operator"])
    assert {"dnnbench::forward", "dnnbench::backward", "dnnbench::optimizer"} <= set(ops["operator"])
    assert (ops["self_cpu_us"] >= 0).all()
    trace = json.loads((folder / "trace.json").read_text())
    assert trace["traceEvents"]
    assert "Self CPU" in out.stdout  # the terminal table
    assert "phase split (whole run): data_wait" in out.stdout


def test_report_links_the_profile(profiled, tmp_path):
    folder, _ = profiled
    run_folder = folder.parent.parent
    run_cli("run", "--matrix", "smoke", *EPOCHS, "--case", CASE, "--results", str(run_folder))
    files = build_report([run_folder])
    html = files.html.read_text()
    assert 'id="profiles"' in html
    assert f'href="profiles/{CASE}/flame.svg"' in html and f'href="profiles/{CASE}/trace.json"' in html
    assert "aten::addmm" in html


def test_torchvision_loader_waits_for_data_more_than_the_device_loader():
    tv = run(tiny(train_samples=2000, loader="torchvision"), seed=1)
    dev = run(tiny(train_samples=2000, loader="device"), seed=1)
    assert tv.phase_fractions["data_wait"] > 2 * dev.phase_fractions["data_wait"]


def test_unknown_tool_and_case_are_bad_input():
    out = run_cli("profile", "--matrix", "smoke", *EPOCHS, "--case", CASE, "--tool", "perf")
    assert out.returncode == 2 and "unknown tool 'perf'; choose from: py-spy, torch, all" in out.stderr
    out = run_cli("profile", "--matrix", "smoke", "--case", "nope")
    assert out.returncode == 2 and "unknown case id 'nope'" in out.stderr


def test_ptrace_refusal_is_recognised():
    # py-spy's own wording when the kernel refuses to let it read another process
    assert _ptrace_refused("Error: Permission Denied: Try running again with elevated permissions")
    assert _ptrace_refused("Failed to attach: Operation not permitted (os error 1)")
    assert not _ptrace_refused("Error: Failed to find python version from target process")
    assert "kernel.yama.ptrace_scope" in PTRACE_HINT and "SYS_PTRACE" in PTRACE_HINT
