"""Comparison tables: case summaries (analysis.case_summary) → display tables with units.

Every table keeps cases that were skipped, diverged or missed their target, with that status in
the cell, rather than dropping them. Numbers are medians over seeds; the spread (min–max) follows
in brackets when a case has more than one seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from dnnbench.core.metrics import METRICS, label, overview
from dnnbench.results.analysis import Spread, in_suite, scaling


@dataclass
class Table:
    name: str  # file stem for the CSV
    title: str
    caption: str
    display: pd.DataFrame  # formatted strings, for HTML and Markdown
    numbers: pd.DataFrame  # the numeric rows behind it, for the CSV


def _fmt(metric: str, value: float) -> str:
    return METRICS[metric].format(value)


def cell(row: pd.Series, metric: str) -> str:
    """One table cell: the median with its spread, or the reason there is no number."""
    status = str(row["status"])
    if status in ("skipped", "diverged", "oom", "error"):
        return status
    value = row.get(metric)
    if METRICS[metric].censored:
        if row.get("target_value") is None or (
            isinstance(row.get("target_value"), float) and math.isnan(row["target_value"])
        ):
            return "no target"
        n_ok = int(row.get("ok_seeds") or 0)
        reached = int(row.get("target_reached") or 0)
        if reached == 0:
            return "not reached"
        if reached < n_ok:  # the median counts a missed seed as never reaching it (analysis.censored)
            return f"{_fmt(metric, value)} ({reached}/{n_ok} seeds reached it)"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = _fmt(metric, value)
    spread = Spread.read(row, metric)
    if spread.n > 1 and spread.low is not None and spread.high is not None and spread.low != spread.high:
        text += f" ({_fmt(metric, spread.low)}–{_fmt(metric, spread.high)})"
    if status.startswith("mixed"):
        text += f" [{status}]"
    return text


def _pivot(rows: pd.DataFrame, index: list[str], columns: list[str], metric: str) -> pd.DataFrame:
    """Cells for `metric` laid out index × columns; dimensions with a single value are dropped and
    named in the caption instead."""
    rows = rows.copy()  # one block: the summary frame is built column by column (pandas warns on it)
    rows = rows.assign(_cell=rows.apply(cell, axis=1, metric=metric))
    index = [c for c in index if rows[c].nunique(dropna=False) > 1] or index[-1:]
    columns = [c for c in columns if rows[c].nunique(dropna=False) > 1]
    if not columns:
        out = rows.set_index(index)[["_cell"]].rename(columns={"_cell": label(metric)})
        return out[~out.index.duplicated()].sort_index()
    return rows.pivot_table(index=index, columns=columns, values="_cell", aggfunc="first", fill_value="—")


def _constants(rows: pd.DataFrame, names: list[str]) -> str:
    fixed = [f"{n}={rows[n].iloc[0]}" for n in names if n in rows and rows[n].nunique(dropna=False) == 1]
    return ", ".join(fixed)


def _order_batches(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.assign(
        batch_size=pd.Categorical(
            rows["batch_size"].astype(str),
            categories=sorted(rows["batch_size"].astype(str).unique(), key=lambda b: (b == "full", len(b), b)),
            ordered=True,
        )
    )


NUMBER_COLUMNS = ["run", "case_id", "status", "seeds", "reason"]


def _numbers(rows: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    cols = NUMBER_COLUMNS + [c for m in metrics for c in Spread.numeric_columns(m) if c in rows]
    config = [
        c
        for c in (
            "workload",
            "batch_size",
            "optimizer",
            "regularization",
            "loader",
            "num_workers",
            "pin_memory",
            "device",
        )
        if c in rows
    ]
    return rows[NUMBER_COLUMNS[:2] + config + cols[2:]]


PER_RUN = "One row per run: the runs' figures are shown side by side, not pooled."


def _per_run(caption: str, several: bool) -> str:
    """The caption, saying that each run keeps its own rows when there are several."""
    if not several:
        return caption
    caption = caption.rstrip()
    return f"{caption}{'' if caption.endswith('.') else '.'} {PER_RUN}"


def _suite_tables(
    rows: pd.DataFrame,
    name: str,
    heading: str,
    caption: str,
    index: list[str],
    columns: list[str],
    metrics: list[tuple[str, str]],
) -> list[Table]:
    """One table per (metric, title): cells of `metric` laid out index × columns; with several runs,
    the run is the first index level (a run's figures are never pooled with another's)."""
    index = ["run", *index]
    caption = _per_run(caption, rows["run"].nunique() > 1)
    return [
        Table(
            f"{name}_{metric}",
            f"{heading} → {title}",
            caption,
            _pivot(rows, index, columns, metric),
            _numbers(rows, [metric]),
        )
        for metric, title in metrics
    ]


def optimizer_regularization(summary: pd.DataFrame) -> list[Table]:
    rows = pd.concat([in_suite(summary, "optimizers"), in_suite(summary, "regularization")])
    rows = rows.drop_duplicates(subset=["run", "case_id"])
    if rows.empty:
        return []
    caption = "Median over seeds (min–max). " + _constants(rows, ["workload", "device", "batch_size", "loader"])
    metrics = [("final_test_accuracy", "final test accuracy"), ("time_to_target_s", "time to target")]
    return _suite_tables(
        rows,
        "optimizer_regularization",
        "Optimizer × regularization",
        caption,
        ["workload", "device", "optimizer"],
        ["regularization"],
        metrics,
    )


def batch_device(summary: pd.DataFrame) -> list[Table]:
    rows = in_suite(summary, "batch")
    if rows.empty:
        return []
    caption = "Batch regimes: 1 = SGD, m = mini-batch, full = batch gradient descent. "
    caption += _constants(rows, ["optimizer", "loader"])
    metrics = [("throughput_samples_per_s", "throughput (samples/s)"), ("time_to_target_s", "time to target")]
    return _suite_tables(
        _order_batches(rows),
        "batch_device",
        "Batch regime × device",
        caption,
        ["workload", "batch_size"],
        ["device"],
        metrics,
    )


def loaders(summary: pd.DataFrame) -> list[Table]:
    rows = in_suite(summary, "loaders")
    if rows.empty:
        return []
    caption = "DataLoader settings; skipped combinations say why in the run's records. "
    caption += _constants(rows, ["workload", "optimizer"])
    metrics = [
        ("throughput_samples_per_s", "throughput (samples/s)"),
        ("data_wait_fraction", "data-wait share of step time"),
    ]
    return _suite_tables(
        _order_batches(rows),
        "loaders",
        "Loader × num_workers × pin_memory",
        caption,
        ["batch_size", "loader", "num_workers", "pin_memory"],
        ["device"],
        metrics,
    )


MODEL_METRICS = [
    "throughput_samples_per_s",
    "flops_per_sample",
    "roofline_fraction",
    "time_to_target_s",
    "final_test_accuracy",
    "grad_norm_ratio",
]
MODEL_AXES = ["optimizer", "regularization", "activation", "memory_format", "loader", "batch_size"]


def models(summary: pd.DataFrame) -> list[Table]:
    """The models suite, grouped by workload: what each net costs (throughput, FLOPs, share of the
    device's peak) and buys (time to target, accuracy), and whether its gradients vanish."""
    rows = in_suite(summary, "models")
    if rows.empty:
        return []
    axes = [a for a in MODEL_AXES if a in rows and rows[a].nunique(dropna=False) > 1]
    several = rows["run"].nunique() > 1
    display = pd.DataFrame(
        {
            **({"run": rows["run"]} if several else {}),
            "workload": rows["workload"],
            "setting": rows[axes].astype(str).agg(" · ".join, axis=1) if axes else rows["case_id"],
            **{label(m): rows.apply(cell, axis=1, metric=m) for m in MODEL_METRICS if m in rows},
        }
    ).sort_values([*(["run"] if several else []), "workload", "setting"])
    caption = (
        "One block per workload. FLOPs per sample are torch.utils.flop_counter's (forward and backward); the "
        "roofline share is throughput × FLOPs over the device's measured peak; the gradient ratio is the first "
        "layer's gradient norm over the last hidden layer's (below 1: vanishing toward the input). "
    ) + _constants(rows, ["device", *MODEL_AXES])
    caption = _per_run(caption, several)
    return [
        Table(
            "models",
            "Models: cost and gain per workload",
            caption,
            display.set_index([*(["run"] if several else []), "workload", "setting"]),
            _numbers(rows, [m for m in MODEL_METRICS if m in rows]),
        )
    ]


def all_cases(summary: pd.DataFrame) -> Table:
    display = pd.DataFrame(
        {
            "case": summary["case_id"],
            "run": summary["run"],
            "status": summary["status"],
            "seeds": summary["seeds"],
            **{label(m): summary.apply(cell, axis=1, metric=m) for m in overview()},
            "note": summary["reason"].fillna("").where(summary["status"] != "ok", summary["target_status"].fillna("")),
        }
    )
    if display["run"].nunique() == 1:
        display = display.drop(columns="run")
    return Table(
        "all_cases",
        "Every case",
        "Medians over seeds (min–max); statuses and reasons as recorded.",
        display.set_index("case"),
        _numbers(summary, overview()),
    )


def scaling_table(frame: pd.DataFrame) -> list[Table]:
    """Data-parallel scaling per world size, against one process (analysis.scaling)."""
    numbers = scaling(frame)
    if numbers.empty:
        return []
    fmt = {
        "throughput_samples_per_s": METRICS["throughput_samples_per_s"].format,
        "step_time_ms_median": lambda v: "—" if pd.isna(v) else f"{v:.3g} ms",
        "allreduce_fraction": lambda v: "—" if pd.isna(v) else f"{v:.0%}",
        "scaling_efficiency": lambda v: "—" if v is None or pd.isna(v) else f"{v:.2f}",
        "time_to_target_s": lambda v: "not reached" if pd.isna(v) or math.isinf(v) else f"{v:.3g} s",
        "final_test_accuracy": METRICS["final_test_accuracy"].format,
    }
    display = numbers.copy()
    for column, f in fmt.items():
        display[column] = display[column].map(f)
    several = "run" in display and display["run"].nunique() > 1  # each run's rows, never pooled
    keep = [*(["run"] if several else []), "loader", "world_size", "scaling", "global_batch", "rank_batch", *fmt]
    display = display[[c for c in keep if c in display]].rename(
        columns={
            "throughput_samples_per_s": "throughput (samples/s, all ranks)",
            "step_time_ms_median": "step time (rank 0)",
            "allreduce_fraction": "all-reduce share",
            "scaling_efficiency": "efficiency",
            "time_to_target_s": "time to target",
            "final_test_accuracy": "final test accuracy",
        }
    )
    caption = (
        "Efficiency = throughput / (world size × one process's throughput); one process uses every core, each "
        "of N processes 1/N of them. Strong: the global batch kept; weak: the per-rank batch kept, lr × N. "
        "Each side measured once, at different moments: for an efficiency with an interval from interleaved "
        "rounds, run `dnnbench scaling`."
    )
    caption = _per_run(caption, several)
    index = ["run", "loader"] if several else ["loader"]
    return [
        Table("scaling", "Data-parallel scaling (DDP through torchrun)", caption, display.set_index(index), numbers)
    ]


FASTPATH_AXES = ("optimizer_impl", "compile", "precision", "threads")


def _path_name(row: pd.Series) -> str:
    changed = [
        f"{axis}={row[axis]}"
        for axis, default in (("optimizer_impl", "default"), ("compile", "off"), ("precision", "fp32"))
        if axis in row and row[axis] != default
    ]
    if "threads" in row and not pd.isna(row["threads"]):
        changed.append(f"threads={int(row['threads'])}")
    return ", ".join(changed) or "default"


def fastpaths(summary: pd.DataFrame) -> list[Table]:
    """Each fast path's speed-up over the default at its batch size, with its accuracy and roofline share."""
    rows = in_suite(summary, "fastpaths")
    if rows.empty:
        return []
    out = []
    several = rows["run"].nunique() > 1
    for (run, batch), group in rows.groupby([rows["run"], rows["batch_size"].astype(str)], sort=False):
        group = group.assign(path=group.apply(_path_name, axis=1))
        default = group[group["path"] == "default"]
        base = float(default["throughput_samples_per_s"].iloc[0]) if len(default) else None
        base_acc = float(default["final_test_accuracy"].iloc[0]) if len(default) else None
        for _, r in group.iterrows():
            ok = r["status"] == "ok" and not pd.isna(r["throughput_samples_per_s"])
            out.append(
                {
                    "run": run,
                    "batch": batch,
                    "path": r["path"],
                    "status": r["status"] if r["status"] != "skipped" else f"skipped: {r['reason']}",
                    "throughput_samples_per_s": r["throughput_samples_per_s"] if ok else None,
                    "speedup": r["throughput_samples_per_s"] / base if ok and base else None,
                    "final_test_accuracy": r["final_test_accuracy"] if ok else None,
                    "accuracy_change_pt": (r["final_test_accuracy"] - base_acc) * 100 if ok and base_acc else None,
                    "roofline_fraction": r.get("roofline_fraction") if ok else None,
                    "compile_time_s": r.get("compile_time_s") if ok else None,
                }
            )
    numbers = pd.DataFrame(out)
    best = numbers.dropna(subset=["speedup"]).sort_values("speedup").groupby(["run", "batch"]).tail(1)
    display = (
        numbers.drop(columns=[] if several else ["run"])
        .assign(
            throughput_samples_per_s=numbers["throughput_samples_per_s"].map(
                METRICS["throughput_samples_per_s"].format
            ),
            speedup=numbers["speedup"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}x"),
            final_test_accuracy=numbers["final_test_accuracy"].map(METRICS["final_test_accuracy"].format),
            accuracy_change_pt=numbers["accuracy_change_pt"].map(lambda v: "—" if pd.isna(v) else f"{v:+.2f} pt"),
            roofline_fraction=numbers["roofline_fraction"].map(METRICS["roofline_fraction"].format),
            compile_time_s=numbers["compile_time_s"].map(lambda v: "—" if pd.isna(v) else f"{v:.1f} s"),
        )
        .rename(
            columns={
                "throughput_samples_per_s": "throughput (samples/s)",
                "speedup": "speed-up",
                "final_test_accuracy": "test accuracy",
                "accuracy_change_pt": "accuracy vs default",
                "roofline_fraction": "share of peak",
                "compile_time_s": "compile time",
            }
        )
    )
    best_text = "; ".join(
        f"{f'{r.run}, ' if several else ''}batch {r.batch}: {r.path} ({r.speedup:.2f}x)" for r in best.itertuples()
    )
    caption = (
        "Each fast path alone against the default, and all the fastest together; share of peak is the in-run "
        f"roofline in the path's own dtype. Best path per batch size: {best_text or 'none measured'}."
    )
    caption = _per_run(caption, several)
    return [
        Table(
            "fastpaths",
            "Fast paths: speed-up, accuracy, roofline",
            caption,
            display.set_index([*(["run"] if several else []), "batch", "path"]),
            numbers,
        )
    ]


def build_tables(summary: pd.DataFrame, frame: pd.DataFrame | None = None) -> list[Table]:
    """The report's tables. A baseline is judged by the gate itself (views.gate, at the top of the
    report), not by a table of its own that could call a change within the noise better or worse."""
    tables = [
        *optimizer_regularization(summary),
        *batch_device(summary),
        *loaders(summary),
        *models(summary),
        *fastpaths(summary),
    ]
    if frame is not None:
        tables += scaling_table(frame)
    tables.append(all_cases(summary))
    return tables
