"""Which records a claim reads: cases of one run matched on every case field but the one it varies, and
their figures per seed. A seed that did not finish stays as a gap (NaN), so the part that needed it
is undecided rather than decided by the other seeds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pandas as pd

from dnnbench.definitions.cases import Case

CASE_FIELDS = tuple(f.name for f in dataclasses.fields(Case))
BUDGET_FIELDS = ("epochs", "max_seconds")  # batch regimes run on budgets of their own (batch 1 on seconds)


def finished(frame: pd.DataFrame) -> pd.DataFrame:
    """Every row with its batch size as text. Rows that did not finish stay: by_seed gives their seeds NaN,
    so a seed that failed on one side leaves its part undecided."""
    return frame.assign(batch=frame["batch_size"].astype(str)) if "batch_size" in frame else frame


def prefer_note(rows: pd.DataFrame) -> pd.DataFrame:
    """The note's protocol where the rows have it, else the benchmark's."""
    if "protocol" in rows and (rows["protocol"] == "note").any():
        return rows[rows["protocol"] == "note"]
    return rows


def _key(rows: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One string per row naming its values in `columns` (lists and NaN included), to group on."""
    present = [c for c in columns if c in rows]
    return rows[present].map(str).agg("|".join, axis=1) if present else pd.Series("", index=rows.index)


def matched_groups(rows: pd.DataFrame, vary: Iterable[str]) -> list[pd.DataFrame]:
    """Groups of rows equal on every case field but those in `vary`, from one run (each group: one comparison;
    a report over several runs judges each run's cases among themselves)."""
    fixed = ["run", *(f for f in CASE_FIELDS if f not in set(vary))]
    if rows.empty:
        return []
    return [group for _, group in rows.groupby(_key(rows, fixed), sort=False)]


def matched_pair(
    rows: pd.DataFrame, field: str, reference: object, variant: object, also: Iterable[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The first (reference rows, variant rows) that differ only in `field` (and `also`); None without one."""
    for group in matched_groups(rows, [field, *also]):
        values = group[field].map(str)
        ref, var = group[values == str(reference)], group[values == str(variant)]
        if len(ref) and len(var):
            return ref, var
    return None


def by_seed(rows: pd.DataFrame, metric: str) -> pd.Series:
    """The metric per seed, over every seed the rows ran under: the median of the finished rows that have
    it, NaN for a seed that failed or lacks the figure (so a comparison sees the gap, not fewer seeds)."""
    if rows.empty or "seed" not in rows:
        return pd.Series(dtype=float)
    values = pd.to_numeric(rows[metric], errors="coerce") if metric in rows else pd.Series(np.nan, index=rows.index)
    if "status" in rows:
        values = values.where(rows["status"] == "ok")
    return values.groupby(rows["seed"]).median()


def ratio_by_seed(top: pd.Series, bottom: pd.Series) -> np.ndarray:
    """top / bottom per seed of either side (NaN where one side has no figure)."""
    joined = pd.concat([top.rename("top"), bottom.rename("bottom")], axis=1, join="outer")
    return (joined["top"] / joined["bottom"]).to_numpy(dtype=float)


def difference_by_seed(a: pd.Series, b: pd.Series) -> np.ndarray:
    """a − b per seed of either side (NaN where one side has no figure)."""
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="outer")
    return (joined["a"] - joined["b"]).to_numpy(dtype=float)


def case_ids(*groups: pd.DataFrame | None) -> tuple[str, ...]:
    ids: list[str] = []
    for rows in groups:
        if rows is not None and "case_id" in rows:
            ids += [str(c) for c in rows["case_id"]]
    return tuple(dict.fromkeys(ids))
