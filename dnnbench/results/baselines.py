"""Baselines: runs saved under a name (results/baselines/NAME) for the gate to compare against."""

from __future__ import annotations

import os
from pathlib import Path

from dnnbench.core.errors import BadInput
from dnnbench.results.journal import (
    BENCHMARK_JSON,
    RECORDS,
    RUN_META,
    dumps,
    journal_path,
    read_records,
    read_run_meta,
    write_run_meta,
)

BASELINES_DIR = Path("results/baselines")
PROBES = ("matmul_gflops", "reference_steps_per_s", "numpy_gemm_per_s", "python_mops")


def resolve_baseline(text: str) -> Path:
    """A path, or the name of a saved baseline under results/baselines/."""
    path = Path(text)
    if path.exists():
        return path
    if (BASELINES_DIR / text).exists():
        return BASELINES_DIR / text
    saved = sorted(p.name for p in BASELINES_DIR.glob("*") if p.is_dir()) if BASELINES_DIR.is_dir() else []
    raise BadInput(f"no baseline at {text!r}; saved baselines: {', '.join(saved) or 'none'}")


def save_baseline(sources: list[str | os.PathLike], target: str | os.PathLike) -> int:
    """Save one or more runs as a baseline folder: their records (curves left out: the gate does not
    read them) in one journal, run.json with the first run's environment and the mean calibration,
    and the first run's benchmark.json for pytest-benchmark's --benchmark-compare. Returns the count."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    folders = [journal_path(s).parent for s in sources]
    lines = []
    for folder in folders:
        for record in read_records(folder / RECORDS):
            lines.append(dumps(record.with_context(curves=None, benchmark=None, source_run=folder.name)))
    (target / RECORDS).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    metas = [read_run_meta(folder) for folder in folders]
    meta = dict(metas[0])
    meta["sources"] = [
        {"run": folder.name, "started_at": m.get("started_at"), "calibration_start": m.get("calibration_start")}
        for folder, m in zip(folders, metas, strict=True)
    ]
    for name in ("calibration_start", "calibration_end"):
        for probe in PROBES:
            values = [(m.get(name) or {}).get(probe) for m in metas if (m.get(name) or {}).get(probe)]
            if values:
                meta[name] = {**(meta.get(name) or {}), probe: sum(values) / len(values)}
    (target / RUN_META).unlink(missing_ok=True)
    write_run_meta(target, meta)
    if (folders[0] / BENCHMARK_JSON).exists():
        (target / BENCHMARK_JSON).write_bytes((folders[0] / BENCHMARK_JSON).read_bytes())
    return len(lines)
