"""Peak memory of a case: CUDA's allocator peak on GPU, the case's tensor footprint on CPU."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import torch


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

    def __init__(self, params: Iterable[torch.Tensor]) -> None:
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
