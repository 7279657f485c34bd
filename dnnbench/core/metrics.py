"""The metric registry: every figure a record can carry, described once.

Tables, chart labels, progress lines, the gate and docs/metrics.md all read this list, so adding a
metric is one entry here plus the code that measures it. Nothing here imports torch or pandas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# How a value is written: one formatter per kind, shared by every view.
_FORMATS = {
    "rate": lambda v: f"{v:,.0f}",
    "accuracy": lambda v: f"{v:.4f}",
    "signed": lambda v: f"{v:+.4f}",
    "fraction": lambda v: f"{v:.0%}",
    "bytes": lambda v: f"{v / 2**20:,.0f} MiB",
    "seconds": lambda v: f"{v:.3g} s",
    "ms": lambda v: f"{v:.3g} ms",
    "count": lambda v: f"{v:,.0f}",
    "number": lambda v: f"{v:.4g}",
}


# How the gate judges a metric (results/gate): the tolerance's unit and whether the machine's speed
# is taken into account.
@dataclass(frozen=True)
class GateKind:
    """How the gate judges a kind of metric: the unit of its tolerance, and whether it is a speed (then
    adjusted for the machine's speed, and given no verdict across different machines)."""

    name: str
    meaning: str
    in_points: bool = False  # an absolute change in accuracy points, not a factor
    speed: bool = False


GATE_KINDS = {
    kind.name: kind
    for kind in (
        GateKind("speed", "relative, per case and over all cases; a slowdown factor − 1", speed=True),
        GateKind("points", "absolute, in points (0.01 of accuracy = 1 point)", in_points=True),
        GateKind("relative", "relative growth"),
    )
}


@dataclass(frozen=True)
class Metric:
    """One figure of a record and everything a view needs to show or judge it."""

    name: str
    label: str  # for table headers and chart axes, with the unit
    unit: str
    direction: int  # +1 higher is better, -1 lower is better, 0 neither
    kind: str  # key of _FORMATS
    meaning: str  # one sentence for docs/metrics.md
    summary: bool = True  # summarised over seeds (median and spread) for the report's tables
    overview: bool = True  # a column of the report's every-case table and its baseline comparison
    gate: str | None = None  # key of GATE_KINDS, or None when the gate does not judge it
    tolerance: float | None = None  # the gate's default tolerance, in the unit GATE_KINDS states
    per_seed: bool = False  # depends on the seed: compared on the seeds both sides share
    # A "to the target" figure: a finished seed without one missed the target, and counts as not reached
    # (+inf) in medians and ranks rather than vanishing from them (results/analysis.py).
    censored: bool = False

    def __post_init__(self) -> None:
        if self.gate is not None and self.gate not in GATE_KINDS:
            raise ValueError(
                f"metric {self.name}: unknown gate kind {self.gate!r}; choose from: {', '.join(GATE_KINDS)}"
            )

    @property
    def in_points(self) -> bool:
        """Judged (and its changes written) in accuracy points."""
        return self.gate is not None and GATE_KINDS[self.gate].in_points

    @property
    def speed(self) -> bool:
        """A speed the gate adjusts for the machine and does not judge across machines."""
        return self.gate is not None and GATE_KINDS[self.gate].speed

    def format(self, value: float | None) -> str:
        """The value as every view writes it; '—' for a missing one."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        if self.censored and math.isinf(value):
            return "not reached"
        return _FORMATS[self.kind](value)

    def format_change(self, change: float | None) -> str:
        """A change as the gate reports it: points for a points metric, % otherwise."""
        if change is None or (isinstance(change, float) and math.isnan(change)):
            return "—"
        return f"{change:+.2f} pt" if self.in_points else f"{change:+.1f}%"


_ALL = [
    Metric(
        "throughput_samples_per_s",
        "throughput (samples/s)",
        "samples/s",
        +1,
        "rate",
        "training samples per second over the steady-state steps (warm-up left out, evaluation excluded)",
        gate="speed",
        tolerance=1.0,
    ),
    Metric(
        "wall_throughput_samples_per_s",
        "wall-clock throughput (samples/s)",
        "samples/s",
        +1,
        "rate",
        "training samples per second of wall time from the first steady step to the last, evaluation time "
        "subtracted: the bookkeeping between steps counts (the harness compares it with a bare loop)",
        summary=False,
    ),
    Metric("step_time_ms_median", "step time, median (ms)", "ms", -1, "number", "median time of a whole training step"),
    Metric(
        "step_time_ms_p10", "step time, p10 (ms)", "ms", -1, "number", "10th percentile of step time", summary=False
    ),
    Metric(
        "step_time_ms_p90", "step time, p90 (ms)", "ms", -1, "number", "90th percentile of step time", overview=False
    ),
    Metric(
        "time_to_target_s",
        "time to target (s)",
        "s",
        -1,
        "seconds",
        "training time (evaluation excluded) until the target metric first reaches the workload's target; "
        "null when not reached within the budget",
        gate="speed",
        tolerance=1.0,
        per_seed=True,
        censored=True,
    ),
    Metric(
        "steps_to_target",
        "steps to target",
        "steps",
        -1,
        "count",
        "training steps until the target was reached",
        summary=False,
        censored=True,
    ),
    Metric(
        "epochs_to_target",
        "epochs to target",
        "epochs",
        -1,
        "number",
        "epochs until the target was reached",
        overview=False,
        censored=True,
    ),
    Metric(
        "final_test_accuracy",
        "final test accuracy",
        "",
        +1,
        "accuracy",
        "accuracy on the test set, touched only at the end",
        gate="points",
        tolerance=2.0,
        per_seed=True,
    ),
    Metric("final_test_loss", "final test loss", "", -1, "number", "mean loss on the test set at the end"),
    Metric(
        "final_train_loss",
        "final train loss",
        "",
        -1,
        "number",
        "mean loss on (a slice of) the training set",
        overview=False,
    ),
    Metric(
        "final_train_accuracy",
        "final train accuracy",
        "",
        +1,
        "accuracy",
        "accuracy on (a slice of) the training set at the end",
        summary=False,
    ),
    Metric(
        "best_val_accuracy",
        "best validation accuracy",
        "",
        +1,
        "accuracy",
        "best accuracy on the validation split at any evaluation",
        overview=False,
    ),
    Metric(
        "best_val_loss",
        "best validation loss",
        "",
        -1,
        "number",
        "lowest validation loss at any evaluation",
        summary=False,
    ),
    Metric(
        "generalization_gap",
        "train − test gap",
        "",
        -1,
        "signed",
        "train − test accuracy (test − train loss for regression)",
    ),
    Metric(
        "grad_norm_first_layer",
        "gradient norm, first layer",
        "",
        0,
        "number",
        "L2 norm of the first layer's weight gradient, median over the evaluations (read between steps, untimed)",
        summary=False,
        overview=False,
    ),
    Metric(
        "grad_norm_last_hidden",
        "gradient norm, last hidden layer",
        "",
        0,
        "number",
        "L2 norm of the weight gradient into the last hidden layer (the one before the output layer), median "
        "over the evaluations; only for nets with two hidden layers or more",
        summary=False,
        overview=False,
    ),
    Metric(
        "grad_norm_ratio",
        "gradient ratio first / last hidden",
        "",
        0,
        "number",
        "first layer's gradient norm over the last hidden layer's, median over the evaluations: well below 1, the "
        "gradient vanishes on its way to the input",
        overview=False,
    ),
    Metric(
        "flops_per_sample",
        "FLOPs per sample",
        "FLOP",
        0,
        "count",
        "matmul FLOPs of one training step (forward and backward) per sample, counted by torch.utils.flop_counter "
        "on the case's model",
        summary=False,
    ),
    Metric(
        "peak_gflops",
        "device peak (GFLOP/s)",
        "GFLOP/s",
        0,
        "rate",
        "the device's peak measured in-run: the best of a few 2048³ matmuls in the case's dtype and threads",
        summary=False,
    ),
    Metric(
        "achieved_gflops",
        "achieved GFLOP/s",
        "GFLOP/s",
        +1,
        "number",
        "flops_per_sample × throughput",
        overview=False,
    ),
    Metric(
        "roofline_fraction",
        "share of peak",
        "",
        +1,
        "fraction",
        "achieved_gflops / peak_gflops: how close the training runs to the device's matmul limit",
    ),
    Metric(
        "compile_time_s",
        "compile time (s)",
        "s",
        -1,
        "seconds",
        "torch.compile's share of the first step (its time less a steady step's); outside throughput, inside time "
        "to target",
        overview=False,
    ),
    Metric(
        "peak_memory_bytes",
        "peak memory (GPU) / tensor footprint (CPU)",
        "bytes",
        -1,
        "bytes",
        "on GPU, CUDA's max allocated; on CPU, the case's tensor footprint at its peak (parameters, gradients, "
        "optimizer state, a batch, the activations saved for backward)",
        gate="relative",
        tolerance=0.10,
    ),
    Metric(
        "process_peak_rss_bytes",
        "process peak RSS",
        "bytes",
        -1,
        "bytes",
        "the whole process's peak resident set during the case (CPU), for information",
        summary=False,
    ),
    Metric(
        "loss_noise",
        "loss noise",
        "",
        0,
        "number",
        "spread of the training loss around its own trend: the median absolute difference between log loss and its "
        "running mean over a tenth of the steps (progress is trend, not noise); none under 10 steps",
        overview=False,
    ),
    Metric(
        "weight_norm",
        "weight norm",
        "",
        0,
        "number",
        "L2 norm of all weight matrices together at the end of training (L2 / weight decay makes it smaller)",
        overview=False,
    ),
    Metric(
        "weight_sparsity",
        "weight sparsity",
        "",
        0,
        "fraction",
        "share of weight-matrix entries below 1e-3 in magnitude at the end of training (L1 makes it larger)",
        overview=False,
    ),
    Metric(
        "hidden_drift",
        "hidden-layer drift",
        "",
        0,
        "number",
        "how far the first hidden layer's features move between evaluations, on 512 fixed validation samples: "
        "mean over units of the change of mean in stds plus the change of log std, median over the evaluations",
        overview=False,
    ),
    Metric(
        "dropout_zero_fraction",
        "Dropout zeroed",
        "",
        0,
        "fraction",
        "share of the first Dropout layer's non-zero inputs it zeroed on the first training step (about p)",
        summary=False,
        overview=False,
    ),
    Metric(
        "dropout_kept_scale",
        "Dropout scale",
        "",
        0,
        "number",
        "median factor the first Dropout layer multiplied its kept inputs by on the first training step (1/(1−p))",
        summary=False,
        overview=False,
    ),
    Metric(
        "allreduce_fraction",
        "all-reduce share",
        "",
        -1,
        "fraction",
        "share of step time in the gradient all-reduce of a data-parallel case (timed in DDP's communication hook)",
        overview=False,
    ),
    Metric(
        "data_wait_fraction",
        "data-wait share",
        "",
        -1,
        "fraction",
        "share of step time spent waiting for the next batch",
    ),
    Metric("train_time_s", "training time (s)", "s", 0, "seconds", "sum of all step times", summary=False),
    Metric("eval_time_s", "evaluation time (s)", "s", 0, "seconds", "time spent evaluating", summary=False),
    Metric("wall_time_s", "wall time (s)", "s", 0, "seconds", "the case's whole wall-clock time", summary=False),
    Metric("steps", "steps", "steps", 0, "count", "training steps taken", summary=False),
    Metric("samples", "samples", "samples", 0, "count", "training samples seen", summary=False),
    Metric(
        "epochs_completed", "epochs completed", "epochs", 0, "number", "samples seen / training split", summary=False
    ),
]

METRICS: dict[str, Metric] = {m.name: m for m in _ALL}


def metric(name: str) -> Metric:
    """The registry entry of `name`; an unknown name is a programming error (KeyError)."""
    return METRICS[name]


def names() -> tuple[str, ...]:
    return tuple(METRICS)


def summarised() -> list[str]:
    """Metrics the report's tables summarise over seeds."""
    return [m.name for m in METRICS.values() if m.summary]


def overview() -> list[str]:
    """Metrics of the report's every-case table."""
    return [m.name for m in METRICS.values() if m.summary and m.overview]


def gated() -> list[str]:
    """Metrics the gate judges, in registry order."""
    return [m.name for m in METRICS.values() if m.gate]


def label(name: str) -> str:
    """A metric's label, or the name itself for a column that is not a metric."""
    return METRICS[name].label if name in METRICS else name


def markdown_table() -> str:
    """docs/metrics.md's table, generated from the registry (tests keep the file in step)."""
    lines = [
        "| metric | unit | better | gate | meaning |",
        "|---|---|---|---|---|",
    ]
    better = {+1: "higher", -1: "lower", 0: "—"}
    for m in METRICS.values():
        gate = f"{m.gate} (default {m.tolerance:g})" if m.gate else "—"
        lines.append(f"| `{m.name}` | {m.unit or '—'} | {better[m.direction]} | {gate} | {m.meaning} |")
    return "\n".join(lines) + "\n"
