"""Analysis: the records of one or more runs (frames.load) → per-case statistics over seeds.

Pure pandas. Reads records, never re-runs a case and never imports torch. Statistics follow the
measurement rules: medians over seeds with their spread (min–max), statuses kept next to the
numbers so that a case that diverged, was skipped or missed its target is shown, not dropped.
"""

from __future__ import annotations

from dataclasses import fields

import pandas as pd

from dnnbench.core.metrics import METRICS, summarised
from dnnbench.definitions.cases import Case

# Case fields that identify a configuration (everything but the seed).
CONFIG_COLUMNS = [f.name for f in fields(Case)]


def _status(statuses: pd.Series) -> str:
    counts = statuses.value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return "mixed: " + ", ".join(f"{n} {s}" for s, n in counts.items())


def case_summary(frame: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per run × case: its config, status over seeds, and per metric the median, min and max
    over the seeds that finished ok. `<metric>` holds the median; `<metric>_min`/`_max` the spread."""
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
                "suites": first.get("suites") or first.get("suite"),
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
            values = ok[m].dropna()
            row[m] = values.median() if len(values) else None
            row[f"{m}_min"] = values.min() if len(values) else None
            row[f"{m}_max"] = values.max() if len(values) else None
            row[f"{m}_n"] = len(values)
        rows.append(row)
    out = pd.DataFrame(rows)
    for m in metrics:
        for suffix in ("", "_min", "_max"):
            out[m + suffix] = pd.to_numeric(out[m + suffix], errors="coerce")
    return out


def in_suite(summary: pd.DataFrame, suite: str) -> pd.DataFrame:
    """The cases that a suite lists (a case shared by several suites belongs to each)."""
    mask = summary["suites"].fillna("").str.split(",").apply(lambda suites: suite in suites)
    return summary[mask]


def compare(baseline: pd.DataFrame, current: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Case summaries of two runs → one row per common case × metric: baseline and current medians,
    Δ% and whether the change is better or worse given the metric's direction."""
    keyed_b = baseline.set_index("case_id")
    keyed_c = current.set_index("case_id")
    rows = []
    for case_id in keyed_c.index.intersection(keyed_b.index):
        b, c = keyed_b.loc[case_id], keyed_c.loc[case_id]
        for m in metrics:
            vb, vc = b.get(m), c.get(m)
            if pd.isna(vb) or pd.isna(vc):
                continue
            delta = (vc - vb) / abs(vb) * 100 if vb else None
            direction = METRICS[m].direction if m in METRICS else 0
            if delta is None or delta == 0 or direction == 0:
                verdict = "same"
            else:
                verdict = "better" if delta * direction > 0 else "worse"
            rows.append(
                {
                    "case_id": case_id,
                    "metric": m,
                    "baseline": vb,
                    "current": vc,
                    "delta_pct": delta,
                    "direction": verdict,
                }
            )
    return pd.DataFrame(rows, columns=["case_id", "metric", "baseline", "current", "delta_pct", "direction"])


def varying_label(case_ids: pd.Series) -> pd.Series:
    """Short labels: the tokens of each case id that are not shared by every id in the set
    (e.g. just 'sgd' vs 'adam' in the optimizer suite)."""
    token_lists = case_ids.str.split("_")
    common = set.intersection(*(set(t) for t in token_lists)) if len(token_lists) else set()
    labels = token_lists.apply(lambda tokens: " ".join(t for t in tokens if t not in common) or "reference")
    return labels
