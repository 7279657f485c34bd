"""The note's claims about regularization: the train − test gap (5), BatchNorm's speed and stability (6),
L1's sparsity and L2's smaller weights (11), BatchNorm's steadier hidden features (16) and Dropout (17).
Each regularized case is compared with the same case without it, seed by seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dnnbench.results.claims.select import (
    by_seed,
    case_ids,
    difference_by_seed,
    finished,
    matched_pair,
    prefer_note,
    ratio_by_seed,
)
from dnnbench.results.claims.verdicts import (
    NOT_SUPPORTED,
    SUPPORTED,
    Claim,
    Estimate,
    Part,
    judged,
    none_measured,
    unmeasured,
)

NOTE_RUN = "make bench MATRIX=note"
NOTE_DROPOUT_ROW = "-1.5256,-0.7502,-0.6540,-1.6095,-0.1002"  # the first input row the note printed
ZERO_SHARE_SLACK = 0.02  # "about p": within two points
SCALE_SLACK = 1e-3  # 1/(1−p), to a thousandth


def signed(v: float) -> str:
    return f"{v:+.4f}"


def regularized(frame: pd.DataFrame, kind: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(without, with `kind`) matched on every other case field, the note's protocol preferred."""
    rows = prefer_note(finished(frame))
    return matched_pair(rows, "regularization", "none", kind)


def claim_gap(frame: pd.DataFrame) -> Claim:
    text = "Regularization (L1, L2, Dropout) makes nets generalize better: a smaller train − test gap."
    parts, read = [], []
    for kind in ("l1", "l2", "dropout"):
        rule = f"train − test gap with {kind} − without, below 0"
        pair = regularized(frame, kind)
        if pair is None:
            parts.append(unmeasured(kind, rule, f"no {kind} case beside the same case without it", NOTE_RUN))
            continue
        plain, reg = pair
        change = Estimate.values(
            difference_by_seed(by_seed(reg, "generalization_gap"), by_seed(plain, "generalization_gap"))
        )
        without = f"gap {by_seed(plain, 'generalization_gap').median():+.4f} without"
        parts.append(judged(kind, rule, change, lambda e: f"gap change {e.text(signed)} ({without})", below=0.0))  # noqa: B023
        read += [plain, reg]
    return Claim(5, text, tuple(parts), case_ids(*read))


def first_evaluation(val: pd.DataFrame, rows: pd.DataFrame) -> pd.Series:
    """Per seed of `rows`, the evaluation metric at the first evaluation of their case in their run; NaN for a
    seed that did not finish (its curve stops early) or has no curve."""
    seeds = pd.Index(sorted(set(rows["seed"])), name="seed")
    done = rows[rows["status"] == "ok"] if "status" in rows else rows
    if val.empty or done.empty:
        return pd.Series(np.nan, index=seeds)
    keys = set(zip(done["run"], done["case_id"], done["seed"], strict=True))
    points = val[[k in keys for k in zip(val["run"], val["case_id"], val["seed"], strict=True)]]
    if points.empty:
        return pd.Series(np.nan, index=seeds)
    first = points.sort_values("samples").groupby(["case_id", "seed"]).first()["val_metric"]
    return first.groupby(level="seed").median().reindex(seeds)


def claim_batchnorm(frame: pd.DataFrame, val: pd.DataFrame) -> Claim:
    text = "BatchNorm speeds convergence and stabilizes training."
    speed_rule = "evaluation metric at the first evaluation with BatchNorm − without, above 0"
    steady_rule = "loss noise with BatchNorm / without, below 1"
    pair = regularized(frame, "batchnorm")
    if pair is None:
        why = "no BatchNorm case beside the same case without it"
        rules = {"speeds convergence": speed_rule, "stabilizes training": steady_rule}
        return none_measured(6, text, rules, why, NOTE_RUN)
    plain, bn = pair
    ahead = Estimate.values(difference_by_seed(first_evaluation(val, bn), first_evaluation(val, plain)))
    to_target = [by_seed(r, "epochs_to_target").fillna(np.inf).median() for r in (bn, plain)]
    epochs = "epochs to target " + " with, ".join("not reached" if np.isinf(t) else f"{t:.3g}" for t in to_target)
    epochs += " without"
    steady = Estimate.ratios(ratio_by_seed(by_seed(bn, "loss_noise"), by_seed(plain, "loss_noise")))
    parts = (
        judged(
            "speeds convergence",
            speed_rule,
            ahead,
            lambda e: f"first evaluation with − without {e.text(lambda v: f'{v:+.4f}')} ({epochs})",
            above=0.0,
            missing="the cases carry no evaluation curve",
        ),
        judged("stabilizes training", steady_rule, steady, "loss noise with / without", below=1.0),
    )
    return Claim(6, text, parts, case_ids(plain, bn))


