"""FLOPs per training step, counted by torch.utils.flop_counter on the case's own model, and the
device's peak measured in-run: the hardware's limit beside every throughput.

The count is FlopCounterMode's: matmuls (and convolutions) of forward and backward, which is what a
matmul peak bounds; element-wise work (activations, the optimizer) is left out of both, so the
roofline fraction reads as 'share of the matmul units' time spent on useful matmuls'.
"""

from __future__ import annotations

import copy
import functools
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

PEAK_SIZE = 2048  # a square matmul this large runs near the device's peak on CPUs and GPUs alike
PEAK_REPEATS = 5


def training_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, autocast=None) -> int:
    """FLOPs of one forward and backward on batch (x, y), on a copy of the model (the real one, its
    gradients and the random state are left untouched)."""
    clone = copy.deepcopy(getattr(model, "_orig_mod", model))  # a compiled model counts as its eager self
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []), FlopCounterMode(display=False) as counter:
        if autocast is not None:
            with autocast():
                loss = loss_fn(clone(x), y)
        else:
            loss = loss_fn(clone(x), y)
        loss.float().backward()
    return int(counter.get_total_flops())


@functools.lru_cache(maxsize=16)
def peak_gflops(device: str, dtype_name: str, threads: int, tf32: bool = False) -> float:
    """The best GFLOP/s of a few PEAK_SIZE³ matmuls in `dtype_name` on `device` with `threads` torch
    threads (cached per process: measured once per setting, in-run)."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    dev = torch.device(device)
    a = torch.randn(PEAK_SIZE, PEAK_SIZE, device=dev).to(dtype)
    b = torch.randn(PEAK_SIZE, PEAK_SIZE, device=dev).to(dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        a @ b
        sync()
        best = float("inf")
        for _ in range(PEAK_REPEATS):
            start = time.perf_counter()
            a @ b
            sync()
            best = min(best, time.perf_counter() - start)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return 2 * PEAK_SIZE**3 / best / 1e9
