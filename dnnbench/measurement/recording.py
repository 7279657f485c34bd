"""Recording: a finished Training → its Record (the figures, the target, the curves, the context)."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from dnnbench.core.noise import loss_noise
from dnnbench.core.record import Calibration, Record, Target
from dnnbench.definitions.cases import Case
from dnnbench.measurement import env as envmod
from dnnbench.measurement.clocks import PHASES, StepStats
from dnnbench.measurement.flops import peak_gflops, training_flops
from dnnbench.measurement.inspect import weight_figures
from dnnbench.measurement.training import Progress, Training

MAX_CURVE_POINTS = 1000


def downsample(values: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> dict[str, Any]:
    """Loss curve for the record: every step when short, else means of equal buckets of steps."""
    n = len(values)
    if n <= max_points:
        return {"step": list(range(1, n + 1)), "loss": [float(v) for v in values], "bucket": 1}
    bucket = math.ceil(n / max_points)
    usable = (n // bucket) * bucket
    means = values[:usable].reshape(-1, bucket).mean(axis=1)
    return {
        "step": [int((i + 1) * bucket) for i in range(len(means))],
        "loss": [float(v) for v in means],
        "bucket": bucket,
    }


def _with_carved(rows: np.ndarray, carved: list[dict[str, tuple[str, float]]]) -> tuple[np.ndarray, list[str]]:
    """Phase rows with the hooks' carved phases moved out of the phases they happened in."""
    phases = list(PHASES)
    extra = sorted({name for step in carved for name in step})
    if not extra:
        return rows, phases
    out = np.concatenate([rows, np.zeros((len(rows), len(extra)))], axis=1)
    for i, step in enumerate(carved[: len(rows)]):
        for name, (parent, seconds) in step.items():
            taken = min(seconds, out[i, phases.index(parent)])
            out[i, phases.index(parent)] -= taken
            out[i, len(phases) + extra.index(name)] = taken
    return out, phases + extra


def wall_throughput(p: Progress, warm: int, samples: float) -> float | None:
    """The steady steps' samples over the wall time from the first steady step's start to the last
    step's end, less the evaluations in between: everything between steps counts (reading back the
    clocks and losses, a driver's per-round work, the collector), which the per-step intervals of
    throughput_samples_per_s leave out. The harness compares this with the bare loop's wall clock. (On
    CUDA the last step's queued kernels may still run at its end: a few steps of a long window.)"""
    start = p.wall_steady if warm else p.wall_first
    if start is None or p.wall_last is None:
        return None
    wall = (p.wall_last[0] - start[0]) - (p.wall_last[1] - start[1])
    return float(samples / wall) if wall > 0 else None


def timing_metrics(training: Training) -> tuple[dict[str, Any], dict[str, float] | None]:
    """Throughput and step-time percentiles over the steady-state steps, and the phase split."""
    p, plan = training.progress, training.plan
    rows, phases = _with_carved(p.step_rows(), p.carved)
    metrics: dict[str, Any] = {
        "steps": p.steps,
        "samples": p.samples,
        "epochs_completed": p.samples / plan.n_train,
        "train_time_s": float(rows.sum()),
    }
    if len(rows) == 0:
        return metrics, None
    warm = plan.warmup_steps if len(rows) > plan.warmup_steps else 0
    steady = rows[warm:]
    stats = StepStats(steady.sum(axis=1), np.array(p.batch_sizes[warm : len(rows)]))
    metrics["throughput_samples_per_s"] = stats.throughput
    metrics["wall_throughput_samples_per_s"] = wall_throughput(p, warm, float(stats.samples.sum()))
    metrics["step_time_ms_median"] = stats.percentile_ms(50)
    metrics["step_time_ms_p10"] = stats.percentile_ms(10)
    metrics["step_time_ms_p90"] = stats.percentile_ms(90)
    totals = steady.sum(axis=0)
    if totals.sum() <= 0:
        return metrics, None
    fractions = {phase: float(t / totals.sum()) for phase, t in zip(phases, totals, strict=True)}
    metrics["data_wait_fraction"] = fractions["data_wait"]
    metrics["allreduce_fraction"] = fractions.get("allreduce")
    return metrics, fractions


def final_metrics(training: Training) -> dict[str, Any]:
    """Test and train figures at the end, and the best validation figures on the way."""
    started = time.perf_counter()
    test_metric, test_loss = training.evaluate("test")
    train_metric, train_loss = training.evaluate("train")
    training.validation.eval_time += time.perf_counter() - started
    task = training.workload.task
    metrics: dict[str, Any] = {"final_test_loss": test_loss, "final_train_loss": train_loss}
    if not task.metric_is_loss:  # a metric of its own (accuracy); MSE is kept once, as the loss
        metrics[f"final_test_{task.metric}"] = test_metric
        metrics[f"final_train_{task.metric}"] = train_metric
    metrics["generalization_gap"] = task.gap(train_metric, test_metric)
    curve = training.validation.curve
    norms = [v for v in curve if "grad_norm_first_layer" in v]
    if norms:  # medians over the evaluations: one figure per case, robust to a single odd batch
        first = [v["grad_norm_first_layer"] for v in norms]
        last = [v["grad_norm_last_hidden"] for v in norms]
        metrics["grad_norm_first_layer"] = float(np.median(first))
        metrics["grad_norm_last_hidden"] = float(np.median(last))
        ratios = [f / h for f, h in zip(first, last, strict=True) if h > 0]
        if ratios:
            metrics["grad_norm_ratio"] = float(np.median(ratios))
    drifts = [v["hidden_drift"] for v in curve if "hidden_drift" in v]
    if drifts:
        metrics["hidden_drift"] = float(np.median(drifts))
    metrics.update(weight_figures(training.setup.weights))
    if curve and training.case.protocol == "benchmark":  # the note's protocol has no validation split
        metrics["best_val_loss"] = min(v["val_loss"] for v in curve)
        if not task.metric_is_loss:
            metrics[f"best_val_{task.metric}"] = functools.reduce(task.better, (v["val_metric"] for v in curve))
    return metrics


