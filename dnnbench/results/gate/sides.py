"""The two sides of a comparison: a run (or saved baseline) loaded as a frame with its run.json."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnbench.core.errors import BadInput
from dnnbench.core.probes import MATMUL
from dnnbench.results.baselines import run_fingerprint
from dnnbench.results.frames import load
from dnnbench.results.journal import journal_path, read_run_meta

ENV_KEYS = ("device", "torch", "torch_threads", "cpu_model", "gpu_name", "cuda_build")


@dataclass
class Side:
    name: str
    frame: pd.DataFrame
    meta: dict[str, Any]
    fingerprint: dict[str, Any] | None = None  # the machine it was measured on (core/machine.py)

    def calibration(self, probe: str | None) -> float | None:
        """Mean of the run's start and end value of `probe`, if it measured it."""
        values = [(self.meta.get(k) or {}).get(probe) for k in ("calibration_start", "calibration_end")]
        known = [v for v in values if v]
        return float(np.mean(known)) if probe and known else None

    @property
    def env(self) -> dict[str, Any]:
        return self.meta.get("env") or {}

    @property
    def is_single_run(self) -> bool:
        return bool(self.frame.groupby(["case_id", "seed"]).size().max() == 1)


def load_side(path: str | Path) -> Side:
    source = journal_path(path)
    frame = load(path)
    if frame.empty:
        raise BadInput(f"{path} holds no records")
    meta = read_run_meta(source.parent)
    return Side(source.parent.name, frame, meta, run_fingerprint(source.parent, meta))


def environment_warnings(baseline: Side, current: Side) -> list[str]:
    out = []
    for key in ENV_KEYS:
        b, c = baseline.env.get(key), current.env.get(key)
        if b != c and (b or c):
            out.append(f"environments differ: {key} is {b!r} in the baseline and {c!r} now")
    for side in (baseline, current):
        start = (side.meta.get("calibration_start") or {}).get(MATMUL)
        end = (side.meta.get("calibration_end") or {}).get(MATMUL)
        if start and end and abs(end / start - 1) > 0.15:
            out.append(
                f"{side.name}: the machine's speed changed during the run (matmul {start:.0f} → {end:.0f} "
                "GFLOP/s); its speed figures are less reliable"
            )
    return out
