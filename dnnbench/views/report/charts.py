"""Charts (seaborn): each function takes analysis-level DataFrames and returns a Figure, or None when
the runs hold nothing to draw. One palette per axis, so a colour means the same thing everywhere.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from dnnbench.definitions.loaders import LOADER_KINDS
from dnnbench.definitions.optimizers import OPTIMIZERS
from dnnbench.definitions.optimizers import RACE as OPTIMIZER_RACE
from dnnbench.definitions.regularization import REGULARIZATION_KINDS
from dnnbench.definitions.tasks import task_measured_by
from dnnbench.results.analysis import in_suite, varying_label

sns.set_theme(style="whitegrid", context="notebook")

# The vocabularies are the definitions' registries, so that a new optimizer or loader needs no edit here.
OPTIMIZER_ORDER = list(OPTIMIZERS)
LEGEND = {name: spec.label or name for name, spec in OPTIMIZERS.items()}  # the note's legend spelling
RACE = list(OPTIMIZER_RACE)
REGULARIZATION_ORDER = list(REGULARIZATION_KINDS)
LOADER_ORDER = list(LOADER_KINDS)
PHASE_ORDER = ["data_wait", "copy", "forward", "backward", "allreduce", "optimizer"]
PALETTE = {
    **dict(zip(OPTIMIZER_ORDER, sns.color_palette("tab10", len(OPTIMIZER_ORDER)), strict=True)),
    **dict(zip(LOADER_ORDER, sns.color_palette("Set2", len(LOADER_ORDER)), strict=True)),
}
SPREAD = ("pi", 100)  # the band spans min to max over seeds: no bootstrap, no hidden seeds
SPLIT_LABELS = {"val": "validation", "test": "test", "train": "training-data"}
LOSS_LABELS = {"mse": "MSE", "cross_entropy": "cross-entropy"}


def metric_label(target_metric: str, note: bool) -> str:
    """'validation accuracy', 'training-data MSE (the note's protocol)', ... from a target column."""
    split, metric = target_metric.split("_", 1)
    label = f"{SPLIT_LABELS.get(split, split)} {metric if metric == 'accuracy' else metric.upper()}"
    return label + (" (the note's protocol)" if note else "")


def lower_is_better(rows: pd.DataFrame) -> pd.Series:
    """Rows whose workload's metric is a loss to bring down (regression), read from the target column."""
    return rows["target_metric"].map(lambda m: (t := task_measured_by(m)) is not None and not t.higher_is_better)


def _loss_label(rows: pd.DataFrame) -> str:
    loss = rows["resolved_loss"].dropna() if "resolved_loss" in rows else pd.Series(dtype=str)
    return f"training loss ({LOSS_LABELS.get(loss.iloc[0], loss.iloc[0])})" if len(loss) else "training loss"


def race(loss: pd.DataFrame) -> Figure | None:
    """The note's optimizer race: loss per step per optimizer (cubic; and the classification runs)."""
    if loss.empty:
        return None
    ok = loss[loss["status"] == "ok"]
    panels: list[tuple[str, pd.DataFrame, str, tuple[float, float] | None]] = []  # title, rows, y label, y limits
    regression = ok[lower_is_better(ok) & ok["optimizer"].isin(RACE)]
    for workload, rows in regression.groupby("workload"):
        limits = (0.0, 1.3 * float(rows.groupby("step")["loss"].median().iloc[0]))  # from the first step down
        panels.append((f"{workload}: the optimizer race", rows, _loss_label(rows), limits))
    classes = in_suite(ok[~lower_is_better(ok)], "optimizers")
    for workload, rows in classes.groupby("workload"):
        panels.append((f"{workload}: optimizer suite", rows, _loss_label(rows), None))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, (title, rows, ylabel, ylim) in zip(axes[0], panels, strict=True):
        order = [o for o in OPTIMIZER_ORDER if o in set(rows["optimizer"])]
        sns.lineplot(
            data=rows,
            x="step",
            y="loss",
            hue="optimizer",
            hue_order=order,
            palette=PALETTE,
            errorbar=SPREAD,
            ax=ax,
            linewidth=1.2,
        )
        ax.set(title=title, xlabel="training step", ylabel=ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles, [LEGEND.get(label, label) for label in labels], title=None, fontsize="small")
    fig.tight_layout()
    return fig


