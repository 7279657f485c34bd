"""The study note's claims (docs/note.md), each tested against this run's records.

Every verdict is computed from the records — supported, not supported, or not measurable here with
the reason — never written in by hand. Records of the note's protocol are preferred where a run has
both (the note suite); the benchmark suites stand in where the note suite did not measure a thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeGuard, cast

import numpy as np
import pandas as pd

SUPPORTED, NOT_SUPPORTED, NOT_MEASURABLE = "supported", "not supported", "not measurable here"
ABOUT_98 = 0.975  # "about 98%": at least 97.5% test accuracy
BATCH_SPEEDUP = 2.0  # "uses matrix math well": a mini-batch trains at least 2x the samples/s of batch 1
ADAPTIVE_SPREAD = 1.5  # "about equal": the adaptive optimizers' final losses within a factor of 1.5


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    verdict: str
    figure: str  # what in this run tests it, with the numbers


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "ok"] if "status" in frame else frame


def _prefer_note(rows: pd.DataFrame) -> pd.DataFrame:
    """The note's protocol where the run has it, else the benchmark's."""
    if "protocol" in rows and (rows["protocol"] == "note").any():
        return rows[rows["protocol"] == "note"]
    return rows


def _median(rows: pd.DataFrame, metric: str) -> float | None:
    values = rows[metric].dropna() if metric in rows else pd.Series(dtype=float)
    return float(values.median()) if len(values) else None


def note_workloads(part: str) -> list[str]:
    """The workloads that are the note's experiment `part` ("dnn": its MNIST DNN, "race": its optimizer race)."""
    from dnnbench.definitions.workloads import WORKLOADS

    return [name for name, w in WORKLOADS.items() if w.note_part == part]


def _known(medians: dict[str, float | None]) -> TypeGuard[dict[str, float]]:
    """Every median was found (none is None)."""
    return None not in medians.values()


