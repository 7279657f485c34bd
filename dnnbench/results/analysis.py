"""Analysis: the records of one or more runs (frames.load) → per-case statistics over seeds.

Pure pandas. Reads records, never re-runs a case and never imports torch. Statistics follow the
measurement rules: medians over seeds with their spread (min–max), statuses kept next to the
numbers so that a case that diverged, was skipped or missed its target is shown, not dropped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

from dnnbench.core.metrics import METRICS, summarised
from dnnbench.definitions.cases import Case
from dnnbench.results.frames import listed_in

# Case fields that identify a configuration (everything but the seed).
CONFIG_COLUMNS = [f.name for f in fields(Case)]


def _status(statuses: pd.Series) -> str:
    counts = statuses.value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return "mixed: " + ", ".join(f"{n} {s}" for s, n in counts.items())


@dataclass(frozen=True)
class Spread:
    """One metric of one case over its seeds: the median and the range of the seeds that gave a value.
    In a summary frame it is the columns `<metric>`, `<metric>_min`, `<metric>_max` and `<metric>_n`
    (plain columns, so pandas can sort and write them); read them back with Spread.read."""

    median: float | None
    low: float | None
    high: float | None
    n: int  # seeds with a value

    @classmethod
    def of(cls, values: pd.Series) -> Spread:
        values = pd.to_numeric(values, errors="coerce").dropna()
        if values.empty:
            return cls(None, None, None, 0)
        return cls(float(values.median()), float(values.min()), float(values.max()), len(values))

    @classmethod
    def read(cls, row: Mapping[str, Any], metric: str) -> Spread:
        def number(key: str) -> float | None:
            value = row.get(key)
            return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

        n = number(f"{metric}_n")  # absent in frames made before it: one seed when a value is there
        median = number(metric)
        count = int(n) if n else int(median is not None)
        return cls(median, number(f"{metric}_min"), number(f"{metric}_max"), count)

    def columns(self, metric: str) -> dict[str, float | int | None]:
        return {metric: self.median, f"{metric}_min": self.low, f"{metric}_max": self.high, f"{metric}_n": self.n}

    @staticmethod
    def numeric_columns(metric: str) -> tuple[str, str, str]:
        return metric, f"{metric}_min", f"{metric}_max"


def censored(ok: pd.DataFrame, metric: str) -> pd.Series:
    """A metric's values over finished seeds; for a "to the target" metric (core/metrics: censored) a
    seed of a workload with a target that did not reach it is +inf, not missing: the median of three
    seeds of which two missed is "not reached", not the one that made it."""
    values = pd.to_numeric(ok[metric], errors="coerce")
    if not METRICS[metric].censored or "target_value" not in ok:
        return values
    missed = values.isna() & ok["target_value"].notna()
    return values.mask(missed, math.inf)


def case_summary(frame: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per run × case: its config, status over seeds, and per metric the median, min and max
    over the seeds that finished ok. `<metric>` holds the median; `<metric>_min`/`_max` the spread. A
    seed that missed the target is +inf in the "to the target" metrics (censored)."""
    metrics = [m for m in (metrics or summarised()) if m in frame]
    rows = []
    for (run, case_id), group in frame.groupby(["run", "case_id"], sort=False):
        first = group.iloc[0]
        ok = group[group["status"] == "ok"]
        not_ok = group[group["status"] != "ok"]
        row = {"run": run, "case_id": case_id}
        row.update({c: first.get(c) for c in CONFIG_COLUMNS if c in group})
        row.update(
            {
                "suites": first.get("suites") or ((first["suite"],) if first.get("suite") else ()),
                "resolved_batch_size": first.get("resolved_batch_size"),
                "seeds": len(group),
                "ok_seeds": len(ok),
                "status": _status(group["status"]),
                "reason": not_ok["reason"].iloc[0] if len(not_ok) else (first.get("reason") or ""),
                "target_value": first.get("target_value"),
                "target_metric": first.get("target_metric"),
                "target_reached": int(ok["target_reached"].fillna(False).astype(bool).sum()) if len(ok) else 0,
                "target_status": first.get("target_status"),
            }
        )
        for m in metrics:
            row.update(Spread.of(censored(ok, m)).columns(m))
        rows.append(row)
    out = pd.DataFrame(rows)
    for m in metrics:
        for column in Spread.numeric_columns(m):
            out[column] = pd.to_numeric(out[column], errors="coerce")
    return out


