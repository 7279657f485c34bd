"""The journal of a run folder: records.jsonl and run.json on disk, and reading them back as Records.

A run folder holds records.jsonl (one line per finished case × seed, appended and fsynced as each
finishes, so a killed run keeps what it finished), run.json (what was run, where and when) and
benchmark.json (pytest-benchmark's own format, written when a pytest session ends).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from datetime import UTC, datetime
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


class StorageError(BadInput):
    """A write into the results folder failed (full disk, read-only, permissions); what was written stays."""


def _hold_signals() -> set[int | signal.Signals]:
    """Hold SIGTERM and SIGINT back for the length of a journal write, so that a terminated run never
    leaves half a line (SIGKILL cannot be held: repair() deals with what it leaves); returns the old mask."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})


class Journal:
    """Append-only records.jsonl of one run folder."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.dir = Path(run_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the results folder {self.dir} ({exc.strerror})") from None
        self.path = self.dir / RECORDS

    def repair(self) -> str | None:
        """Cut a torn last line (a run killed mid-write) before appending, keeping what was cut in a side
        file; returns the one-line notice, or None when the journal ends cleanly. Call it holding the lock."""
        if not self.path.exists():
            return None
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        tail = data[keep:]
        if tail:
            try:
                Record.from_json(json.loads(tail))
                complete = True
            except (ValueError, BadInput):
                complete = False
            if complete:  # a whole record whose newline was lost: keep it, add the newline
                self._write_raw(b"\n")
                return None
        if not tail:
            return None
        side = self.dir / f"{RECORDS}.torn-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        try:
            side.write_bytes(tail)
            os.truncate(self.path, keep)
        except OSError as exc:
            raise StorageError(f"cannot repair {self.path} ({exc.strerror})") from None
        return (
            f"dnnbench: notice: {self.path} ended in a torn line ({len(tail)} bytes, a run killed while writing); "
            f"cut and kept in {side.name}"
        )

    def _write_raw(self, data: bytes) -> None:
        before = self.path.stat().st_size if self.path.exists() else 0
        held = _hold_signals()
        try:
            with open(self.path, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.truncate(self.path, before)  # never leave part of a line behind
            raise StorageError(
                f"could not write to {self.path} ({exc.strerror}); the records written before are kept"
            ) from None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def append(self, record: Record, benchmark: dict[str, Any] | None = None) -> Record:
        """Write one finished record, stamped with this run's id (and pytest-benchmark's entry, if any)."""
        stored = record.with_context(run_id=self.dir.name, benchmark=benchmark)
        self._write_raw((dumps(stored) + "\n").encode("utf-8"))
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


def write_atomically(path: Path, data: str | bytes) -> None:
    """Write a whole file or nothing: a temporary file beside it, renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"could not write {path} ({exc.strerror})") from None


def _json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_run_meta(run_dir: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Merge `meta` into run.json (written at the start of a run and updated at its end); a corrupt
    run.json is moved aside with a notice rather than stopping the run."""
    path = Path(run_dir) / RUN_META
    current = _json_or_none(path) if path.exists() else {}
    if current is None:
        aside = path.with_name(f"{RUN_META}.corrupt-{datetime.now(UTC):%Y%m%dT%H%M%S}")
        path.replace(aside)
        print(
            f"dnnbench: notice: {path} was not readable JSON; moved to {aside.name} and written anew", file=sys.stderr
        )
        current = {}
    current.update(finite(meta))
    write_atomically(path, json.dumps(current, indent=2))


def read_run_meta(run_dir: str | os.PathLike) -> dict[str, Any]:
    """run.json, or {} (with a warning) when it is missing or unreadable: records carry their own context."""
    path = Path(run_dir) / RUN_META
    if not path.exists():
        return {}
    meta = _json_or_none(path)
    if meta is None:
        print(f"dnnbench: warning: {path} is not readable JSON; reading the records without it", file=sys.stderr)
        return {}
    return upgrade_run_meta(meta)


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
    real = path.resolve()  # a link such as results/latest is named after the run folder it points at
    run = real.parent.name if path.name in (RECORDS, BENCHMARK_JSON) else real.stem
    if path.suffix == ".json":
        return run, records_from_benchmark_json(path)
    return run, read_records(path)
