"""Calibration: fixed probes of the machine's speed at a moment, taken around every case and run."""

from __future__ import annotations

import time

import numpy as np
import torch

# Two measures of the machine's speed at a moment, taken around every case and every run: a fixed
# matmul (compute-bound: GFLOP/s) and a fixed small training step (784-256-10 MLP, batch 64, Adam:
# steps/s), which also feels what slows small training steps (Python and dispatch overhead, memory
# traffic). The gate adjusts speed figures by one of them, with a slope fitted per case (docs/gate.md).


def matmul_gflops(device: str, size: int = 512, seconds: float = 0.3) -> dict[str, float | str]:
    """The machine's speed right now: median GFLOP/s of a fixed fp32 matmul on `device`.

    Measured at the start and end of every run so that the gate can compare speed figures from a
    faster or slower (or busier) machine by their ratio to it."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(dev)
    b = torch.randn(size, size, generator=gen).to(dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        a @ b
    sync()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        start = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - start)
    return {
        "gflops": 2 * size**3 / float(np.median(times)) / 1e9,
        "what": f"fp32 matmul {size}x{size} on {device}, {torch.get_num_threads()} threads, median of {len(times)}",
    }


def reference_step_rate(device: str, seconds: float = 0.05) -> dict[str, float | str]:
    """Median steps/s of a fixed small training step: 784-256-10 MLP, batch 64, cross-entropy, Adam."""
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
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"steps_per_s": 1 / float(np.median(times)), "what": f"784-256-10 MLP Adam step, batch 64, on {device}"}


def calibrate(device: str, seconds: float = 0.05) -> tuple[dict[str, float], str]:
    """Every probe, `seconds` each: (probe name → value, what was measured)."""
    matmul = matmul_gflops(device, seconds=seconds)
    reference = reference_step_rate(device, seconds=seconds)
    probes = {"matmul_gflops": float(matmul["gflops"]), "reference_steps_per_s": float(reference["steps_per_s"])}
    return probes, f"{matmul['what']}; {reference['what']}"
