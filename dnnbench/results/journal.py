"""The journal of a run folder: records.jsonl and run.json on disk, and reading them back as Records.

A run folder holds records.jsonl (one line per finished case × seed, appended and fsynced as each
finishes, so a killed run keeps what it finished), run.json (what was run, where and when) and
benchmark.json (pytest-benchmark's own format, written when a pytest session ends).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from dnnbench.core.errors import BadInput
from dnnbench.core.metrics import METRICS
from dnnbench.core.record import Record, finite, upgrade_run_meta

RECORDS = "records.jsonl"
RUN_META = "run.json"
BENCHMARK_JSON = "benchmark.json"


def dumps(record: Record) -> str:
    return json.dumps(finite(record.to_json()), allow_nan=False)


class Journal:
    """Append-only records.jsonl of one run folder."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RECORDS

    def append(self, record: Record, benchmark: dict[str, Any] | None = None) -> Record:
        """Write one finished record, stamped with this run's id (and pytest-benchmark's entry, if any)."""
        stored = record.with_context(run_id=self.dir.name, benchmark=benchmark)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(dumps(stored) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return stored

    def records(self) -> list[Record]:
        return read_records(self.path) if self.path.exists() else []

    def finished(self) -> dict[tuple[str, int], Record]:
        """(case_id, seed) → its record, for --resume and for cases shared between suites."""
        return {r.key: r for r in self.records()}


def read_records(path: str | os.PathLike) -> list[Record]:
    """Records of a journal. A torn last line (the run was killed mid-write) is left out with a
    warning; any other unreadable line is a BadInput naming the file and line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(Record.from_json(json.loads(line)))
        except (json.JSONDecodeError, BadInput) as exc:
            if n == len(lines) and isinstance(exc, json.JSONDecodeError):
                print(f"dnnbench: warning: ignoring a torn last line in {path}", file=sys.stderr)
                continue
            raise BadInput(f"{path}:{n} is not a dnnbench record ({exc})") from None
    return out


def write_run_meta(run_dir: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Merge `meta` into run.json (written at the start of a run and updated at its end)."""
    path = Path(run_dir) / RUN_META
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(finite(meta))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=2))
    tmp.replace(path)


def read_run_meta(run_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(run_dir) / RUN_META
    return upgrade_run_meta(json.loads(path.read_text())) if path.exists() else {}


def journal_path(source: str | os.PathLike) -> Path:
    """A run folder, a records.jsonl or a pytest-benchmark JSON file → the file to read; BadInput
    when there is none."""
    p = Path(source)
    if p.is_dir():
        for name in (RECORDS, BENCHMARK_JSON):
            if (p / name).is_file():
                return p / name
    elif p.is_file():
        return p
    raise BadInput(f"no dnnbench results at {source} (expected a run folder holding {RECORDS})")


def records_from_benchmark_json(path: Path) -> list[Record]:
    """Records rebuilt from a pytest-benchmark JSON written by dnnbench (its extra_info carries the
    case id, seed, status and metrics), so such a file can serve as a baseline on its own."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        benchmarks = data["benchmarks"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise BadInput(f"{path} is neither a records.jsonl nor a pytest-benchmark JSON file") from None
    machine = (data.get("machine_info") or {}).get("cpu", {}).get("brand_raw")
    out = []
    for b in benchmarks:
        info = b.get("extra_info") or {}
        if "case_id" not in info:
            raise BadInput(f"{path}: benchmark {b.get('name')!r} carries no dnnbench case (not written by dnnbench)")
        suite = info.get("suite")
        out.append(
            Record(
                case_id=info["case_id"],
                seed=info.get("seed", 0),
                case={},
                status=info.get("status", "ok"),
                reason=info.get("reason", ""),
                env={"machine": machine},
                metrics={m: info.get(m) for m in METRICS},
                suite=suite,
                suites=(suite,) if suite else (),
            )
        )
    return out


def records_of(source: str | os.PathLike) -> tuple[str, list[Record]]:
    """(run name, its records) for a run folder, a records.jsonl or a benchmark JSON."""
    path = journal_path(source)
    run = path.parent.name if path.name in (RECORDS, BENCHMARK_JSON) else path.stem
    if path.suffix == ".json":
        return run, records_from_benchmark_json(path)
    return run, read_records(path)