def _batch_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Batch-regime rows: one workload and loader, plain Adam, no regularization, batch 1 / m / full."""
    rows = _ok(frame)
    rows = rows[(rows["regularization"] == "none") & (rows["optimizer"] == "adam") & (rows["num_workers"] == 0)]
    rows = rows[rows["target_value"].notna()]  # workloads with something to learn (not random labels)
    rows = rows[rows["loader"] == "tensor"]
    rows = _prefer_note(rows)
    for (_workload, _protocol), group in rows.groupby(["workload", "protocol"], sort=False):
        sizes = set(group["batch_size"].astype(str))
        if {"1", "full"} <= sizes and len(sizes) >= 3:
            return group
    return rows.iloc[0:0]


def _by_batch(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    groups = {str(b): g for b, g in rows.groupby(rows["batch_size"].astype(str))}
    minis = sorted((b for b in groups if b not in ("1", "full")), key=int)
    return {"1": groups["1"], "m": groups[minis[-1]], "full": groups["full"], "m_size": minis[-1]}


def _where(rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    return f"{first['workload']}, {first['protocol']} protocol"


def claim_minibatch(frame: pd.DataFrame) -> Claim:
    text = "Mini-batch gradient descent balances the two extremes and uses matrix math well."
    rows = _batch_rows(frame)
    if rows.empty:
        return Claim(1, text, NOT_MEASURABLE, "no batch 1 / mini-batch / full-batch cases of one setting in this run")
    b = _by_batch(rows)
    tp = {k: _median(b[k], "throughput_samples_per_s") for k in ("1", "m", "full")}
    acc = {k: _median(b[k], "final_test_accuracy") for k in ("1", "m", "full")}
    speedup = tp["m"] / tp["1"] if tp["m"] and tp["1"] else None
    balances = acc["m"] is not None and all(a is None or acc["m"] >= a - 0.005 for a in (acc["1"], acc["full"]))
    holds = speedup is not None and speedup >= BATCH_SPEEDUP and balances
    acc_text = ", ".join(f"{k if k != 'm' else b['m_size']}: {v:.4f}" for k, v in acc.items() if v is not None)
    figure = (
        f"{_where(rows)}: throughput batch 1 {tp['1']:,.0f}, batch {b['m_size']} {tp['m']:,.0f}, full "
        f"{tp['full']:,.0f} samples/s ({speedup:.1f}x from 1 to {b['m_size']}); final test accuracy {acc_text}"
    )
    return Claim(1, text, SUPPORTED if holds else NOT_SUPPORTED, figure)


def claim_full_batch(frame: pd.DataFrame) -> Claim:
    text = "Batch gradient descent has the steadiest updates but costs a full pass over the data per step."
    rows = _batch_rows(frame)
    if rows.empty:
        return Claim(2, text, NOT_MEASURABLE, "no full-batch case beside smaller batches in this run")
    b = _by_batch(rows)
    rise = {k: _median(b[k], "loss_noise") for k in ("1", "m", "full")}
    step = {k: _median(b[k], "step_time_ms_median") for k in ("1", "m", "full")}
    if not _known(rise) or not _known(step):
        return Claim(2, text, NOT_MEASURABLE, "the batch cases carry no loss curve or step times")
    steadiest = rise["full"] <= min(rise["1"], rise["m"])
    costly = step["full"] >= 10 * step["m"]
    figure = (
        f"{_where(rows)}: loss noise (median step-to-step change / median loss): full {rise['full']:.3f}, batch "
        f"{b['m_size']} {rise['m']:.3f}, batch 1 {rise['1']:.3f}; step time full {step['full']:.3g} ms against "
        f"{step['m']:.3g} ms at batch {b['m_size']}"
    )
    return Claim(2, text, SUPPORTED if steadiest and costly else NOT_SUPPORTED, figure)


def claim_sgd(frame: pd.DataFrame) -> Claim:
    text = "Stochastic gradient descent (batch 1) is fast per step but noisy and needs more iterations."
    rows = _batch_rows(frame)
    if rows.empty:
        return Claim(3, text, NOT_MEASURABLE, "no batch-1 case beside a mini-batch one in this run")
    b = _by_batch(rows)
    step = {k: _median(b[k], "step_time_ms_median") for k in ("1", "m")}
    rise = {k: _median(b[k], "loss_noise") for k in ("1", "m")}
    steps = {k: _median(b[k], "steps_to_target") for k in ("1", "m")}
    if not _known(step) or not _known(rise):
        return Claim(3, text, NOT_MEASURABLE, "the batch cases carry no loss curve or step times")
    fast, noisy = step["1"] < step["m"], rise["1"] > rise["m"]
    if steps["m"] is None:
        more, iterations = None, "the mini-batch case did not reach the target either"
    elif steps["1"] is None:
        more, iterations = True, f"batch 1 did not reach the target, batch {b['m_size']} in {steps['m']:.0f} steps"
    else:
        more = steps["1"] > steps["m"]
        iterations = f"steps to target batch 1 {steps['1']:.0f}, batch {b['m_size']} {steps['m']:.0f}"
    figure = (
        f"{_where(rows)}: step time batch 1 {step['1']:.3g} ms, batch {b['m_size']} {step['m']:.3g} ms; "
        f"loss noise {rise['1']:.3f} at batch 1 and {rise['m']:.3f} at batch {b['m_size']}; {iterations}"
    )
    verdict = SUPPORTED if fast and noisy and more is not False else NOT_SUPPORTED
    return Claim(3, text, verdict, figure)


def claim_optimizers(frame: pd.DataFrame) -> Claim:
    text = (
        "Adaptive methods (AdaGrad, RMSProp, Adam) are robust and about equal; Adam is often the best; "
        "plain SGD converges more slowly."
    )
    rows = _prefer_note(_ok(frame)[_ok(frame)["workload"].isin(note_workloads("race"))])
    race = ("sgd", "adagrad", "rmsprop", "adam")
    losses = {o: _median(rows[rows["optimizer"] == o], "final_test_loss") for o in race}
    if not _known(losses):
        return Claim(
            4, text, NOT_MEASURABLE, "the optimizer race (cubic: SGD, AdaGrad, RMSprop, Adam) is not in this run"
        )
    adaptive = [losses[o] for o in ("adagrad", "rmsprop", "adam")]
    per_seed = rows[rows["optimizer"].isin(race)].pivot_table(
        index="seed", columns="optimizer", values="final_test_loss"
    )
    adam_best = float((per_seed.idxmin(axis=1) == "adam").mean()) if len(per_seed) else 0.0
    equal = max(adaptive) / min(adaptive) <= ADAPTIVE_SPREAD
    sgd_slower = losses["sgd"] > float(np.median(adaptive))
    parts = [
        f"adaptive methods {'within' if equal else 'not within'} {ADAPTIVE_SPREAD}x of each other",
        f"Adam best in {adam_best:.0%} of seeds",
        f"SGD {'above' if sgd_slower else 'not above'} the adaptive median",
    ]
    figure = (
        f"the race ({rows.iloc[0]['protocol']} protocol), final MSE: "
        + ", ".join(f"{o} {v:.4f}" for o, v in losses.items())
        + "; "
        + "; ".join(parts)
    )
    holds = equal and adam_best >= 0.5 and sgd_slower
    return Claim(4, text, SUPPORTED if holds else NOT_SUPPORTED, figure)


def _matched(frame: pd.DataFrame, column: str, values: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference rows, variant rows) that differ only in `column`: the reference is 'none'/0/False."""
    rows = _prefer_note(_ok(frame))
    rows = rows[rows["target_value"].notna()]  # workloads with something to learn (not random labels)
    fixed = ["workload", "protocol", "batch_size", "optimizer", "loader", "epochs", "train_samples"]
    fixed = [c for c in fixed if c != column and c in rows]
    out_ref, out_var = [], []
    for _, group in rows.groupby(fixed, dropna=False, sort=False):
        ref = group[group[column] == values[0]]
        var = group[group[column].isin(values[1:])]
        if len(ref) and len(var):
            out_ref.append(ref)
            out_var.append(var)
    if not out_ref:
        return rows.iloc[0:0], rows.iloc[0:0]
    return out_ref[0], out_var[0]


