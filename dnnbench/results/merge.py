"""Merge: the folders of one matrix's shards (`--shard I/N` on several machines) → one run folder.

The merged folder is an ordinary run: records.jsonl with every shard's records, benchmark.json with
every shard's benchmarks, run.json with the matrix and device and each shard's own environment; the
report and the gate read it as they read any run. Shards of different matrices or devices, and a
case × seed pair measured twice, are refused in one line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dnnbench.core.errors import BadInput
from dnnbench.core.record import Record
from dnnbench.results.journal import (
    BENCHMARK_JSON,
    RECORDS,
    RUN_META,
    dumps,
    journal_path,
    read_records,
    read_run_meta,
    write_atomically,
    write_run_meta,
)


def _same(metas: list[dict[str, Any]], folders: list[Path], key: str) -> Any:
    values = {json.dumps(m.get(key)) for m in metas}
    if len(values) > 1:
        listed = ", ".join(f"{f.name}: {m.get(key)}" for f, m in zip(folders, metas, strict=True))
        raise BadInput(f"the shards are of different {key} values ({listed}); merge shards of one run only")
    return metas[0].get(key)


def _shard_folder(source: str | Path) -> Path:
    """The run folder of a shard: one with records, or one whose run.json says it ran and held no pair."""
    folder = Path(source)
    if folder.is_dir() and (folder / RUN_META).is_file() and not (folder / RECORDS).exists():
        return folder
    return journal_path(source).parent


def merge(sources: Sequence[str | Path], out: str | Path) -> tuple[int, int]:
    """Write the merged run into `out`; returns (records, benchmarks). BadInput on mixed or overlapping shards."""
    folders = [_shard_folder(s) for s in sources]
    out = Path(out)
    if len(folders) < 2:
        raise BadInput("merge needs two shard folders or more")
    if any(f.resolve() == out.resolve() for f in folders):
        raise BadInput(f"--out {out} is one of the shards; choose a new folder")
    metas = [read_run_meta(f) for f in folders]
    matrix, device = _same(metas, folders, "matrix"), _same(metas, folders, "device")
    records: list[Record] = []
    seen: dict[tuple[str, int], str] = {}  # record key → the shard folder it came from
    for folder in folders:
        if not (folder / RECORDS).exists():  # a shard that held no pair (N larger than the matrix needs)
            continue
        for record in read_records(folder / RECORDS):
            if record.key in seen:
                raise BadInput(
                    f"{record.case_id} seed {record.seed} is in both {seen[record.key]} and {folder.name}: "
                    "the shards overlap; merge each shard once"
                )
            seen[record.key] = folder.name
            records.append(record)
    write_atomically(out / RECORDS, "".join(dumps(r.with_context(run_id=out.name)) + "\n" for r in records))
    benchmarks = _merged_benchmarks(folders)
    if benchmarks is not None:
        write_atomically(out / BENCHMARK_JSON, json.dumps(benchmarks, indent=4))
    starts = [m["started_at"] for m in metas if m.get("started_at")]
    ends = [m["finished_at"] for m in metas if m.get("finished_at")]
    write_run_meta(
        out,
        {
            "matrix": matrix,
            "device": device,
            "seeds": sorted({s for m in metas for s in (m.get("seeds") or [])}),
            "env": metas[0].get("env"),
            "started_at": min(starts) if starts else None,
            "finished_at": max(ends) if ends else None,
            "calibration_start": metas[0].get("calibration_start"),
            "calibration_end": metas[-1].get("calibration_end"),
            "merged_from": [
                {
                    "folder": str(f),
                    "shard": m.get("shard"),
                    "env": m.get("env"),
                    "started_at": m.get("started_at"),
                    "finished_at": m.get("finished_at"),
                    "calibration_start": m.get("calibration_start"),
                    "records": sum(1 for v in seen.values() if v == f.name),
                }
                for f, m in zip(folders, metas, strict=True)
            ],
        },
    )
    return len(records), len(benchmarks["benchmarks"]) if benchmarks else 0


def _merged_benchmarks(folders: list[Path]) -> dict[str, Any] | None:
    """pytest-benchmark's format: the first shard's machine and commit info, every shard's benchmarks."""
    files = [f / BENCHMARK_JSON for f in folders if (f / BENCHMARK_JSON).exists()]
    if not files:
        return None
    try:
        parts = [json.loads(p.read_text()) for p in files]
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"a shard's benchmark.json is not readable JSON ({exc}); run its shard again with --resume"
        ) from None
    merged = dict(parts[0])
    merged["benchmarks"] = [b for part in parts for b in part.get("benchmarks", [])]
    merged["dnnbench"] = {"merged_from": [str(p.parent) for p in files]}
    return merged
