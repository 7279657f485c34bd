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

Sources = str | os.PathLike | Iterable[str | os.PathLike]  # one run or several

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


def _records_from_benchmark_json(path: Path) -> list[dict[str, Any]]:
    """Records rebuilt from a pytest-benchmark JSON written by bench/ (its extra_info carries the
    case id, seed, status and metrics), so such a file can serve as a baseline on its own."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        benchmarks = data["benchmarks"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        raise BadInput(f"{path} is neither a records.jsonl nor a pytest-benchmark JSON file") from None
    out = []
    for b in benchmarks:
        info = b.get("extra_info") or {}
        if "case_id" not in info:
            raise BadInput(f"{path}: benchmark {b.get('name')!r} carries no dnnbench case (not written by bench/)")
        out.append(
            {
                "case_id": info["case_id"],
                "seed": info.get("seed", 0),
                "suite": info.get("suite"),
                "suites": [info.get("suite")],
                "status": info.get("status", "ok"),
                "reason": info.get("reason", ""),
                "metrics": {m: info.get(m) for m in METRICS},
                "env": {"machine": (data.get("machine_info") or {}).get("cpu", {}).get("brand_raw")},
            }
        )
    return out


def _records_of(source: str | os.PathLike) -> tuple[str, list[dict[str, Any]]]:
    path = journal_path(source)
    run = path.parent.name if path.name in (RECORDS, BENCHMARK_JSON) else path.stem
    if path.suffix == ".json":
        return run, _records_from_benchmark_json(path)
    return run, read_records(path)


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
    calibration = record.get("calibration") or {}
    for column, keys in (
        ("calibration_gflops", ("gflops_start", "gflops_end")),
        ("calibration_ref", ("ref_start", "ref_end")),
    ):
        values = [calibration[k] for k in keys if calibration.get(k)]
        row[column] = sum(values) / len(values) if values else None
    for k, v in (record.get("resolved") or {}).items():
        row[f"resolved_{k}"] = ",".join(map(str, v)) if isinstance(v, list) else v
    for k, v in (record.get("env") or {}).items():
        row[f"env_{k}"] = v
    return row


def load(sources: Sources) -> pd.DataFrame:
    """One or several runs → a DataFrame with one row per case × seed (and run).

    Columns: run, case_id, seed, suite, status, reason, every Case field, every metric of
    records.METRICS, phase_<name>, target_*, resolved_<field> and env_<field>.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    rows = []
    for source in sources:
        run, records = _records_of(source)
        rows += [_row(r, run) for r in records]
    frame = pd.DataFrame(rows)
    for m in METRICS:
        if m in frame:
            frame[m] = pd.to_numeric(frame[m], errors="coerce")
    return frame


def load_curves(sources: Sources) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The curves of one or several runs in long form, for charts: (loss per step, validation points).

    Both carry run, case_id, seed, suites and the case fields that charts colour by.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    loss_rows, val_rows = [], []
    for source in sources:
        run, records = _records_of(source)
        for r in records:
            curves = r.get("curves")
            if not curves:
                continue
            case = r.get("case") or {}
            ident = {
                "run": run,
                "case_id": r["case_id"],
                "seed": r["seed"],
                "status": r["status"],
                "suites": ",".join(r.get("suites") or []),
                "workload": case.get("workload"),
                "optimizer": case.get("optimizer"),
                "regularization": case.get("regularization"),
                "loader": case.get("loader"),
                "device": case.get("device"),
                "batch_size": str(case.get("batch_size")),
            }
            loss = curves.get("loss") or {}
            pairs = zip(loss.get("step", []), loss.get("loss", []), strict=True)
            loss_rows += [{**ident, "step": s, "loss": v} for s, v in pairs]
            val_rows += [{**ident, **point} for point in curves.get("val") or []]
    return pd.DataFrame(loss_rows), pd.DataFrame(val_rows)


def save_baseline(sources: list[str | os.PathLike], target: str | os.PathLike) -> int:
    """Save one or more runs as a baseline folder: their records (curves and pytest-benchmark stats left
    out: the gate reads neither) in one journal, run.json with the first run's environment and the mean calibration,
    and the first run's benchmark.json for pytest-benchmark's --benchmark-compare. Returns the count."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    folders = [journal_path(s).parent for s in sources]
    records = []
    for folder in folders:
        for record in read_records(folder / RECORDS):
            records.append({**record, "curves": None, "benchmark": None, "source_run": folder.name})
    with open(target / RECORDS, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(_finite(r), allow_nan=False) + "\n" for r in records)
    metas = [read_run_meta(folder) for folder in folders]
    meta = dict(metas[0])
    meta["sources"] = [
        {"run": folder.name, "started_at": m.get("started_at"), "calibration_start": m.get("calibration_start")}
        for folder, m in zip(folders, metas, strict=True)
    ]
    for name in ("calibration_start", "calibration_end"):
        for measure in ("gflops", "ref_steps_per_s"):
            values = [(m.get(name) or {}).get(measure) for m in metas if (m.get(name) or {}).get(measure)]
            if values:
                meta[name] = {**(meta.get(name) or {}), measure: sum(values) / len(values)}
    (target / RUN_META).unlink(missing_ok=True)
    write_run_meta(target, meta)
    if (folders[0] / BENCHMARK_JSON).exists():
        (target / BENCHMARK_JSON).write_bytes((folders[0] / BENCHMARK_JSON).read_bytes())
    return len(records)
