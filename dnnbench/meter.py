"""Clocks and meters: per-step phase timing, step-time statistics, peak memory.

On CPU a step's phases are timed with perf_counter (CPU kernels run synchronously). On CUDA they are
CUDA events read back only at window edges (evaluation points), so timing adds no synchronization
inside a window; an event gap then measures what the GPU timeline actually waited for, including a
host that is late with the next batch.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PHASES = ("data_wait", "copy", "forward", "backward", "optimizer")


class CpuStepClock:
    """Marks: begin(), then mark(phase) for each of PHASES in order. collect() returns finished steps."""

    def __init__(self) -> None:
        self._steps: list[list] = []
        self._current: list | None = None

    def _now(self):
        return time.perf_counter()

    def begin(self) -> None:
        self._current = [self._now()]

    def mark(self, phase: str) -> None:
        assert self._current is not None
        self._current.append(self._now())
        if phase == PHASES[-1]:
            self._steps.append(self._current)
            self._current = None

    def collect(self) -> np.ndarray:
        """Phase durations in seconds, shape (steps, len(PHASES)); clears the finished steps."""
        out = np.diff(np.array(self._steps, dtype=np.float64).reshape(-1, len(PHASES) + 1), axis=1)
        self._steps = []
        return out


class CudaStepClock(CpuStepClock):
    """The same marks, recorded as CUDA events and read back (one synchronize) in collect()."""

    def _now(self) -> torch.cuda.Event:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def collect(self) -> np.ndarray:
        torch.cuda.synchronize()
        out = np.array(
            [[a.elapsed_time(b) / 1e3 for a, b in itertools.pairwise(s)] for s in self._steps],
            dtype=np.float64,
        ).reshape(-1, len(PHASES))
        self._steps = []
        return out


def step_clock(device: str) -> CpuStepClock | CudaStepClock:
    return CudaStepClock() if device == "cuda" else CpuStepClock()


def synchronized_perf_counter() -> float:
    """perf_counter after draining the CUDA queue: a wall clock that sees asynchronous GPU work.
    The pytest-benchmark timer for CUDA runs (bench/conftest.py)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


@dataclass(frozen=True)
class StepStats:
    """Throughput statistics over a run's steady-state steps."""

    step_times_s: np.ndarray
    samples: np.ndarray  # samples per step (the last batch of an epoch may be short)

    @property
    def total_time_s(self) -> float:
        return float(self.step_times_s.sum())

    @property
    def throughput(self) -> float | None:
        t = self.total_time_s
        return float(self.samples.sum() / t) if t > 0 else None

    def percentile_ms(self, q: float) -> float | None:
        if len(self.step_times_s) == 0:
            return None
        return float(np.percentile(self.step_times_s, q) * 1e3)


# --- peak memory -----------------------------------------------------------------------------------


def _tensor_bytes(tensors) -> int:
    """Bytes of distinct storages among `tensors` (views of one storage count once)."""
    seen: dict[int, int] = {}
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.numel():
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


class SavedActivations:
    """Context manager over one forward and backward: the bytes of the tensors autograd saves for
    backward (activations), parameters left out. Used on a warm-up step only: it costs a Python call
    per saved tensor."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        self._params = {p.untyped_storage().data_ptr() for p in params}
        self._saved: dict[int, int] = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in self._params:
            self._saved[storage.data_ptr()] = storage.nbytes()
        return t

    @property
    def nbytes(self) -> int:
        return sum(self._saved.values())

    def __enter__(self) -> SavedActivations:
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


class PeakMemory:
    """Peak memory of a case.

    On GPU: CUDA's max_memory_allocated, reset at the start of the case. On CPU there is no
    allocator peak to read, and the process's resident set says little about one case: glibc keeps
    freed memory for reuse (a later case in the same process often grows it by nothing), and how
    many pages of torch's shared libraries are resident depends on the page cache (a freshly
    installed venv showed 300 MB more than an older one for the same case). So on CPU the figure is
    the case's tensor footprint at its peak: parameters, gradients, optimizer state, one batch and
    the activations saved for backward (measured on the first step). The process's peak resident set
    over the case is recorded beside it for information. DataLoader workers are not counted."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.kind = "cuda_max_allocated" if device == "cuda" else "cpu_tensor_footprint"
        self.batch_bytes = 0
        self.activation_bytes = 0
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        try:
            Path("/proc/self/clear_refs").write_text("5")  # restart the process's peak resident set
            self._rss_reset = True
        except OSError:
            self._rss_reset = False

    def peak_bytes(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
        if self.device == "cuda":
            return int(torch.cuda.max_memory_allocated())
        params = list(model.parameters())
        grads = [p.grad for p in params if p.grad is not None] or [p for p in params if p.requires_grad]
        state = [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
        buffers = list(model.buffers())
        return (
            _tensor_bytes(params)
            + _tensor_bytes(grads)
            + _tensor_bytes(state)
            + _tensor_bytes(buffers)
            + self.batch_bytes
            + self.activation_bytes
        )

    def process_peak_bytes(self) -> int | None:
        """The whole process's peak resident set since the case started (CPU), for information."""
        if self.device == "cuda" or not self._rss_reset:
            return None
        try:
            match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
        except OSError:
            return None
        return int(match.group(1)) * 1024 if match else None


# --- machine calibration -------------------------------------------------------------------------------
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


def calibrate(device: str, seconds: float = 0.05) -> dict[str, float | str]:
    """Both calibration measures, `seconds` each."""
    matmul = matmul_gflops(device, seconds=seconds)
    reference = reference_step_rate(device, seconds=seconds)
    return {
        "gflops": matmul["gflops"],
        "ref_steps_per_s": reference["steps_per_s"],
        "what": f"{matmul['what']}; {reference['what']}",
    }
