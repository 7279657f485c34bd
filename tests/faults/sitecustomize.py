"""Test-side fault injection, from outside the product: Python imports this file at start-up when its
folder is on PYTHONPATH, and DNNBENCH_FAULT names the fault. The product has no switch for any of it.

    DNNBENCH_FAULT=slow_step      the engine's training step ~25% longer (a busy wait before its last
                                  clock mark); the calibration probes do not run the engine's step
    DNNBENCH_FAULT=slow_backward  torch.autograd.backward slower on every call, for everyone (the torch
                                  calibration probes too): +DNNBENCH_FAULT_SIZE of each call's own time
    DNNBENCH_FAULT=slow_fetch     every DataLoader batch fetch waits DNNBENCH_FAULT_SIZE of the time
                                  since the previous fetch began (about that share of a step)
    DNNBENCH_FAULT=broken_lr      the optimizers' default learning rates 1000x too small
    DNNBENCH_FAULT=broken_compile a compiled model fails on its first call (an inductor failure)
    DNNBENCH_FAULT=unpinned_malloc the engine leaves malloc's thresholds dynamic (dnnbench before the fix)
    DNNBENCH_FAULT=crash_b100     raises while journaling every batch-100 record (a head that breaks one class
                                  of cases: nothing of them is recorded)
    DNNBENCH_FAULT=pause_<moment> at the DNNBENCH_FAULT_AFTER-th (default 1st) time the process reaches the
                                  moment, create the file DNNBENCH_FAULT_MARKER and sleep DNNBENCH_FAULT_PAUSE
                                  seconds (default 60), so that a test can signal it right there. Moments:
                                  step (inside a training step), eval (inside an evaluation), journal (between
                                  two halves of a records.jsonl write), benchmark_json (before benchmark.json
                                  is renamed into place), report (between two charts of a report);
                                  DNNBENCH_FAULT_RANK=N: only data-parallel rank N

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


class _Moment:
    """Counts arrivals at a moment; at the chosen one, leaves the marker and waits to be signalled."""

    def __init__(self) -> None:
        self.seen = 0
        self.after = int(os.environ.get("DNNBENCH_FAULT_AFTER", "1"))

    def reached(self) -> None:
        rank = os.environ.get("DNNBENCH_FAULT_RANK")
        if rank is not None and os.environ.get("LOCAL_RANK") != rank:
            return  # a data-parallel case: only that rank pauses
        self.seen += 1
        if self.seen == self.after:
            with open(os.environ["DNNBENCH_FAULT_MARKER"], "w") as f:
                f.write(str(os.getpid()))
            time.sleep(float(os.environ.get("DNNBENCH_FAULT_PAUSE", "60")))


def pause_step() -> None:
    from dnnbench.measurement import training

    moment, original = _Moment(), training.training_step

    def step(*args, **kwargs):
        moment.reached()
        return original(*args, **kwargs)

    training.training_step = step


def pause_eval() -> None:
    from dnnbench.measurement import training

    moment, original = _Moment(), training.evaluate

    def evaluate(*args, **kwargs):
        moment.reached()
        return original(*args, **kwargs)

    training.evaluate = evaluate


def pause_journal() -> None:
    import builtins

    from dnnbench.results import journal

    moment = _Moment()

    class HalfWrites:
        def __init__(self, f) -> None:
            self.f = f

        def write(self, data):
            half = len(data) // 2
            self.f.write(data[:half])
            self.f.flush()
            moment.reached()
            return half + self.f.write(data[half:])

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    def open_(path, mode="r", *args, **kwargs):
        f = builtins.open(path, mode, *args, **kwargs)  # noqa: SIM115  (handed to the caller's with)
        return HalfWrites(f) if str(path).endswith("records.jsonl") and "a" in mode else f

    journal.open = open_


def pause_benchmark_json() -> None:
    import pathlib

    moment, original = _Moment(), pathlib.Path.replace

    def replace(self, target):
        if pathlib.Path(target).name == "benchmark.json":
            moment.reached()
        return original(self, target)

    pathlib.Path.replace = replace


def pause_report() -> None:
    from dnnbench.views.report import charts

    moment, original = _Moment(), charts.close

    def close(fig):
        original(fig)
        moment.reached()

    charts.close = close


def broken_compile() -> None:
    """torch.compile succeeds, and the compiled model fails on its first call, as an inductor bug would."""
    import torch

    class Broken(torch.nn.Module):
        def __init__(self, module) -> None:
            super().__init__()
            self._orig_mod = module

        def forward(self, *args, **kwargs):
            raise RuntimeError("backend='inductor' raised:\nCompilationError: injected by tests/faults")

    torch.compile = lambda model, **kwargs: Broken(model)


def unpinned_malloc() -> None:
    """The engine leaves glibc's malloc at its defaults (what dnnbench did before it pinned them)."""
    from dnnbench.measurement import allocator

    allocator.pin = lambda: "default (not pinned: the unpinned_malloc fault)"
    allocator.pin.cache_info = lambda: type("info", (), {"currsize": 1})()


def crash_b100() -> None:
    """Journal.append raises for every batch-100 record: the case runs, and nothing of it is recorded."""
    from dnnbench.results.journal import Journal

    original = Journal.append

    def append(self, record, *args, **kwargs):
        if record.case.get("batch_size") == 100:
            raise RuntimeError("injected by tests/faults: crash_b100")
        return original(self, record, *args, **kwargs)

    Journal.append = append


FAULTS = {
    "slow_step": slow_step,
    "slow_backward": slow_backward,
    "slow_fetch": slow_fetch,
    "broken_lr": broken_lr,
    "pause_step": pause_step,
    "pause_eval": pause_eval,
    "pause_journal": pause_journal,
    "pause_benchmark_json": pause_benchmark_json,
    "pause_report": pause_report,
    "broken_compile": broken_compile,
    "unpinned_malloc": unpinned_malloc,
    "crash_b100": crash_b100,
}
if FAULT:
    FAULTS[FAULT]()
