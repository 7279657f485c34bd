"""CUDA paths: run wherever a GPU is present (`make test` on a GPU machine); on a CPU-only machine
the same paths must refuse clearly, which the last test checks there."""

import pytest
import torch

from dnnbench.core.errors import BadInput
from dnnbench.definitions.plan import expand
from dnnbench.measurement.calibration import matmul_gflops
from dnnbench.measurement.clocks import CudaStepClock
from dnnbench.measurement.engine import run
from tests.conftest import run_bench, run_cli, tiny

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("loader", ["torchvision", "tensor", "device"])
def test_a_case_on_cuda_is_measured_with_cuda_clocks(loader):
    r = run(tiny(device="cuda", loader=loader, train_samples=1000), seed=1)
    assert r.status == "ok", r.reason
    assert r.env["gpu_name"] and r.memory_kind == "cuda_max_allocated"
    assert r.metrics["peak_memory_bytes"] > 0
    assert r.phase_fractions["forward"] > 0 and r.phase_fractions["backward"] > 0
    assert r.metrics["final_test_accuracy"] > 0.3


@needs_cuda
@pytest.mark.cuda
def test_pinned_copies_run_on_cuda():
    r = run(tiny(device="cuda", pin_memory=True, num_workers=1), seed=1)
    assert r.status == "ok", r.reason
    assert expand("smoke", device="cuda")[0].case.device == "cuda"
    assert not any("pin_memory" in (p.skip_reason or "") for p in expand("smoke", device="cuda"))


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_lenet5_trains_on_cuda_in_either_layout(layout):
    case = tiny(
        workload="lenet5-fashion-mnist", device="cuda", loader="device", memory_format=layout, train_samples=2000
    )
    r = run(case, seed=1)
    assert r.status == "ok", r.reason
    assert r.metrics["flops_per_sample"] > 1e6 and 0 < r.metrics["roofline_fraction"] < 1
    assert r.metrics["final_test_accuracy"] > 0.3


@needs_cuda
@pytest.mark.cuda
def test_image_files_feed_cuda_through_pinned_workers():
    r = run(tiny(device="cuda", loader="imagefiles", num_workers=1, pin_memory=True, train_samples=1000), seed=1)
    assert r.status == "ok", r.reason
    assert r.phase_fractions["data_wait"] > 0


@needs_cuda
@pytest.mark.cuda
def test_the_deep_net_records_its_gradient_ratio_on_cuda():
    case = tiny(workload="deep-fashion-mnist", device="cuda", loader="device", optimizer="sgd", activation="sigmoid")
    r = run(case, seed=1)
    assert r.status == "ok", r.reason
    assert 0 < r.metrics["grad_norm_ratio"] < 1


@needs_cuda
@pytest.mark.cuda
def test_resnet18_trains_on_cuda_on_a_written_cifar(tmp_path):
    from tests.test_cifar10 import write_cifar

    write_cifar(tmp_path)
    case = tiny(workload="resnet18-cifar10", device="cuda", loader="device", batch_size=8, train_samples=16,
                eval_samples=8, memory_format="channels_last", warmup_steps=0)  # fmt: skip
    r = run(case, seed=1, data_dir=str(tmp_path))
    assert r.status == "ok", r.reason
    assert r.metrics["steps"] == 2


@needs_cuda
@pytest.mark.cuda
def test_cuda_clock_and_calibration():
    clock = CudaStepClock()
    a = torch.randn(1024, 1024, device="cuda")
    clock.begin()
    for phase in ("data_wait", "copy", "forward", "backward", "optimizer"):
        a = a @ a / 1024
        clock.mark(phase)
    rows = clock.collect()
    assert rows.shape == (1, 5) and (rows > 0).all()
    assert matmul_gflops("cuda")["gflops"] > 100


@needs_cuda
@pytest.mark.cuda
@pytest.mark.slow
def test_smoke_matrix_on_cuda(tmp_path):
    out = run_bench("--matrix", "smoke", "--device", "cuda", "--results", str(tmp_path), "-k", "b100_adam or cubic")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "dnnbench.measurement.clocks.synchronized_perf_counter" in (tmp_path / "benchmark.json").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_cuda_the_cuda_paths_refuse_in_one_line():
    with pytest.raises(BadInput, match="no CUDA device is available"):
        expand("smoke", device="cuda")
    out = run_cli("list", "--device", "cuda")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "choose from: cpu, auto" in out.stderr
    assert expand("smoke", device="auto")[0].case.device == "cpu"  # auto falls back, and says so in ids