def claim_regularization(frame: pd.DataFrame) -> Claim:
    text = "Regularization (L1, L2, Dropout) makes nets generalize better: a smaller train − test gap."
    ref, var = _matched(frame, "regularization", ("none", "l1", "l2", "dropout"))
    if ref.empty:
        return Claim(5, text, NOT_MEASURABLE, "no L1, L2 or Dropout case beside the same case without it")
    base = cast(float, _median(ref, "generalization_gap"))  # every finished record has a gap (recording.py)
    gaps = {r: _median(g, "generalization_gap") for r, g in var.groupby("regularization")}
    narrower = [r for r, gap in gaps.items() if gap is not None and gap < base]
    figure = f"{_where(ref)}: train − test gap without {base:+.4f}; " + ", ".join(
        f"{r} {gap:+.4f}" for r, gap in gaps.items() if gap is not None
    )
    verdict = SUPPORTED if len(narrower) == len(gaps) else NOT_SUPPORTED
    if verdict == NOT_SUPPORTED:
        figure += f" (narrower with: {', '.join(narrower) or 'none of them'})"
    return Claim(5, text, verdict, figure)


def _first_eval(val: pd.DataFrame, rows: pd.DataFrame) -> float | None:
    if val.empty:
        return None
    points = val[val["case_id"].isin(rows["case_id"]) & val["seed"].isin(rows["seed"])]
    if points.empty:
        return None
    first = points.sort_values("samples").groupby(["case_id", "seed"]).first()["val_metric"]
    return float(first.median())


def claim_batchnorm(frame: pd.DataFrame, val: pd.DataFrame) -> Claim:
    text = "BatchNorm speeds convergence and stabilizes training."
    ref, var = _matched(frame, "regularization", ("none", "batchnorm"))
    if ref.empty:
        return Claim(6, text, NOT_MEASURABLE, "no BatchNorm case beside the same case without it")
    first_ref, first_bn = _first_eval(val, ref), _first_eval(val, var)
    epochs_ref, epochs_bn = _median(ref, "epochs_to_target"), _median(var, "epochs_to_target")
    if first_ref is None or first_bn is None:
        return Claim(6, text, NOT_MEASURABLE, "the cases carry no evaluation curve")
    sooner = epochs_bn is not None and (epochs_ref is None or epochs_bn <= epochs_ref)
    higher = first_bn > first_ref
    metric = ref.iloc[0].get("target_metric") or "evaluation metric"
    targets = (
        f"epochs to target {epochs_bn:.2f} with, {'not reached' if epochs_ref is None else f'{epochs_ref:.2f}'} without"
        if epochs_bn is not None
        else "the BatchNorm case did not reach the target"
    )
    figure = (
        f"{_where(ref)}: {metric} at the first evaluation {first_bn:.4f} with BatchNorm, {first_ref:.4f} without; "
        + targets
    )
    return Claim(6, text, SUPPORTED if higher and (sooner or epochs_ref is None) else NOT_SUPPORTED, figure)