def validation_vs_time(val: pd.DataFrame, targets: dict[str, float]) -> Figure | None:
    """Validation metric against training time (evaluation excluded), one panel per suite, the
    workload's target drawn; every seed is its own line."""
    if val.empty:
        return None
    val = val[val["status"] == "ok"]
    panels = []
    for suite in ("optimizers", "regularization", "batch", "loaders", "note"):
        rows = in_suite(val, suite)
        for workload, wrows in rows.groupby("workload"):
            if pd.isna(targets.get(workload)):
                continue  # no target: nothing to converge to (random labels)
            panels.append((suite, workload, wrows))
    if not panels:
        return None
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.6 * cols, 3.9 * nrows), squeeze=False)
    for ax, (suite, workload, rows) in zip(axes.flat, panels, strict=False):
        rows = rows.assign(case=varying_label(rows["case_id"]))
        sns.lineplot(
            data=rows,
            x="train_time_s",
            y="val_metric",
            hue="case",
            units="seed",
            estimator=None,
            ax=ax,
            linewidth=1.1,
            marker=".",
            markersize=4,
        )
        note = "protocol" in rows and (rows["protocol"] == "note").all()
        metric = metric_label(rows["target_metric"].dropna().iloc[0], note)  # the note: test set or training data
        if not pd.isna(targets.get(workload)):
            ax.axhline(targets[workload], color="black", linestyle="--", linewidth=1)
            ax.annotate(
                f"target {targets[workload]:g}",
                (1, targets[workload]),
                xycoords=("axes fraction", "data"),
                ha="right",
                va="bottom",
                fontsize="small",
            )
        if lower_is_better(rows).all():
            ax.set_yscale("log")
        ax.set(title=f"{suite} · {workload}", xlabel="training time (s, evaluation excluded)", ylabel=metric)
        ax.legend(fontsize="x-small", title=None, loc="best")
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def throughput_vs_batch(frame: pd.DataFrame) -> Figure | None:
    """Throughput against batch size on log axes, one line per workload · loader, style by device."""
    ok = frame[(frame["status"] == "ok") & frame["throughput_samples_per_s"].notna()]
    ok = ok[ok["num_workers"] == 0] if "num_workers" in ok else ok
    if ok.empty or ok["resolved_batch_size"].nunique() < 2:
        return None
    ok = ok.assign(line=ok["workload"] + " · " + ok["loader"])
    if ok["run"].nunique() > 1:  # runs are lines of their own, never pooled into one median
        ok = ok.assign(line=ok["line"] + " · " + ok["run"].astype(str))
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    sns.lineplot(
        data=ok,
        x="resolved_batch_size",
        y="throughput_samples_per_s",
        hue="line",
        style="device",
        estimator="median",
        errorbar=SPREAD,
        markers=True,
        dashes=False,
        ax=ax,
    )
    if {"flops_per_sample", "peak_gflops"} <= set(ok.columns):  # the roofline: throughput at the device's peak
        peaks = ok[ok["precision"].fillna("fp32") == "fp32"] if "precision" in ok else ok
        limits = (peaks["peak_gflops"] * 1e9 / peaks["flops_per_sample"]).groupby(
            peaks["line"] + " · " + peaks["device"]
        )
        for label, limit in limits.median().dropna().items():
            ax.axhline(limit, color="black", linestyle="--", linewidth=0.9)
            ax.annotate(f"roofline {label}: {limit:,.0f}/s", (0.01, limit), xycoords=("axes fraction", "data"),
                        va="bottom", fontsize="x-small")  # fmt: skip
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size (samples, log)",
        ylabel="throughput (samples/s, log)",
        title="Throughput against batch size (num_workers=0; median, band = min–max over seeds; dashed: the roofline)",
    )
    ax.legend(fontsize="small", title=None)
    fig.tight_layout()
    return fig


