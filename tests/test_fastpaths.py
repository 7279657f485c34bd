"""The hardware's limit and PyTorch's fast paths: FLOPs counted on the model, axes skipped where the
device cannot run them, a compile failure recorded and the run going on."""

import json
import os

import pytest
import torch
from torch import nn

from dnnbench.definitions import fastpaths
from dnnbench.definitions.cases import Case
from dnnbench.definitions.plan import expand, skip_reason
from dnnbench.measurement.engine import run
from dnnbench.measurement.flops import training_flops
from dnnbench.results.frames import load
from tests.conftest import ROOT, run_bench, tiny


def test_flops_of_a_tiny_mlp_match_the_analytic_count():
    n, a, b, c = 8, 5, 7, 3
    model = nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, c))
    x, y = torch.randn(n, a), torch.randint(0, c, (n,))
    # forward: 2·n·(ab + bc); backward: the weight gradients 2·n·(ab + bc), and the gradient through the
    # second layer to the hidden activations 2·n·bc (the input needs none)
    assert training_flops(model, x, y, nn.CrossEntropyLoss()) == 4 * n * (a * b + b * c) + 2 * n * b * c
    assert model[0].weight.grad is None  # counted on a copy: the model itself is untouched


def test_every_record_carries_the_roofline():
    m = run(tiny(), seed=1).metrics
    assert m["flops_per_sample"] == 4 * (784 * 500 + 500 * 10) + 2 * 500 * 10
    assert m["peak_gflops"] > 1 and 0 < m["roofline_fraction"] <= 1
    assert m["achieved_gflops"] == pytest.approx(m["flops_per_sample"] * m["throughput_samples_per_s"] / 1e9)


def test_a_flop_count_that_fails_is_recorded_with_its_reason_and_the_case_stands(monkeypatch):
    from dnnbench.measurement import recording

    def cannot_trace(*args, **kwargs):
        raise RuntimeError("an op FlopCounterMode cannot trace\nsecond line")

    monkeypatch.setattr(recording, "training_flops", cannot_trace)
    r = run(tiny(), seed=1)
    assert r.status == "ok" and r.metrics["throughput_samples_per_s"] > 0
    assert r.metrics["flops_per_sample"] is None and r.metrics["roofline_fraction"] is None
    assert r.resolved["flops_error"] == "FLOPs not counted: RuntimeError: an op FlopCounterMode cannot trace"


def test_the_peak_is_measured_again_when_the_machine_has_drifted(monkeypatch):
    # The small drift probe says how fast the machine runs now; the big peak matmul is measured again only
    # when that moved beyond the limit since the peak was taken.
    from dnnbench.measurement import flops

    speed = {"now": 100.0}
    measured = []

    def rate(device, dtype_name, size, tf32):
        if size == flops.PEAK_SIZE:
            measured.append(speed["now"])
            return 3 * speed["now"]
        return speed["now"]

    monkeypatch.setattr(flops, "_rate", rate)
    monkeypatch.setattr(flops, "_PEAKS", {})
    assert flops.peak_gflops("cpu", "fp32", 2) == 300.0 and measured == [100.0]
    speed["now"] = 115.0  # within the limit: the peak stands
    assert flops.peak_gflops("cpu", "fp32", 2) == 300.0 and measured == [100.0]
    speed["now"] = 60.0  # another job took the cores: measured again
    assert flops.peak_gflops("cpu", "fp32", 2) == 180.0 and measured == [100.0, 60.0]
    assert flops.peak_gflops("cpu", "fp32", 1) == 180.0 and len(measured) == 3  # another setting: its own


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"compile": "reduce-overhead"}, "captures CUDA graphs: CUDA only"),
        ({"precision": "tf32"}, "tf32 is a matmul mode of NVIDIA GPUs: CUDA only"),
        ({"optimizer": "rmsprop", "optimizer_impl": "fused"}, "torch.optim.RMSprop has no fused implementation"),
        ({"optimizer": "adadelta", "optimizer_impl": "fused"}, "torch.optim.Adadelta has no fused implementation"),
    ],
)
def test_an_axis_value_the_cpu_cannot_run_is_skipped_with_its_reason(changes, reason):
    assert reason in skip_reason(Case(**changes))


def test_the_values_the_cpu_can_run_are_not_skipped():
    runnable = [Case(optimizer_impl=i) for i in ("for-loop", "foreach", "fused")] + [Case(compile="default")]
    assert [skip_reason(c) for c in runnable] == [None] * 4
    # Every case of the matrix is skipped exactly when it asks for what this machine lacks: CUDA-only
    # values always on a CPU, bf16 where oneDNN has no bf16 kernels for this CPU (read, not assumed).
    bf16_here = fastpaths._cpu_bf16()
    plan = expand("fastpaths")
    for p in plan:
        cuda_only = p.case.compile == "reduce-overhead" or p.case.precision == "tf32"
        lacking = cuda_only or (p.case.precision == "bf16" and not bf16_here)
        assert (p.skip_reason is not None) == lacking, (p.case.id, p.skip_reason)
    assert any(p.case.precision == "bf16" for p in plan)  # the rule above was tried on bf16 cases


@pytest.mark.parametrize("has_bf16", [True, False])
def test_bf16_on_a_cpu_is_skipped_exactly_where_onednn_lacks_it(monkeypatch, has_bf16):
    monkeypatch.setattr(fastpaths, "_cpu_bf16", lambda: has_bf16)
    reason = skip_reason(Case(precision="bf16"))
    if has_bf16:
        assert reason is None
    else:
        assert "this CPU has no bf16 support in oneDNN (it needs AVX-512 or AMX)" in reason


@pytest.mark.slow
def test_a_compile_failure_is_an_error_record_and_the_run_goes_on(tmp_path):
    env = {"PYTHONPATH": f"{ROOT / 'tests' / 'faults'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = run_bench(
        "--matrix", "fastpaths", "--set", "train_samples=2000", "--results", str(tmp_path),
        "-k", "b100_adam_device_e1_n2000_compile_cpu or b100_adam_device_e1_n2000_fused_cpu",
        env={**env, "DNNBENCH_FAULT": "broken_compile"},
    )  # fmt: skip
    assert out.returncode == 1, out.stdout[-2000:]  # the error fails its test, after being journaled
    frame = load(tmp_path).set_index("case_id")
    broken = frame.loc["fashion-mnist_b100_adam_device_e1_n2000_compile_cpu"]
    assert broken.status == "error" and broken.reason == "RuntimeError: backend='inductor' raised:"
    assert frame.loc["fashion-mnist_b100_adam_device_e1_n2000_fused_cpu"].status == "ok"
    assert "Traceback" not in out.stdout + out.stderr
    assert json.loads((tmp_path / "benchmark.json").read_text())["benchmarks"]  # the run's file is whole