def in_suite(summary: pd.DataFrame, suite: str) -> pd.DataFrame:
    """The rows (cases or records) that a suite lists (a case shared by several suites belongs to each)."""
    return summary[listed_in(summary, suite)] if len(summary) else summary


def varying_label(case_ids: pd.Series) -> pd.Series:
    """Short labels: the tokens of each case id that are not shared by every id in the set
    (e.g. just 'sgd' vs 'adam' in the optimizer suite)."""
    token_lists = case_ids.str.split("_")
    common = set.intersection(*(set(t) for t in token_lists)) if len(token_lists) else set()
    labels = token_lists.apply(lambda tokens: " ".join(t for t in tokens if t not in common) or "reference")
    return labels


def scaling(frame: pd.DataFrame) -> pd.DataFrame:
    """Data-parallel cases beside their one-process reference: per world size the global throughput,
    the per-rank step time, the all-reduce's share and the scaling efficiency, throughput / (world size ×
    one process's throughput). The reference is the world-size-1 case with the same settings and, for a
    learning-rate rule (weak scaling: the per-rank batch kept), the per-rank batch; without one (strong
    scaling: the global batch kept), the same global batch."""
    if "world_size" not in frame:
        return pd.DataFrame()
    ok = frame[(frame["status"] == "ok") & frame["throughput_samples_per_s"].notna()].copy()
    ok["world_size"] = ok["world_size"].fillna(1).astype(int)
    if not (ok["world_size"] > 1).any():
        return pd.DataFrame()
    ok["time_to_target_s"] = censored(ok, "time_to_target_s")
    ok["global_batch"] = pd.to_numeric(ok["resolved_batch_size"], errors="coerce")
    ok["rank_batch"] = ok["global_batch"] / ok["world_size"]
    same = [
        c
        for c in ("run", "workload", "optimizer", "loader", "device", "protocol", "epochs", "train_samples")
        if c in ok
    ]
    medians = ok.groupby([*same, "world_size", "global_batch", "rank_batch", "lr_rule"], dropna=False).agg(
        throughput=("throughput_samples_per_s", "median"),
        step_ms=("step_time_ms_median", "median"),
        allreduce=("allreduce_fraction", "median"),
        time_to_target_s=("time_to_target_s", "median"),
        test_accuracy=("final_test_accuracy", "median"),
        seeds=("seed", "count"),
    )
    medians = medians.reset_index()
    ones = medians[medians["world_size"] == 1]
    rows = []
    for _, row in medians.iterrows():
        key = {c: row[c] for c in same}
        batch = row["rank_batch"] if row["lr_rule"] != "none" else row["global_batch"]
        ref = ones
        for c, v in key.items():
            ref = ref[(ref[c] == v) | (ref[c].isna() & pd.isna(v))]
        ref = ref[ref["global_batch"] == batch]
        single = float(ref["throughput"].iloc[0]) if len(ref) else None
        rows.append(
            {
                **key,
                "world_size": int(row["world_size"]),
                "scaling": "—" if row["world_size"] == 1 else ("weak" if row["lr_rule"] != "none" else "strong"),
                "lr_rule": row["lr_rule"],
                "global_batch": int(row["global_batch"]),
                "rank_batch": int(row["rank_batch"]),
                "throughput_samples_per_s": row["throughput"],
                "step_time_ms_median": row["step_ms"],
                "allreduce_fraction": row["allreduce"],
                "scaling_efficiency": row["throughput"] / (row["world_size"] * single) if single else None,
                "time_to_target_s": row["time_to_target_s"],
                "final_test_accuracy": row["test_accuracy"],
                "seeds": int(row["seeds"]),
            }
        )
    return pd.DataFrame(rows)
