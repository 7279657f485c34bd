"""Calibration: fixed probes of the machine's speed at a moment, taken around every case and run.

Two kinds, kept apart on purpose (docs/gate.md):
- probes that run torch, as the cases do: a fixed matmul (GFLOP/s) and a small reference training
  step (784-256-10 MLP, batch 64, Adam: steps/s). They feel what slows small training steps, but a
  slower torch slows them too, so dividing a case by them divides a torch regression away.
- independent probes that share no code with what is benchmarked: a small multi-threaded GEMM in
  NumPy's own BLAS (OpenBLAS; it feels the second core's availability and thread wake-ups as
  torch's intra-op threads do) and a pure-Python loop (the interpreter's speed).
The gate adjusts speed by an independent probe and uses the torch probes only to say when the
calibration itself moved with the change.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch


def _median_rate(work: Callable[[], object], seconds: float, sync: Callable[[], None] = lambda: None) -> float:
    """Calls per second of `work`: the median over repeated timed calls for about `seconds`."""
    for _ in range(3):
        work()
    sync()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        start = time.perf_counter()
        work()
        sync()
        times.append(time.perf_counter() - start)
    return 1 / float(np.median(times))


def matmul_gflops(device: str, size: int = 512, seconds: float = 0.3) -> dict[str, float | str]:
    """Median GFLOP/s of a fixed fp32 matmul on `device` (torch)."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dev)
    b = torch.randn(size, size, generator=gen).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rate = _median_rate(lambda: a @ b, seconds, sync)
    return {
        "gflops": 2 * size**3 * rate / 1e9,
        "what": f"fp32 matmul {size}x{size} on {device}, {torch.get_num_threads()} threads",
    }


def reference_step_rate(device: str, seconds: float = 0.05) -> dict[str, float | str]:
    """Median steps/s of a fixed small training step: 784-256-10 MLP, batch 64, cross-entropy, Adam (torch)."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(64, 784, generator=gen).to(dev)
    y = torch.randint(0, 10, (64,), generator=gen).to(dev)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    return {
        "steps_per_s": _median_rate(step, seconds, sync),
        "what": f"784-256-10 MLP Adam step, batch 64, on {device}",
    }


_GEMM = np.random.default_rng(0).standard_normal((2, 512, 512)).astype(np.float32)


def numpy_gemm_rate(seconds: float = 0.05) -> float:
    """Median calls/s of a 256x512 @ 512x512 fp32 GEMM in NumPy's BLAS (not torch's), all its threads."""
    a, b = _GEMM[0, :256], _GEMM[1]
    return _median_rate(lambda: a @ b, seconds)


def _python_work() -> int:
    total = 0
    for i in range(20_000):
        total += i * i % 7
    return total


def python_mops(seconds: float = 0.05) -> float:
    """Millions of loop iterations per second of a fixed pure-Python loop: the interpreter's speed."""
    return 20_000 * _median_rate(_python_work, seconds) / 1e6


def calibrate(device: str, seconds: float = 0.05) -> tuple[dict[str, float], str]:
    """Every probe, about `seconds` each: (probe name → value, what was measured)."""
    matmul = matmul_gflops(device, seconds=seconds)
    reference = reference_step_rate(device, seconds=seconds)
    probes = {
        "matmul_gflops": float(matmul["gflops"]),
        "reference_steps_per_s": float(reference["steps_per_s"]),
        "numpy_gemm_per_s": numpy_gemm_rate(seconds),
        "python_mops": python_mops(seconds),
    }
    what = f"{matmul['what']}; {reference['what']}; numpy 256x512x512 GEMM; pure-Python loop"
    return probes, what
