"""Which device a run asks for, resolved against what this machine has."""

from __future__ import annotations

from dnnbench.core.errors import BadInput

DEVICES = ("cpu", "cuda")


def too_many_ranks(world_size: int, device: str) -> str | None:
    """Why this machine cannot run `world_size` data-parallel processes on `device`, or None."""
    import os

    import torch

    if world_size == 1:
        return None
    if device == "cuda":
        count = torch.cuda.device_count()
        return None if world_size <= count else f"world_size {world_size} needs as many GPUs; this machine has {count}"
    cores = os.cpu_count() or 1
    if world_size > cores:
        return f"world_size {world_size} would oversubscribe the {cores} cores (one process per core at least)"
    return None


def resolve_device(name: str) -> str:
    """'auto' → cuda when available, else cpu; 'cuda' without CUDA is a one-line BadInput."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise BadInput(
            f"device 'cuda' requested but no CUDA device is available (torch {torch.__version__}, "
            f"{built}); choose from: cpu, auto"
        )
    if name not in DEVICES:
        raise BadInput(f"unknown device {name!r}; choose from: cpu, cuda, auto")
    return name
