"""Profiles of a tiny real case: py-spy's flame graph and speedscope, torch.profiler's ops and trace."""

import json
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from dnnbench.measurement.engine import run
from dnnbench.measurement.profile import PTRACE_HINT, _ptrace_refused
from dnnbench.views.report import build_report
from tests.conftest import run_cli, tiny

pytestmark = pytest.mark.slow

# from the smoke matrix's loaders suite, trained 5 epochs so that its steps are a clear share of the samples
# (at 1 epoch the 20 steps were under 1% of them, beside the imports, and a flame graph drops frames that narrow)
CASE = "fashion-mnist_b100_adam_tensor_n2000_v1000_ev500_cpu"
EPOCHS = ("--set", "epochs=5")


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
