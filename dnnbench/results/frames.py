"""Records → pandas: one row per case × seed (and run), and the curves in long form for charts."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from typing import Any

import pandas as pd

from dnnbench.core import probes
from dnnbench.core.errors import BadInput
from dnnbench.core.metrics import METRICS
from dnnbench.core.record import Record
from dnnbench.definitions.cases import Case
from dnnbench.results.journal import journal_path, records_of

Sources = str | os.PathLike | Iterable[str | os.PathLike]  # one run or several

# Calibration probes as frame columns (the gate adjusts speed by them).
PROBE_COLUMNS = probes.COLUMNS


CASE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Case)}


def row(record: Record, run: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run": run,
        "source_run": record.source_run or run,  # a saved baseline's records keep the run they came from
        "case_id": record.case_id,
        "seed": record.seed,
        "suite": record.suite,
        "suites": tuple(record.suites),
        "status": record.status,
        "reason": record.reason,
        "protocol": record.protocol,
    }
    out.update(record.case)
    for name, default in CASE_DEFAULTS.items():  # a record made before a field existed ran at its default
        out.setdefault(name, default)
    if isinstance(out.get("hidden"), list):
        out["hidden"] = ",".join(str(h) for h in out["hidden"])
    out.update(record.metrics)
    for phase, share in (record.phase_fractions or {}).items():
        out[f"phase_{phase}"] = share
    target = record.target
    out["target_metric"] = target.metric if target else None
    out["target_value"] = target.value if target else None
    out["target_reached"] = target.reached if target else None
    out["target_status"] = target.status if target else None
    for probe, column in PROBE_COLUMNS.items():
        out[column] = record.calibration.mean(probe) if record.calibration else None
    for k, v in (record.resolved or {}).items():
        out[f"resolved_{k}"] = ",".join(map(str, v)) if isinstance(v, list) else v
    for k, v in record.env.items():
        out[f"env_{k}"] = v
    return out


def _sources(sources: Sources) -> list[str | os.PathLike]:
    return [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)


def named_runs(sources: Sources) -> list[tuple[str, list[Record]]]:
    """(run name, records) per source. Two runs of one folder name (a/results/latest, b/results/latest)
    are named by their paths as given, so that no table or chart takes them for one run; the same run
    given twice is refused."""
    sources = _sources(sources)
    runs = [records_of(s) for s in sources]
    names = [name for name, _ in runs]
    if len(set(names)) == len(names):
        return runs
    real = [journal_path(s).resolve() for s in sources]
    if len(set(real)) < len(real):
        raise BadInput(f"the same run is given twice: {', '.join(map(str, sources))}")
    return [
        (str(s) if names.count(name) > 1 else name, records) for s, (name, records) in zip(sources, runs, strict=True)
    ]


def load(sources: Sources) -> pd.DataFrame:
    """One or several runs → a DataFrame with one row per case × seed (and run).

    Columns: run, source_run, case_id, seed, suite, status, reason, every Case field, every metric of the
    registry, phase_<name>, target_*, calibration_*, resolved_<field> and env_<field>.
    """
    rows = []
    for run, records in named_runs(sources):
        rows += [row(r, run) for r in records]
    frame = pd.DataFrame(rows)
    for m in METRICS:
        if m in frame:
            frame[m] = pd.to_numeric(frame[m], errors="coerce")
    return frame


def load_curves(sources: Sources) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The curves of one or several runs in long form, for charts: (loss per step, validation points).

    Both carry run, case_id, seed, suites and the case fields that charts colour by.
    """
    loss_rows, val_rows = [], []
    for run, records in named_runs(sources):
        for r in records:
            if not r.curves:
                continue
            case = r.case
            ident = {
                "run": run,
                "case_id": r.case_id,
                "seed": r.seed,
                "status": r.status,
                "suites": tuple(r.suites),
                "workload": case.get("workload"),
                "optimizer": case.get("optimizer"),
                "regularization": case.get("regularization"),
                "loader": case.get("loader"),
                "device": case.get("device"),
                "batch_size": str(case.get("batch_size")),
                "protocol": r.protocol,
                "target_metric": r.target.metric if r.target else None,  # the task: what the curves measure
                "resolved_loss": (r.resolved or {}).get("loss"),
            }
            loss = r.curves.get("loss") or {}
            pairs = zip(loss.get("step", []), loss.get("loss", []), strict=True)
            loss_rows += [{**ident, "step": s, "loss": v} for s, v in pairs]
            val_rows += [{**ident, **point} for point in r.curves.get("val") or []]
    return pd.DataFrame(loss_rows), pd.DataFrame(val_rows)


def listed_in(frame: pd.DataFrame, suite: str) -> pd.Series:
    """Which rows a suite lists: the `suites` column holds each row's suites as a tuple (a case shared
    by several suites belongs to each)."""
    return frame["suites"].apply(lambda suites: isinstance(suites, tuple) and suite in suites).astype(bool)