def loader_heatmaps(summary: pd.DataFrame) -> Figure | None:
    """num_workers × pin_memory → median throughput, one heatmap per loader kind and device
    (at the loader suite's most common batch size); skipped cells say so."""
    rows = in_suite(summary, "loaders")
    if rows.empty:
        return None
    batch = rows["batch_size"].astype(str).mode().iloc[0]
    rows = rows[rows["batch_size"].astype(str) == batch]
    groups = [(k, g) for k, g in rows.groupby(["loader", "device"]) if k[0] in LOADER_ORDER]
    groups.sort(key=lambda kg: (LOADER_ORDER.index(kg[0][0]), kg[0][1]))
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 3.4), squeeze=False)
    vmax = rows["throughput_samples_per_s"].max()
    for ax, ((loader, device), g) in zip(axes[0], groups, strict=True):
        value = g.pivot_table(
            index="num_workers",
            columns="pin_memory",
            values="throughput_samples_per_s",
            aggfunc="first",
            dropna=False,
        )
        status = g.pivot_table(index="num_workers", columns="pin_memory", values="status", aggfunc="first")
        status = status.reindex(index=value.index, columns=value.columns)
        annot = value.map(lambda v: "" if pd.isna(v) else f"{v:,.0f}").where(value.notna(), status.fillna("—"))
        sns.heatmap(
            value.astype(float),
            annot=annot,
            fmt="",
            cmap="viridis",
            vmin=0,
            vmax=vmax,
            cbar=False,
            ax=ax,
            linewidths=0.5,
            annot_kws={"fontsize": "small"},
        )
        ax.set(title=f"{loader} · {device}", xlabel="pin_memory", ylabel="num_workers")
    fig.suptitle(f"Throughput (samples/s) by DataLoader settings, batch size {batch}", y=1.02)
    fig.tight_layout()
    return fig


