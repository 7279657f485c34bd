"""A run's figures in the formats CI benchmark trackers read, so they see more than step time:

    customBiggerIsBetter / customSmallerIsBetter   github-action-benchmark: a JSON list of
        {name, unit, value, range, extra}, one file per direction (the action's `tool:` setting)
    bencher                                         Bencher Metric Format: {benchmark: {measure: {value,
        lower_value, upper_value}}}, every direction in one file (a measure's direction is set in Bencher)

Each figure is the median over the case's seeds that finished, with the lowest and highest seed as its
range. A target a case missed in most seeds has no time to it, and is left out rather than written as
a number it never had.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from dnnbench.core.errors import BadInput
from dnnbench.core.metrics import METRICS

# metric → (Bencher measure slug, unit as the trackers show it)
EXPORTED = {
    "throughput_samples_per_s": ("throughput", "samples/s"),
    "time_to_target_s": ("time-to-target", "s"),
    "final_test_accuracy": ("accuracy", "fraction"),
    "peak_memory_bytes": ("peak-memory", "bytes"),
}
FORMATS = ("customBiggerIsBetter", "customSmallerIsBetter", "bencher")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _figures(summary: pd.DataFrame) -> list[tuple[str, str, float, float | None, float | None, int]]:
    """(case, metric, median, low, high, seeds) for every exported figure that exists."""
    out = []
    for _, row in summary.iterrows():
        for metric in EXPORTED:
            value = _finite(row.get(metric))
            if value is None:
                continue
            low, high = _finite(row.get(f"{metric}_min")), _finite(row.get(f"{metric}_max"))
            out.append((row["case_id"], metric, value, low, high, int(row.get(f"{metric}_n") or 0)))
    return out


def export(summary: pd.DataFrame, fmt: str, commit: str | None = None) -> Any:
    """The run's case summary (results.analysis.case_summary) in format `fmt`, as JSON-ready data."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown export format {fmt!r}; choose from: {', '.join(FORMATS)}")
    figures = _figures(summary)
    if fmt == "bencher":
        bmf: dict[str, dict[str, dict[str, float]]] = {}
        for case, metric, value, low, high, _ in figures:
            measure: dict[str, float] = {"value": value}
            if low is not None and high is not None:
                measure.update(lower_value=low, upper_value=high)
            bmf.setdefault(case, {})[EXPORTED[metric][0]] = measure
        return bmf
    wanted = 1 if fmt == "customBiggerIsBetter" else -1
    entries = []
    for case, metric, value, low, high, seeds in figures:
        if METRICS[metric].direction != wanted:
            continue
        entry: dict[str, Any] = {
            "name": f"{case} - {METRICS[metric].label}",
            "unit": EXPORTED[metric][1],
            "value": value,
            "extra": f"median of {seeds} seed(s)" + (f"\ncommit {commit}" if commit else ""),
        }
        if low is not None and high is not None:
            entry["range"] = f"{low:.6g} to {high:.6g}"
        entries.append(entry)
    return entries
