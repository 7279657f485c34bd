"""FLOPs per training step, counted by torch.utils.flop_counter on the case's own model, and the
device's peak measured in-run: the hardware's limit beside every throughput.

The count is FlopCounterMode's: matmuls (and convolutions) of forward and backward, which is what a
matmul peak bounds; element-wise work (activations, the optimizer) is left out of both, so the
roofline fraction reads as 'share of the matmul units' time spent on useful matmuls'.
"""

from __future__ import annotations

import copy
import math
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


DRIFT_PROBE_SIZE = 512  # a matmul small enough to time in milliseconds before every use of the peak
DRIFT_LIMIT = 0.25  # the probe moved more than this since the peak was measured: measure the peak again

# (device, dtype, threads, tf32) -> (peak GFLOP/s, the drift probe's GFLOP/s when it was measured)
_PEAKS: dict[tuple[str, str, int, bool], tuple[float, float]] = {}


def peak_gflops(device: str, dtype_name: str, threads: int, tf32: bool = False) -> float:
    """The best GFLOP/s of a few PEAK_SIZE³ matmuls in `dtype_name` on `device` with `threads` torch
    threads, measured in-run. Kept per setting while the machine runs as fast as when it was measured: a
    small matmul is timed before each use, and when it moved more than DRIFT_LIMIT (another job came or
    went, the clock changed) the peak is measured again, so a case's roofline share is against the
    machine as it ran that case."""
    key = (device, dtype_name, threads, tf32)
    now = _rate(device, dtype_name, DRIFT_PROBE_SIZE, tf32)
    cached = _PEAKS.get(key)
    if cached is not None and abs(math.log(now / cached[1])) <= math.log1p(DRIFT_LIMIT):
        return cached[0]
    peak = _rate(device, dtype_name, PEAK_SIZE, tf32)
    _PEAKS[key] = (peak, now)
    return peak


def _rate(device: str, dtype_name: str, size: int, tf32: bool) -> float:
    """The best GFLOP/s of PEAK_REPEATS size³ matmuls (after one untimed)."""
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    dev = torch.device(device)
    a = torch.randn(size, size, device=dev).to(dtype)
    b = torch.randn(size, size, device=dev).to(dtype)
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
    return 2 * size**3 / best / 1e9
