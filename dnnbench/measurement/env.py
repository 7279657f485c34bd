"""Environment capture: every record carries the machine and software it was measured on."""

from __future__ import annotations

import functools
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from dnnbench.measurement import allocator, fingerprint


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


@functools.lru_cache(maxsize=1)
def _static() -> dict[str, Any]:
    import torchvision

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "hostname": platform.node(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda_build": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "git_commit": _git_commit(),
    }


def capture(device: str) -> dict[str, Any]:
    """The environment of a measurement on `device`, including the current torch thread count."""
    env = dict(_static())
    env["device"] = device
    env["torch_threads"] = torch.get_num_threads()
    env["allocator"] = allocator.state()
    env["gpu_name"] = torch.cuda.get_device_name() if device == "cuda" else None
    env["fingerprint"] = fingerprint.capture(device)  # which runs' speed may be compared (core/machine.py)
    return env


def run_description(
    matrix: str, device: str, plan: Sequence, overrides: Sequence[str] | None, shard: str | None
) -> dict[str, Any]:
    """run.json at the start of a run, the same for every front-end (`pytest bench`, `dnnbench run`):
    what was planned, the command, and this machine's environment."""
    return {
        "matrix": matrix,
        "device": device,
        "seeds": sorted({p.seed for p in plan}),
        "overrides": overrides,
        "shard": shard,
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "make_command": os.environ.get("DNNBENCH_COMMAND"),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "planned_cases": len(plan),
        "planned_skips": sum(p.skip_reason is not None for p in plan),
        "env": capture(device),
    }
