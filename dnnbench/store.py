"""Store: a run folder's journal and metadata on disk, and the loader into pandas.

A run folder holds records.jsonl (one line per finished case × seed, appended and fsynced as each
finishes, so a killed run keeps what it finished), run.json (what was run, where and when) and
benchmark.json (pytest-benchmark's own format, written when the pytest session ends).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from dnnbench.errors import BadInput
from dnnbench.records import METRICS, key, upgrade

RECORDS = "records.jsonl"
RUN_META = "run.json"
BENCHMARK_JSON = "benchmark.json"


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: a diverged loss is stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class Journal:
    """Append-only records.jsonl of one run folder."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RECORDS

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(_finite(record), allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.path) if self.path.exists() else []

    def finished(self) -> dict[tuple[str, int], dict[str, Any]]:
        """(case_id, seed) → its record, for --resume and for cases shared between suites."""
        return {key(r): r for r in self.records()}


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of a journal. A torn last line (the run was killed mid-write) is left out with a
    warning; any other unreadable line is a BadInput naming the file and line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(upgrade(json.loads(line)))
        except (json.JSONDecodeError, ValueError) as exc:
            if n == len(lines):
                print(f"dnnbench: warning: ignoring a torn last line in {path}", file=sys.stderr)
                continue
            raise BadInput(f"{path}:{n} is not a dnnbench record ({exc})") from None
    return out


def write_run_meta(run_dir: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Merge `meta` into run.json (written at the start of a run and updated at its end)."""
    path = Path(run_dir) / RUN_META
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(_finite(meta))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=2))
    tmp.replace(path)


def read_run_meta(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / RUN_META
    return json.loads(path.read_text()) if path.exists() else {}


def journal_path(source: str | os.PathLike) -> Path:
    """A run folder or a records.jsonl file → the journal file; BadInput when there is none."""
    p = Path(source)
    path = p / RECORDS if p.is_dir() else p
    if not path.is_file():
        raise BadInput(f"no dnnbench results at {source} (expected a run folder holding {RECORDS})")
    return path


def _row(record: dict[str, Any], run: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run": run,
        "case_id": record["case_id"],
        "seed": record["seed"],
        "suite": record.get("suite"),
        "suites": ",".join(record.get("suites") or []),
        "status": record["status"],
        "reason": record.get("reason", ""),
    }
    row.update(record.get("case") or {})
    if isinstance(row.get("hidden"), list):
        row["hidden"] = ",".join(str(h) for h in row["hidden"])
    metrics = record.get("metrics") or {}
    row.update({m: metrics.get(m) for m in METRICS})
    for phase, share in (record.get("phase_fractions") or {}).items():
        row[f"phase_{phase}"] = share
    target = record.get("target") or {}
    row["target_metric"] = target.get("metric")
    row["target_value"] = target.get("value")
    row["target_reached"] = target.get("reached")
    row["target_status"] = target.get("status")
    for k, v in (record.get("resolved") or {}).items():
        row[f"resolved_{k}"] = ",".join(map(str, v)) if isinstance(v, list) else v
    for k, v in (record.get("env") or {}).items():
        row[f"env_{k}"] = v
    return row


def load(sources: str | os.PathLike | Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One or several runs → a DataFrame with one row per case × seed (and run).

    Columns: run, case_id, seed, suite, status, reason, every Case field, every metric of
    records.METRICS, phase_<name>, target_*, resolved_<field> and env_<field>.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    rows = []
    for source in sources:
        path = journal_path(source)
        run = path.parent.name if path.name == RECORDS else path.stem
        rows += [_row(r, run) for r in read_records(path)]
    frame = pd.DataFrame(rows)
    for m in METRICS:
        if m in frame:
            frame[m] = pd.to_numeric(frame[m], errors="coerce")
    return frame
