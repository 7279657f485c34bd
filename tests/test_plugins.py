"""Workload plug-ins: the example package installed into a scratch environment runs through the smoke
path and shows in the report; a broken plug-in is one line naming it, exit 2, and no results folder."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT, run_bench, run_cli

EXAMPLE = ROOT / "examples" / "tiny-shapes-workload"


@pytest.fixture(scope="module")
def scratch_site(tmp_path_factory):
    """The example installed as a user installs a plug-in (its wheel built, its entry point written), into
    a folder of its own that only the child processes of these tests see."""
    site, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source)  # setuptools builds in the source folder: not in the repository's
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return site


def test_the_installed_example_runs_through_the_smoke_path_and_shows_in_the_report(scratch_site, tmp_path):
    results = tmp_path / "run"
    env = {"PYTHONPATH": str(scratch_site)}
    out = run_bench(
        "--matrix", "smoke", "--workload", "tiny-shapes", "--results", str(results),
        "-k", "b100_adam_tensor_e2_n2000 or adam_batchnorm+dropout or device_w2",
        env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    records = [json.loads(line) for line in (results / "records.jsonl").read_text().splitlines()]
    by_case = {r["case_id"]: r for r in records}
    assert {r["case"]["workload"] for r in records} == {"tiny-shapes"}
    trained = by_case["tiny-shapes_b100_adam_tensor_e2_n2000_v1000_ev500_cpu"]
    assert trained["status"] == "ok" and trained["target"]["metric"] == "val_accuracy"
    assert trained["metrics"]["final_test_accuracy"] > 1 / 3  # better than guessing among three shapes
    assert by_case["tiny-shapes_b100_adam_batchnorm+dropout_tensor_e2_n2000_v1000_ev500_cpu"]["status"] == "ok"
    assert "no DataLoader workers" in by_case["tiny-shapes_b100_adam_device_w2_e1_n2000_v1000_ev500_cpu"]["reason"]
    report = run_cli("report", str(results), env=env)
    assert report.returncode == 0, report.stderr
    html = (results / "report.html").read_text()
    assert "tiny-shapes_b100_adam_tensor_e2_n2000_v1000_ev500_cpu" in html


BROKEN = {
    "an import error": ("import not_a_module_anywhere\n", "failed to load: ModuleNotFoundError"),
    "a missing method": (
        """
        from dnnbench.definitions.workloads.base import Workload

        class NoModel(Workload):
            def make_splits(self, protocol, train_samples, features, data_dir):
                raise NotImplementedError

        WORKLOAD = NoModel
        """,
        "NoModel does not implement build_model",
    ),
    "wrong shapes": (
        """
        from torch import nn
        from tiny_base import TINY

        class WrongInput(type(TINY)):
            def build_model(self, choices):
                return nn.Sequential(nn.Flatten(), nn.Linear(10, 3))

        WORKLOAD = WrongInput(**TINY.fields())
        """,
        "does not take its train inputs of shape (4, 1, 16, 16)",
    ),
    "a loss that is not a scalar": (
        """
        from torch import nn
        from tiny_base import TINY

        class PerSampleLoss(type(TINY)):
            def make_loss(self):
                return nn.CrossEntropyLoss(reduction="none")

        WORKLOAD = PerSampleLoss(**TINY.fields())
        """,
        "its loss is not a scalar (got (4,))",
    ),
    "not a workload": ("WORKLOAD = 42\n", "is a int, not a dnnbench Workload"),
    "data that cannot be found": (
        """
        from tiny_base import TINY

        class NoData(type(TINY)):
            def require(self, data_dir):
                raise FileNotFoundError("no data at /nowhere")

        WORKLOAD = NoData(**TINY.fields())
        """,
        "finding its data failed: FileNotFoundError: no data at /nowhere",
    ),
    "validation inputs of another width": (
        """
        import dataclasses
        from tiny_base import TINY

        class OddValidation(type(TINY)):
            def make_splits(self, *args):
                splits = super().make_splits(*args)
                val = type(splits.val)(splits.val.x[:, :, :8, :8], splits.val.y)
                return dataclasses.replace(splits, val=val)

        WORKLOAD = OddValidation(**TINY.fields())
        """,
        "does not take its val inputs of shape (4, 1, 8, 8)",
    ),
    "a model that breaks only with BatchNorm": (
        """
        from tiny_base import TINY

        class NoBatchNorm(type(TINY)):
            def build_model(self, choices):
                if choices.batchnorm:
                    raise NotImplementedError("no BatchNorm here")
                return super().build_model(choices)

        WORKLOAD = NoBatchNorm(**TINY.fields())
        """,
        "build_model failed for widths (8, 16), relu, BatchNorm: NotImplementedError: no BatchNorm here",
    ),
}


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_broken_plugin_is_one_line_naming_it_and_writes_nothing(kind, tmp_path):
    source, message = BROKEN[kind]
    (tmp_path / "tiny_base.py").write_text(
        "import dataclasses, sys\n"
        f"sys.path.insert(0, {str(EXAMPLE)!r})\n"
        "from dnnbench_tiny_shapes import WORKLOAD as TINY\n"
        "type(TINY).fields = lambda self: {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}\n"
    )
    plugin = tmp_path / "broken.py"
    plugin.write_text(textwrap.dedent(source))
    results = tmp_path / "results"
    out = run_cli("run", "--matrix", "smoke", "--workload", str(plugin), "--results", str(results),
                  env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert str(plugin) in out.stderr and message in out.stderr
    assert not results.exists()
    # the same plug-in through --set workload= is checked alike
    out = run_cli("run", "--matrix", "smoke", "--set", f"workload={plugin}", "--set", "protocol=benchmark",
                  "--results", str(results), env={"PYTHONPATH": str(tmp_path)})  # fmt: skip
    assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert not results.exists()


def test_a_file_plugin_is_found_again_by_a_child_process(monkeypatch, tmp_path):
    # torchrun ranks, A/B workers and DataLoader workers only see the workload's name in a case: the
    # plug-in a run loaded must be found again from what they inherit.
    from dnnbench.definitions import workloads
    from dnnbench.definitions.workloads import plugins

    monkeypatch.delenv(plugins.ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # a relative path, resolved for children that start elsewhere
    spec = os.path.relpath(EXAMPLE / "dnnbench_tiny_shapes" / "__init__.py", tmp_path)
    assert workloads.use(spec) == "tiny-shapes"
    child = subprocess.run(
        [sys.executable, "-c", "from dnnbench.definitions.workloads import get_workload as g; print(g('tiny-shapes'))"],
        capture_output=True, text=True, timeout=120, cwd="/",
    )  # fmt: skip
    assert child.returncode == 0 and "tiny-shapes" in child.stdout, child.stderr
    workloads.WORKLOADS.pop("tiny-shapes")


def test_the_workloads_command_lists_a_plugin_with_its_target_and_reason():
    out = run_cli("workloads", "--workload", str(EXAMPLE / "dnnbench_tiny_shapes" / "__init__.py"))
    assert out.returncode == 0, out.stderr
    line = next(row for row in out.stdout.splitlines() if row.startswith("| tiny-shapes |"))
    assert "val_accuracy 0.85" in line and "measured: Adam at batch 100 passes 0.85" in line