def target_of(training: Training, status: str) -> Target:
    w, plan, hit = training.workload, training.plan, training.validation.target_hit
    on = {"test_accuracy": " (on the test set, as the note evaluates)", "train_mse": " (on the training data)"}
    where = on.get(plan.target_metric, "")
    if w.target is None:
        text = "no target (the workload has none)"
    elif hit:
        text = "reached" + where
    elif status == "ok":
        text = f"not reached within the budget ({plan.epochs} epochs, {plan.max_seconds:g} s)" + where
    else:
        text = f"not reached ({status})"
    return Target(plan.target_metric, w.target, hit is not None, text, plan.eval_every)


def collect_metrics(training: Training, status: str, started: float) -> tuple[dict[str, Any], dict[str, float] | None]:
    """Every metric of a finished (or stopped) training, with the final evaluations when it ended ok;
    the wall time counts from `started` to the end of those evaluations."""
    metrics, phase_fractions = timing_metrics(training)
    metrics.update(training.validation.target_hit or {})
    noise = loss_noise(training.progress.loss_values)
    if noise is not None:
        metrics["loss_noise"] = noise
    metrics.update(training.dropout.figures)
    if status == "ok":
        metrics.update(final_metrics(training))
    setup = training.setup
    metrics["peak_memory_bytes"] = training.memory.peak_bytes(setup.model, setup.optimizer)
    metrics["process_peak_rss_bytes"] = training.memory.process_peak_bytes()
    metrics["eval_time_s"] = training.validation.eval_time
    metrics["wall_time_s"] = time.perf_counter() - started
    metrics.update(roofline_metrics(training, metrics.get("throughput_samples_per_s")))
    return metrics, phase_fractions


def roofline_metrics(training: Training, throughput: float | None) -> dict[str, Any]:
    """FLOPs per sample (counted on up to 64 samples: an MLP's matmul FLOPs grow linearly with the batch),
    the device's in-run peak in the case's dtype (one rank's, on its threads), and how much of it the
    training achieved (per rank: all ranks' FLOP rate over world size x one rank's peak); and, for a
    compiled model, the compile time (the first step's excess over a steady step)."""
    setup, case = training.setup, training.case
    sample = setup.eval_sets["train"].head(min(64, training.plan.rank_batch_size or training.plan.batch_size))
    out: dict[str, Any] = {}
    try:
        flops = training_flops(setup.eval_model, sample.x, sample.y, setup.loss_fn, setup.autocast)
    except Exception as exc:  # a model FlopCounterMode cannot trace: no roofline for this case, the rest stands
        first = (str(exc).strip().splitlines() or [""])[0]
        training.notes["flops_error"] = f"FLOPs not counted: {type(exc).__name__}: {first}"[:300]
        return out
    out["flops_per_sample"] = flops / len(sample)
    dtype = "bf16" if case.precision == "bf16" else "fp32"
    out["peak_gflops"] = peak_gflops(case.device, dtype, torch.get_num_threads(), case.precision == "tf32")
    if throughput:  # the throughput of all ranks together, each rank with its own share of the cores
        out["achieved_gflops"] = out["flops_per_sample"] * throughput / 1e9
        out["roofline_fraction"] = out["achieved_gflops"] / (out["peak_gflops"] * training.world)
    rows = training.progress.step_rows()
    if case.compile != "off" and len(rows) > 1:
        out["compile_time_s"] = max(0.0, float(rows[0].sum() - np.median(rows[1:].sum(axis=1))))
    return out


def unmeasured(
    case: Case,
    seed: int,
    reason: str,
    status: str = "skipped",
    suites: Sequence[str] = (),
    suite: str | None = None,
) -> Record:
    """The record of a case that produced no measurement: skipped here (status skipped), or failed
    before training (error, oom), so that reports show it rather than drop it. `suite` (default: the
    first of `suites`) is the suite that ran it."""
    return Record(
        case_id=case.id,
        seed=seed,
        case=case.to_dict(),
        status=status,
        reason=reason,
        env=envmod.capture(case.device),
        suite=suite or (suites[0] if suites else None),
        suites=tuple(suites),
    )


def record_of(
    training: Training,
    status: str,
    reason: str,
    measured: tuple[dict[str, Any], dict[str, float] | None],
    calibration: Calibration | None,
    suites: tuple[str, ...],
    suite: str | None,
    extra_resolved: dict[str, Any] | None = None,
) -> Record:
    """The record of a training from its collected metrics and phase split; `extra_resolved` adds to
    the resolved plan (a data-parallel run's backend and per-rank figures)."""
    metrics, phase_fractions = measured
    case = training.case
    return Record(
        case_id=case.id,
        seed=training.seed,
        case=case.to_dict(),
        status=status,
        reason=reason,
        env=envmod.capture(case.device),
        metrics=metrics,
        phase_fractions=phase_fractions,
        resolved={
            **asdict(training.plan),
            "hidden": list(training.plan.hidden),
            "device": case.device,
            **training.notes,  # what could not be measured, and why (flops_error)
            **(extra_resolved or {}),
        },
        target=target_of(training, status),
        curves={"loss": downsample(np.array(training.progress.loss_values)), "val": training.validation.curve},
        memory_kind=training.memory.kind,
        calibration=calibration,
        protocol=case.protocol,
        suite=suite,
        suites=suites,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