def regularization(frame: pd.DataFrame) -> Figure | None:
    """Final test accuracy and the train − test gap per regularization (median, min–max)."""
    rows = in_suite(frame, "regularization")
    rows = rows[(rows["status"] == "ok") & rows["final_test_accuracy"].notna()]
    if rows.empty:
        return None
    order = [r for r in REGULARIZATION_ORDER if r in set(rows["regularization"])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in (
        (axes[0], "final_test_accuracy", "final test accuracy"),
        (axes[1], "generalization_gap", "train − test accuracy gap"),
    ):
        sns.pointplot(
            data=rows,
            x="regularization",
            y=metric,
            order=order,
            estimator="median",
            errorbar=SPREAD,
            linestyle="none",
            capsize=0.2,
            ax=ax,
            color="C0",
        )
        sns.stripplot(data=rows, x="regularization", y=metric, order=order, ax=ax, color="C1", size=4, alpha=0.6)
        ax.set(xlabel=None, ylabel=label)
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    axes[1].axhline(0, color="black", linewidth=0.8)
    fig.suptitle("Regularization: accuracy and generalization (point = median, bar = min–max, dots = seeds)")
    fig.tight_layout()
    return fig


def time_to_target(frame: pd.DataFrame) -> Figure | None:
    """Time to target per optimizer, each seed a dot, the median a bar; optimizers that never reached
    the target are named on the chart."""
    rows = pd.concat([in_suite(frame, "optimizers"), frame[lower_is_better(frame) & frame["optimizer"].isin(RACE)]])
    rows = rows[(rows["status"] == "ok")].drop_duplicates(subset=["run", "case_id", "seed"])
    if rows.empty:
        return None
    workloads = sorted(rows["workload"].unique())
    fig, axes = plt.subplots(1, len(workloads), figsize=(6 * len(workloads), 4), squeeze=False)
    for ax, workload in zip(axes[0], workloads, strict=True):
        w = rows[rows["workload"] == workload]
        order = [o for o in OPTIMIZER_ORDER if o in set(w["optimizer"])]
        reached = w[w["time_to_target_s"].notna()]
        if not reached.empty:
            sns.barplot(
                data=reached,
                x="optimizer",
                y="time_to_target_s",
                order=order,
                estimator="median",
                errorbar=SPREAD,
                palette=PALETTE,
                hue="optimizer",
                legend=False,
                ax=ax,
                alpha=0.6,
            )
            sns.stripplot(data=reached, x="optimizer", y="time_to_target_s", order=order, color="black", size=4, ax=ax)
        never = [o for o in order if o not in set(reached["optimizer"])]
        for o in never:
            ax.annotate(
                "not\nreached",
                (order.index(o), 0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize="small",
                color="gray",
            )
        ax.set_xticks(range(len(order)), order, rotation=20)
        target = w["target_value"].dropna()
        title = f"{workload}: time to target" + (f" {target.iloc[0]:g}" if len(target) else "")
        ax.set(title=title, xlabel=None, ylabel="training time to target (s)")
    fig.tight_layout()
    return fig


def phase_split(frame: pd.DataFrame) -> Figure | None:
    """Share of step time per phase (data wait, copy, forward, backward, optimizer), per case."""
    phases = [p for p in PHASE_ORDER if f"phase_{p}" in frame]
    cols = [f"phase_{p}" for p in phases]
    if "phase_forward" not in frame:
        return None
    rows = frame[(frame["status"] == "ok")].dropna(subset=["phase_forward"])
    if rows.empty:
        return None
    shares = rows.groupby("case_id", sort=False)[cols].median().fillna(0.0)  # no all-reduce on one process
    shares.columns = phases
    shares.index = [f"{label}" for label in varying_label(pd.Series(shares.index))]
    shares = shares[~shares.index.duplicated()]
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(shares) + 1.5))
    shares.iloc[::-1].plot.barh(stacked=True, ax=ax, width=0.8, color=sns.color_palette("Set2", len(phases)))
    ax.set(
        xlim=(0, 1),
        xlabel="share of training-step time (median over seeds)",
        ylabel=None,
        title="Where a training step's time goes",
    )
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(ncols=len(phases), loc="lower center", bbox_to_anchor=(0.5, 1.06), fontsize="small", frameon=False)
    ax.tick_params(axis="y", labelsize="x-small")
    fig.tight_layout()
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)


def gradients(frame: pd.DataFrame) -> Figure | None:
    """The first layer's gradient norm over the last hidden layer's, per activation and optimizer, each
    seed a dot: below 1 the gradient shrinks on its way to the input (log scale; 1 is marked)."""
    if "grad_norm_ratio" not in frame:
        return None
    rows = frame[(frame["status"] == "ok") & frame["grad_norm_ratio"].notna()]
    if rows.empty:
        return None
    workloads = sorted(rows["workload"].unique())
    fig, axes = plt.subplots(1, len(workloads), figsize=(5.5 * len(workloads), 3.8), squeeze=False)
    for ax, workload in zip(axes[0], workloads, strict=True):
        w = rows[rows["workload"] == workload]
        order = [o for o in OPTIMIZER_ORDER if o in set(w["optimizer"])]
        sns.stripplot(data=w, x="activation", y="grad_norm_ratio", hue="optimizer", hue_order=order,
                      palette=PALETTE, dodge=True, size=6, ax=ax)  # fmt: skip
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
        ax.set(yscale="log", title=f"{workload}: gradient, first / last hidden layer", xlabel="activation",
               ylabel="gradient norm ratio")  # fmt: skip
    fig.tight_layout()
    return fig
