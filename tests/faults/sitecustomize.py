"""Test-side fault injection, from outside the product: Python imports this file at start-up when its
folder is on PYTHONPATH, and DNNBENCH_FAULT names the fault. The product has no switch for any of it.

    DNNBENCH_FAULT=slow_step      the engine's training step ~25% longer (a busy wait before its last
                                  clock mark); the calibration probes do not run the engine's step
    DNNBENCH_FAULT=slow_backward  torch.autograd.backward slower on every call, for everyone (the torch
                                  calibration probes too): +DNNBENCH_FAULT_SIZE of each call's own time
    DNNBENCH_FAULT=slow_fetch     every DataLoader batch fetch waits DNNBENCH_FAULT_SIZE of the time
                                  since the previous fetch began (about that share of a step)
    DNNBENCH_FAULT=broken_lr      the optimizers' default learning rates 1000x too small

DNNBENCH_FAULT_SIZE defaults to 0.2 (slow_backward: 1.0, backward being a sixth to a third of a step;
slow_fetch: 0.15);
with the defaults each fault slows the cases it reaches by about 20-25% (docs/gate.md has the figures).
tests/faults/python is an interpreter wrapper that puts this folder on PYTHONPATH: a second "Python
environment" for `dnnbench ab --head-python`.
"""

import os
import time

FAULT = os.environ.get("DNNBENCH_FAULT", "")


def _busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _size(default: float) -> float:
    return float(os.environ.get("DNNBENCH_FAULT_SIZE", default))


def slow_step() -> None:
    from dnnbench.measurement.training import Training

    original, size = Training.step, _size(0.2)

    def step(self):
        start = time.perf_counter()
        real_mark = self._mark

        def mark(phase):
            if phase == "optimizer":  # the step's last mark: stretch the step before it closes
                _busy_wait(size * (time.perf_counter() - start))
            real_mark(phase)

        self._mark = mark
        try:
            original(self)
        finally:
            self._mark = real_mark

    Training.step = step


def slow_backward() -> None:
    import torch.autograd

    original, size = torch.autograd.backward, _size(1.0)

    def backward(*args, **kwargs):
        start = time.perf_counter()
        out = original(*args, **kwargs)
        _busy_wait(size * (time.perf_counter() - start))
        return out

    torch.autograd.backward = backward


def slow_fetch() -> None:
    from torch.utils.data import dataloader

    original, size = dataloader._BaseDataLoaderIter.__next__, _size(0.15)
    last = {"start": None}

    def fetch(self):
        start = time.perf_counter()
        out = original(self)
        if last["start"] is not None:
            _busy_wait(size * (start - last["start"]))
        last["start"] = start
        return out

    dataloader._BaseDataLoaderIter.__next__ = fetch


def broken_lr() -> None:
    from dnnbench.measurement import resolve

    original = resolve.default_lr
    resolve.default_lr = lambda name: original(name) / 1000


if FAULT:
    {"slow_step": slow_step, "slow_backward": slow_backward, "slow_fetch": slow_fetch, "broken_lr": broken_lr}[FAULT]()
