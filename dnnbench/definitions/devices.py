"""Which device a run asks for, resolved against what this machine has."""

from __future__ import annotations

from dnnbench.core.errors import BadInput

DEVICES = ("cpu", "cuda")


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