def claim_pinned(frame: pd.DataFrame) -> Claim:
    text = "Pinned memory makes host-to-GPU copies much faster."
    rows = _ok(frame)
    cuda = rows[(rows["device"] == "cuda") & (rows["loader"] != "device")] if "device" in rows else rows.iloc[0:0]
    if cuda.empty or not cuda["pin_memory"].any() or cuda["pin_memory"].all():
        why = (
            "no CUDA device here: pin_memory only affects host-to-GPU copies"
            if cuda.empty
            else "no pinned/unpinned pair"
        )
        return Claim(7, text, NOT_MEASURABLE, why)
    cuda = cuda.assign(copy_ms=cuda["phase_copy"] * cuda["step_time_ms_median"])
    # Both sides hold finished CUDA cases, which all have a copy phase and step times.
    pinned = cast(float, _median(cuda[cuda["pin_memory"]], "copy_ms"))
    plain = cast(float, _median(cuda[~cuda["pin_memory"]], "copy_ms"))
    figure = f"copy phase per step on CUDA: {pinned:.3g} ms pinned, {plain:.3g} ms not pinned"
    return Claim(7, text, SUPPORTED if pinned < plain else NOT_SUPPORTED, figure)


def claim_workers(frame: pd.DataFrame) -> Claim:
    text = "Loading in worker processes (num_workers > 0) speeds data loading."
    rows = _ok(frame)
    rows = rows[(rows["loader"] == "torchvision") & (~rows["pin_memory"].astype(bool))]
    with_workers, without = rows[rows["num_workers"] > 0], rows[rows["num_workers"] == 0]
    if with_workers.empty or without.empty:
        return Claim(8, text, NOT_MEASURABLE, "no torchvision-loader case with and without workers in this run")
    batch = with_workers["batch_size"].astype(str).mode().iloc[0]
    with_workers = with_workers[with_workers["batch_size"].astype(str) == batch]
    without = without[without["batch_size"].astype(str) == batch]
    # Both sides hold finished cases, and every finished case has a throughput.
    tw = cast(float, _median(with_workers, "throughput_samples_per_s"))
    t0 = cast(float, _median(without, "throughput_samples_per_s"))
    dw, d0 = _median(with_workers, "data_wait_fraction"), _median(without, "data_wait_fraction")
    workers = int(with_workers["num_workers"].max())
    figure = (
        f"torchvision loader, batch {batch}: {t0:,.0f} samples/s (data wait {d0:.0%}) in the main process, "
        f"{tw:,.0f} (data wait {dw:.0%}) with {workers} workers"
    )
    return Claim(8, text, SUPPORTED if tw > t0 else NOT_SUPPORTED, figure)


def claim_mnist(frame: pd.DataFrame) -> Claim:
    text = "The MNIST DNN reaches about 98% test accuracy after 5 epochs."
    rows = _ok(frame)
    rows = rows[
        rows["workload"].isin(note_workloads("dnn"))
        & (rows["regularization"] == "none")
        & (rows["batch_size"].astype(str) == "100")
    ]
    rows = rows[rows["protocol"] == "note"] if "protocol" in rows else rows.iloc[0:0]
    if rows.empty:
        return Claim(
            9, text, NOT_MEASURABLE, "the note's MNIST DNN did not run here (MNIST missing, or not in this matrix)"
        )
    full = rows[rows["train_samples"].isna() & (rows["resolved_epochs"] == 5)]
    if (full["loader"] == "torchvision").any():  # the note's own pipeline (the tensor loader trains the same)
        full = full[full["loader"] == "torchvision"]
    if full.empty:
        return Claim(
            9,
            text,
            NOT_MEASURABLE,
            "this run trains the MNIST DNN on a slice or for fewer epochs (MATRIX=note runs it as written)",
        )
    accuracy = full["final_test_accuracy"].dropna()
    figure = (
        f"MNIST, note protocol, 5 epochs: test accuracy {accuracy.median():.4f} "
        f"(seeds {', '.join(str(s) for s in full['seed'])}: {', '.join(f'{a:.4f}' for a in accuracy)})"
    )
    return Claim(9, text, SUPPORTED if accuracy.median() >= ABOUT_98 else NOT_SUPPORTED, figure)


CHECKS: list[Callable[..., Claim]] = [
    claim_minibatch,
    claim_full_batch,
    claim_sgd,
    claim_optimizers,
    claim_regularization,
    claim_batchnorm,
    claim_pinned,
    claim_workers,
    claim_mnist,
]


def evaluate_claims(frame: pd.DataFrame, val: pd.DataFrame) -> list[Claim]:
    """Every claim of the note, in its order, judged on this run's records."""
    out = []
    for check in CHECKS:
        out.append(check(frame, val) if check is claim_batchnorm else check(frame))
    return out
