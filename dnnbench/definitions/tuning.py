"""Learning-rate tuning: grids, the problems a sweep covers, and tuned rates saved for other matrices.

Each optimizer runs at one hand-picked learning rate elsewhere, so "which optimizer reaches the target
first" measures those picks as much as the optimizers. The tuning protocol (`dnnbench tune`, after
DeepOBS and "Descending through a Crowded Valley"): per problem and optimizer a log-spaced grid of
learning rates (quick: 7 points over 4 decades around the default; full: DeepOBS's 36 points from
1e-5 to 1e2) or a random search with a trial budget, one seed per trial; the best rate chosen on
the validation metric alone; the default and the best re-run with several seeds.
"""

from __future__ import annotations

import json
import math
import os
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnnbench.core.errors import BadInput
from dnnbench.definitions.cases import Case
from dnnbench.definitions.optimizers import OPTIMIZERS, RACE, default_lr

TUNED_DIR = Path("results/tuned")


def log_grid(center: float, points: int = 7, decades: float = 4.0) -> list[float]:
    """`points` learning rates evenly spaced in log10 over `decades` decades centred on `center`."""
    if points < 2:
        return [center]
    step = decades / (points - 1)
    return [float(f"{center * 10 ** (-decades / 2 + i * step):.3g}") for i in range(points)]


def deepobs_grid() -> list[float]:
    """DeepOBS's learning-rate grid: 36 points log-spaced from 1e-5 to 1e2."""
    return [float(f"{10 ** (-5 + i * 7 / 35):.3g}") for i in range(36)]


def random_grid(low: float, high: float, trials: int, seed: int = 0) -> list[float]:
    """`trials` learning rates drawn log-uniformly from [low, high] (seeded: the same draw every time)."""
    rng = random.Random(seed)
    return sorted(float(f"{10 ** rng.uniform(math.log10(low), math.log10(high)):.3g}") for _ in range(trials))


@dataclass(frozen=True)
class Problem:
    """What one sweep tunes on: a case without its optimizer and learning rate."""

    name: str
    base: Case
    optimizers: tuple[str, ...]


def problems(size: str, device: str) -> list[Problem]:
    """quick: Fashion-MNIST with and without Dropout (2 epochs, a 10 s budget: the 0.85 target is within
    reach of a good rate) and the note's race; full: Fashion-MNIST, with Dropout and with L2 (3 epochs),
    and the race."""
    epochs = 2 if size == "quick" else 3
    fmnist = Case(device=device, epochs=epochs, max_seconds=10.0 if size == "quick" else None, loader="device")
    race = Case(workload="cubic", batch_size=20, device=device)  # the benchmark protocol: validation held out
    out = [
        Problem("fashion-mnist", fmnist, tuple(OPTIMIZERS)),
        Problem("fashion-mnist+dropout", fmnist.replace(regularization="dropout"), tuple(OPTIMIZERS)),
        Problem("cubic race", race, RACE),
    ]
    if size == "full":
        out.insert(2, Problem("fashion-mnist+l2", fmnist.replace(regularization="l2"), tuple(OPTIMIZERS)))
    return out


def grid_for(optimizer: str, size: str, search: str, trials: int) -> list[float]:
    """The learning rates one optimizer is tried at; the default is always among them."""
    default = default_lr(optimizer)
    if search == "random":
        rates = random_grid(default / 100, default * 100, trials, seed=zlib.crc32(optimizer.encode()))
    elif size == "full":
        rates = deepobs_grid()
    else:
        rates = log_grid(default)
    return sorted(set(rates) | {default})


def tuned_path(name: str = "latest") -> Path:
    if not name or "/" in name or name.startswith("."):
        raise BadInput(f"a tuned-rates name must be a plain name, got {name!r}")
    return Path(os.environ.get("DNNBENCH_TUNED_DIR", TUNED_DIR)) / f"{name}.json"


def save_tuned(entries: list[dict[str, Any]], name: str = "latest") -> Path:
    """Add a sweep's rates to NAME.json: an entry for the same problem and optimizer is replaced, the
    others kept, so that tuning a matrix's workloads one `-k` at a time adds up instead of each sweep
    wiping the last."""
    path = tuned_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        kept = json.loads(path.read_text())["tuned"] if path.is_file() else []
    except (ValueError, KeyError):
        kept = []
    fresh = {(e.get("problem"), e.get("optimizer")) for e in entries}
    merged = [e for e in kept if (e.get("problem"), e.get("optimizer")) not in fresh] + list(entries)
    path.write_text(json.dumps({"schema": 1, "tuned": merged}, indent=2))
    return path


def load_tuned(name: str = "latest") -> dict[tuple[str, str], float]:
    """(workload, optimizer) → tuned learning rate from results/tuned/NAME.json; BadInput when absent."""
    path = tuned_path(name)
    try:
        entries = json.loads(path.read_text())["tuned"]
    except (OSError, ValueError, KeyError):
        raise BadInput(f"no tuned learning rates at {path}; run `dnnbench tune` (--save {name}) first") from None
    out: dict[tuple[str, str], float] = {}
    for e in entries:  # the first problem of a workload (without regularization) wins
        if e.get("tuned_lr") is not None:  # every trial diverged: no rate to reuse (with_tuned_lr says so)
            out.setdefault((e["workload"], e["optimizer"]), float(e["tuned_lr"]))
    return out


def with_tuned_lr(case: Case, tuned: dict[tuple[str, str], float]) -> Case | None:
    """The case at its tuned learning rate (`--set lr=tuned[:NAME]`); None when none was saved for its
    workload and optimizer (the plan then skips it, saying how to tune it: untuned_reason)."""
    key = (case.workload, case.optimizer)
    return case.replace(lr=tuned[key]) if key in tuned else None


def untuned_reason(case: Case, name: str, matrix: str) -> str:
    """Why a case asked to run at its tuned rate is skipped, and the command that would tune it. Skipped,
    not run at its default: a figure at the default under a tuned run's name would mislead."""
    return (
        f"no tuned learning rate for {case.optimizer} on {case.workload} in {tuned_path(name)}; tune it with: "
        f"dnnbench tune --matrix {matrix} -k {case.workload} --save {name}"
    )
