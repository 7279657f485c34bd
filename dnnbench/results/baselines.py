"""Baselines: runs saved under a name for the gate to compare against, one folder per machine.

    results/baselines/NAME/<machine id>/   records.jsonl, run.json, benchmark.json

A speed figure means something only on the machine that measured it (core/machine.py), so a name
holds one baseline per machine fingerprint, and the gate picks the one measured on a machine like the
current run's. A folder saved before baselines were kept per machine (records directly in NAME/) is
read as one machine's baseline.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnbench.core import machine
from dnnbench.core.errors import BadInput
from dnnbench.core.probes import PROBES
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


def run_fingerprint(folder: str | os.PathLike, meta: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The machine fingerprint a run folder was measured on: run.json's, else its records', else one
    rebuilt from benchmark.json's machine_info (runs made before fingerprints); None when none of these
    says."""
    folder = Path(folder)
    meta = read_run_meta(folder) if meta is None else meta
    found = (meta.get("env") or {}).get("fingerprint")
    if found:
        return found
    try:
        with open(folder / RECORDS, encoding="utf-8") as journal:
            first = json.loads(journal.readline())
        found = (first.get("env") or {}).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        found = None
    if isinstance(found, dict):
        return found
    try:
        data = json.loads((folder / BENCHMARK_JSON).read_text(encoding="utf-8"))
        info = data["machine_info"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return machine.from_cpuinfo(info, meta.get("env") or {}) if info.get("cpu") else None


def per_machine(folder: Path) -> list[Path]:
    """The per-machine folders of a named baseline; a run folder, or a baseline saved before they were
    kept per machine, is its own one."""
    if not folder.is_dir() or (folder / RECORDS).is_file() or (folder / BENCHMARK_JSON).is_file():
        return [folder]
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / RECORDS).is_file())


@dataclass
class BaselineChoice:
    """The baseline folder the gate compares with, and how its machine differs from the current run's
    (empty: the same machine, so speed can be judged)."""

    path: Path
    fingerprint: dict[str, Any] | None
    differences: list[str] = field(default_factory=list)
    others: int = 0  # other machines' baselines under the same name

    @property
    def same_machine(self) -> bool:
        return not self.differences


def resolve_baseline(text: str, current: dict[str, Any] | None = None) -> BaselineChoice:
    """A run folder, a baseline folder, or the name of one under results/baselines/; of a name's
    per-machine baselines, the one whose fingerprint matches `current` (else the closest, with what
    differs)."""
    path = Path(text)
    if not path.exists():
        path = BASELINES_DIR / text
    if not path.exists():
        saved = sorted(p.name for p in BASELINES_DIR.glob("*") if p.is_dir()) if BASELINES_DIR.is_dir() else []
        raise BadInput(f"no baseline at {text!r}; saved baselines: {', '.join(saved) or 'none'}")
    candidates = per_machine(path)
    if not candidates:
        raise BadInput(f"baseline {path} holds no saved run (no records.jsonl in it or in a folder below it)")
    scored = []
    for candidate in candidates:
        fingerprint = run_fingerprint(candidate) if candidate.is_dir() else None
        scored.append((machine.differences(fingerprint, current), candidate, fingerprint))
    # the fewest differences; among equals, the fingerprint that knows most (a rebuilt one knows less)
    differs, chosen, fingerprint = min(scored, key=lambda item: (len(item[0]), -machine.known_fields(item[2])))
    return BaselineChoice(chosen, fingerprint, differs, len(candidates) - 1)


def save_baseline(sources: list[str | os.PathLike], target: str | os.PathLike) -> int:
    """Save one or more runs of one machine as a baseline folder: their records (curves left out: the
    gate does not read them) in one journal, run.json with the first run's environment and the mean
    calibration, and the first run's benchmark.json for pytest-benchmark's --benchmark-compare.
    Returns the count. Runs of different machines are refused: their speeds do not pool."""
    target = Path(target)
    folders = [journal_path(s).parent for s in sources]
    fingerprint = runs_fingerprint(sources)
    target.mkdir(parents=True, exist_ok=True)
    lines = []
    for folder in folders:
        for record in read_records(folder / RECORDS):
            lines.append(dumps(record.with_context(curves=None, benchmark=None, source_run=folder.name)))
    (target / RECORDS).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    metas = [read_run_meta(folder) for folder in folders]
    meta = dict(metas[0])
    if fingerprint:
        meta["env"] = {**(meta.get("env") or {}), "fingerprint": fingerprint}
    meta["sources"] = [
        {"run": folder.name, "started_at": m.get("started_at"), "calibration_start": m.get("calibration_start")}
        for folder, m in zip(folders, metas, strict=True)
    ]
    for name in ("calibration_start", "calibration_end"):
        for probe in PROBES:
            values = [m[name][probe] for m in metas if (m.get(name) or {}).get(probe)]
            if values:
                meta[name] = {**(meta.get(name) or {}), probe: sum(values) / len(values)}
    (target / RUN_META).unlink(missing_ok=True)
    write_run_meta(target, meta)
    if (folders[0] / BENCHMARK_JSON).exists():
        (target / BENCHMARK_JSON).write_bytes((folders[0] / BENCHMARK_JSON).read_bytes())
    return len(lines)


def runs_fingerprint(sources: list[str | os.PathLike]) -> dict[str, Any] | None:
    """The one machine these runs were measured on; BadInput when they were not one machine."""
    folders = [journal_path(s).parent for s in sources]
    fingerprints = [run_fingerprint(folder) for folder in folders]
    for folder, fingerprint in zip(folders[1:], fingerprints[1:], strict=True):
        differs = machine.differences(fingerprints[0], fingerprint)
        if differs:
            raise BadInput(
                f"{folders[0].name} and {folder.name} were measured on different machines ({'; '.join(differs)}): "
                "save one baseline per machine"
            )
    return fingerprints[0]


def machine_folder(sources: list[str | os.PathLike], name_dir: str | os.PathLike) -> Path:
    """Where `save_baseline` puts these runs under a baseline name: the folder of a baseline already saved
    for this machine (so that replacing it needs --force), else NAME/<machine id of the runs>."""
    fingerprint = runs_fingerprint(sources)
    name_dir = Path(name_dir)
    if fingerprint and name_dir.is_dir():
        for existing in per_machine(name_dir):
            if existing != name_dir and not machine.differences(run_fingerprint(existing), fingerprint):
                return existing
    return Path(name_dir) / (machine.machine_id(fingerprint) if fingerprint else "unknown-machine")
