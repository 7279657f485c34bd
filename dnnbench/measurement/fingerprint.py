"""This machine's fingerprint (core/machine.py says which fields and why): read once per process."""

from __future__ import annotations

import functools
import os
import platform
import re
from pathlib import Path
from typing import Any

import torch

from dnnbench.core.machine import isa_of, with_id


def _cpuinfo() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _torch_blas() -> str | None:
    match = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return match.group(1) if match else None


def _numpy() -> tuple[str | None, str | None]:
    """NumPy's version and its BLAS (name and version; OpenBLAS's forced core type when one is set,
    since it changes the kernels the gate's NumPy probe runs)."""
    try:
        import numpy
    except ImportError:
        return None, None
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        name = f"{blas.get('name')} {blas.get('version')}".strip()
    except Exception:  # an older NumPy: its config is printed, not returned
        name = None
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if name and coretype:
        name += f" (OPENBLAS_CORETYPE={coretype})"
    return numpy.__version__, name


def _gpu(device: str) -> str | None:
    """'<count> x <name>' of the GPUs a CUDA run uses; None for a CPU run (its speed is the CPU's)."""
    if device != "cuda" or not torch.cuda.is_available():
        return None
    return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name()}"


@functools.lru_cache(maxsize=4)
def capture(device: str = "cpu") -> dict[str, Any]:
    """The fingerprint of this machine and software for a run on `device`, with its id."""
    info = _cpuinfo()
    numpy_version, numpy_blas = _numpy()
    flags = info.get("flags") or info.get("Features") or ""  # x86 / Arm
    fingerprint = {
        "cpu_vendor": info.get("vendor_id") or info.get("CPU implementer"),
        "cpu_model": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_family": _int(info.get("cpu family")),
        "cpu_model_number": _int(info.get("model")),
        "isa": isa_of(flags),
        "cores": _usable_cores(),
        "gpu": _gpu(device),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_blas": _torch_blas(),
        "numpy": numpy_version,
        "numpy_blas": numpy_blas,
    }
    return with_id(fingerprint)
