"""Where PyTorch's fast paths apply: a case axis value this machine cannot run is skipped with the reason."""

from __future__ import annotations

import functools
import shutil

from dnnbench.definitions.cases import Case
from dnnbench.definitions.optimizers import OPTIMIZERS


@functools.lru_cache(maxsize=64)
def _optimizer_impl_error(torch_class: str, impl: str, device: str) -> str | None:
    import torch

    options = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[impl]
    param = torch.nn.Parameter(torch.zeros(2, device=device))
    try:
        optimizer = getattr(torch.optim, torch_class)([param], lr=0.1, **options)
        param.grad = torch.zeros_like(param)
        optimizer.step()
    except (TypeError, RuntimeError, ValueError) as exc:
        return str(exc).strip().splitlines()[0]
    return None


@functools.lru_cache(maxsize=1)
def _cpu_bf16() -> bool:
    import torch

    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def skip_reason(case: Case) -> str | None:
    """Why this machine cannot run the case's fast-path settings, or None."""
    cpu = case.device == "cpu"
    if case.compile == "reduce-overhead" and cpu:
        return "compile mode reduce-overhead captures CUDA graphs: CUDA only"
    if case.compile != "off" and cpu and not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
        return "torch.compile on CPU needs a C++ compiler (g++), and none is on PATH"
    if case.precision == "tf32" and cpu:
        return "tf32 is a matmul mode of NVIDIA GPUs: CUDA only"
    if case.precision == "bf16" and cpu and not _cpu_bf16():
        return "this CPU has no bf16 support in oneDNN (it needs AVX-512 or AMX), so bf16 autocast would be emulated"
    if case.optimizer_impl not in ("default",):
        if case.device == "cuda":
            import torch

            if not torch.cuda.is_available():
                return None  # the device rule says why
        torch_class = OPTIMIZERS[case.optimizer].torch_class
        error = _optimizer_impl_error(torch_class, case.optimizer_impl, case.device)
        if error:
            return f"torch.optim.{torch_class} has no {case.optimizer_impl} implementation here ({error})"
    return None