def claim_weights(frame: pd.DataFrame) -> Claim:
    text = "L1 gives sparser weights than L2; L2 (weight decay) makes the weights smaller."
    sparse_rule = "share of weights below 1e-3 with L1 − with L2, above 0"
    small_rule = "weight norm with L2 / without, below 1"
    l1_l2 = matched_pair(prefer_note(finished(frame)), "regularization", "l1", "l2")
    l2 = regularized(frame, "l2")
    parts: list[Part] = []
    if l1_l2 is None:
        parts.append(unmeasured("L1 sparser than L2", sparse_rule, "no L1 and L2 cases of one setting", NOTE_RUN))
    else:
        l1_rows, l2_rows = l1_l2
        sparser = Estimate.values(
            difference_by_seed(by_seed(l1_rows, "weight_sparsity"), by_seed(l2_rows, "weight_sparsity"))
        )
        share = by_seed(l1_rows, "weight_sparsity").median(), by_seed(l2_rows, "weight_sparsity").median()
        shares = f"{share[0]:.1%} with L1, {share[1]:.1%} with L2"
        parts.append(
            judged(
                "L1 sparser than L2",
                sparse_rule,
                sparser,
                lambda e: f"sparsity L1 − L2 {e.text(lambda v: f'{v:+.3f}')} ({shares})",
                above=0.0,
            )
        )
    if l2 is None:
        parts.append(
            unmeasured("L2 shrinks the weights", small_rule, "no L2 case beside the same without it", NOTE_RUN)
        )
    else:
        smaller = Estimate.ratios(ratio_by_seed(by_seed(l2[1], "weight_norm"), by_seed(l2[0], "weight_norm")))
        parts.append(judged("L2 shrinks the weights", small_rule, smaller, "weight norm with L2 / without", below=1.0))
    return Claim(11, text, tuple(parts), case_ids(*(l1_l2 or ()), *(l2 or ())))


def claim_feature_drift(frame: pd.DataFrame) -> Claim:
    text = "BatchNorm keeps the hidden layers' feature distributions steady during training."
    rule = "drift of the first hidden layer's features between evaluations with BatchNorm / without, below 1"
    pair = regularized(frame, "batchnorm")
    if pair is None:
        return Claim(
            16, text, (unmeasured("steadier features", rule, "no BatchNorm case beside the same without it", NOTE_RUN),)
        )
    plain, bn = pair
    drift = Estimate.ratios(ratio_by_seed(by_seed(bn, "hidden_drift"), by_seed(plain, "hidden_drift")))
    part = judged(
        "steadier features",
        rule,
        drift,
        "hidden-layer drift with / without",
        below=1.0,
        missing="the cases were evaluated once: no drift between evaluations",
        settle="2 or more evaluations",
    )
    return Claim(16, text, (part,), case_ids(plain, bn))


def claim_dropout(frame: pd.DataFrame) -> Claim:
    text = "Dropout zeroes each unit with probability p and scales the rest by 1/(1−p)."
    zero_rule = f"share of the Dropout layer's inputs it zeroed, within p ± {ZERO_SHARE_SLACK:g}"
    scale_rule = f"factor on the kept inputs, within 1/(1−p) ± {SCALE_SLACK:g}"
    example_rule = "the note's example (seed 1, randn(5, 5), Dropout(p=0.5)) gives the input row the note printed"
    rows = finished(frame)
    probed = rows.loc[rows["dropout_zero_fraction"].notna(), "case_id"] if "dropout_zero_fraction" in rows else []
    rows = rows[rows["case_id"].isin(probed)]
    if rows.empty:
        why = "no case with Dropout in this run"
        rules = {"zeroes about p": zero_rule, "scales by 1/(1−p)": scale_rule, "the note's example": example_rule}
        return none_measured(17, text, rules, why, NOTE_RUN)
    rows = rows[rows["dropout_p"] == rows["dropout_p"].iloc[0]]
    p = float(rows["dropout_p"].iloc[0])
    zeroed = Estimate.values(by_seed(rows, "dropout_zero_fraction").to_numpy())
    scale = Estimate.values(by_seed(rows, "dropout_kept_scale").to_numpy())
    parts = [
        judged(
            "zeroes about p",
            zero_rule,
            zeroed,
            f"p = {p:g}: share zeroed",
            inside=(p - ZERO_SHARE_SLACK, p + ZERO_SHARE_SLACK),
        ),
        judged(
            "scales by 1/(1−p)",
            scale_rule,
            scale,
            lambda e: f"1/(1−p) = {1 / (1 - p):.4f}: kept inputs × {e.text(lambda v: f'{v:.4f}')}",
            inside=(1 / (1 - p) - SCALE_SLACK, 1 / (1 - p) + SCALE_SLACK),
        ),
    ]
    example = (
        rows["resolved_dropout_example_input"].dropna()
        if "resolved_dropout_example_input" in rows
        else pd.Series(dtype=str)
    )
    if example.empty:
        parts.append(
            unmeasured("the note's example", example_rule, "the records carry no run of the example", NOTE_RUN)
        )
    else:
        mask = str(rows["resolved_dropout_example_mask"].dropna().iloc[0])
        same = str(example.iloc[0]) == NOTE_DROPOUT_ROW
        figure = (
            f"input row 1 here [{example.iloc[0]}], the note's [{NOTE_DROPOUT_ROW}]; mask drawn here "
            f"{' '.join(mask[i : i + 5] for i in range(0, len(mask), 5))} ({mask.count('0')} of {len(mask)} zeroed): "
            "shown, not judged: the note printed its own, and masks differ across torch versions"
        )
        parts.append(Part("the note's example", SUPPORTED if same else NOT_SUPPORTED, figure, example_rule))
    return Claim(17, text, tuple(parts), case_ids(rows))
