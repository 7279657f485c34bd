"""The note's claims about training itself: optimizers (4), vanishing gradients (10), shuffling (12),
early stopping (13) and gradient noise (14). Each compares cases that differ in one field, seed by seed."""

from __future__ import annotations

import pandas as pd

from dnnbench.definitions.workloads import WORKLOADS
from dnnbench.results.claims.select import (
    by_seed,
    case_ids,
    difference_by_seed,
    finished,
    matched_groups,
    matched_pair,
    prefer_note,
    ratio_by_seed,
)
from dnnbench.results.claims.verdicts import Claim, Estimate, judged, none_measured, unmeasured

ADAPTIVE = ("adagrad", "rmsprop", "adam")
RACE = ("sgd", "momentum", *ADAPTIVE)
ABOUT_EQUAL = 1.5  # "about equal": the adaptive optimizers' final losses within a factor of 1.5
VANISHED = 0.5  # the first layer's gradient under half the last hidden layer's
ACCURACY_KEPT = -0.005  # early stopping may cost at most half a point of test accuracy
NOTE_RUN = "make bench MATRIX=note"


def note_workloads(part: str) -> list[str]:
    """The workloads that are the note's experiment `part` ("dnn": its MNIST DNN, "race": its optimizer race)."""
    return [name for name, w in WORKLOADS.items() if w.note_part == part]


def claim_optimizers(frame: pd.DataFrame) -> Claim:
    text = (
        "Adaptive methods (AdaGrad, RMSProp, Adam) are robust and about equal; Adam is often the best; "
        "plain SGD converges more slowly."
    )
    equal_rule = f"largest / smallest final loss of the three adaptive optimizers, below {ABOUT_EQUAL:g}"
    best_rule = "Adam's final loss / the best of the other four, below 1"
    slow_rule = "SGD's final loss / the adaptive optimizers' median, above 1"
    robust_rule = "the adaptive optimizers' best time to target holds over a range of learning rates"
    robust = unmeasured(
        "robust",
        robust_rule,
        "one learning rate per optimizer in this run",
        "dnnbench tune --matrix note -k cubic (a learning-rate sweep per optimizer)",
    )
    rows = finished(frame)
    rows = prefer_note(rows[rows["workload"].isin(note_workloads("race"))])
    races = [g for g in matched_groups(rows, ["optimizer", "lr", "beta2"]) if set(RACE) <= set(g["optimizer"])]
    rows = max(races, key=lambda g: g["seed"].nunique()) if races else rows.iloc[0:0]  # one run, one setting
    loss = pd.concat({o: by_seed(rows[rows["optimizer"] == o], "final_test_loss") for o in RACE}, axis=1)
    if loss.empty or loss.isna().all().any():  # an optimizer with no finished seed: the race is not all there
        why = "the optimizer race (cubic: SGD, Momentum, AdaGrad, RMSprop, Adam) is not in this run"
        rules = {"about equal": equal_rule, "Adam often best": best_rule, "SGD slower": slow_rule}
        return none_measured(4, text, rules, why, NOTE_RUN, also=(robust,))
    adaptive = loss[list(ADAPTIVE)]
    medians = ", ".join(f"{o} {loss[o].median():.4f}" for o in RACE)
    parts = (
        judged(
            "about equal",
            equal_rule,
            Estimate.ratios(adaptive.max(axis=1, skipna=False) / adaptive.min(axis=1, skipna=False)),
            "adaptive max / min",
            below=ABOUT_EQUAL,
        ),
        judged(
            "Adam often best",
            best_rule,
            Estimate.ratios(loss["adam"] / loss.drop(columns="adam").min(axis=1, skipna=False)),
            "Adam / best other",
            below=1.0,
        ),
        judged(
            "SGD slower",
            slow_rule,
            Estimate.ratios(loss["sgd"] / adaptive.median(axis=1, skipna=False)),
            f"SGD / adaptive median (final MSE: {medians})",
            above=1.0,
        ),
        robust,
    )
    return Claim(4, text, parts, case_ids(rows))


def claim_vanishing(frame: pd.DataFrame) -> Claim:
    text = "Gradients vanish toward the input in a deep net with sigmoid activations; ReLU fixes it."
    vanish_rule = f"first layer's / last hidden layer's gradient norm with sigmoid, below {VANISHED:g}"
    fix_rule = "that gradient ratio with ReLU / with sigmoid, above 2"
    train_rule = "test accuracy with ReLU − with sigmoid, above 0"
    rows = finished(frame)
    deep = rows.loc[rows["grad_norm_ratio"].notna(), "case_id"] if "grad_norm_ratio" in rows else []
    pair = matched_pair(rows[rows["case_id"].isin(deep)], "activation", "sigmoid", "relu")
    if pair is None:
        why = "no deep net (2+ hidden layers) with sigmoid beside the same with ReLU"
        rules = {"vanish with sigmoid": vanish_rule, "ReLU keeps them": fix_rule, "ReLU trains better": train_rule}
        return none_measured(10, text, rules, why, NOTE_RUN)
    sigmoid, relu = pair
    parts = (
        judged(
            "vanish with sigmoid",
            vanish_rule,
            Estimate.ratios(by_seed(sigmoid, "grad_norm_ratio").to_numpy()),
            "sigmoid: first / last hidden gradient",
            below=VANISHED,
        ),
        judged(
            "ReLU keeps them",
            fix_rule,
            Estimate.ratios(ratio_by_seed(by_seed(relu, "grad_norm_ratio"), by_seed(sigmoid, "grad_norm_ratio"))),
            "gradient ratio ReLU / sigmoid",
            above=2.0,
        ),
        judged(
            "ReLU trains better",
            train_rule,
            Estimate.values(
                difference_by_seed(by_seed(relu, "final_test_accuracy"), by_seed(sigmoid, "final_test_accuracy"))
            ),
            "test accuracy ReLU − sigmoid",
            above=0.0,
        ),
    )
    return Claim(10, text, parts, case_ids(sigmoid, relu))


def claim_shuffle(frame: pd.DataFrame) -> Claim:
    text = "The training set must be shuffled every epoch."
    rule = "final loss without shuffling (the data in its stored order) / with, above 1"
    pair = matched_pair(finished(frame), "shuffle", True, False)
    if pair is None:
        return Claim(
            12,
            text,
            (
                unmeasured(
                    "unshuffled trains worse", rule, "no case without shuffling beside the same with it", NOTE_RUN
                ),
            ),
        )
    on, off = pair
    estimate = Estimate.ratios(ratio_by_seed(by_seed(off, "final_test_loss"), by_seed(on, "final_test_loss")))
    where = f"{off.iloc[0]['workload']}, {off.iloc[0]['optimizer']}, batch {off.iloc[0]['batch']}"
    return Claim(
        12,
        text,
        (judged("unshuffled trains worse", rule, estimate, f"{where}: final loss off / on", above=1.0),),
        case_ids(on, off),
    )


def claim_early_stopping(frame: pd.DataFrame) -> Claim:
    text = "Stopping when the validation loss no longer falls ends training early without losing test accuracy."
    saved_rule = "epochs trained with early stopping / without, below 1"
    kept_rule = f"test accuracy with early stopping − without, above {ACCURACY_KEPT:g}"
    rows = finished(frame)
    pair = None
    for patience in sorted(set(rows["patience"].dropna())):
        pair = matched_pair(rows, "patience", "nan", patience)
        if pair is not None:
            break
    if pair is None:
        why = "no early-stopping case (patience) beside the same case without it"
        rules = {"ends early": saved_rule, "keeps accuracy": kept_rule}
        return none_measured(13, text, rules, why, NOTE_RUN)
    full, early = pair
    trained = by_seed(early, "epochs_completed").median(), by_seed(full, "epochs_completed").median()
    epochs = Estimate.ratios(ratio_by_seed(by_seed(early, "epochs_completed"), by_seed(full, "epochs_completed")))
    kept = Estimate.values(
        difference_by_seed(by_seed(early, "final_test_accuracy"), by_seed(full, "final_test_accuracy"))
    )
    parts = (
        judged(
            "ends early",
            saved_rule,
            epochs,
            lambda e: f"epochs with / without {e.text()} ({trained[0]:.3g} of {trained[1]:.3g})",
            below=1.0,
        ),
        judged(
            "keeps accuracy",
            kept_rule,
            kept,
            lambda e: f"test accuracy with − without {e.text(lambda v: f'{v:+.4f}')}",
            above=ACCURACY_KEPT,
        ),
    )
    return Claim(13, text, parts, case_ids(full, early))


def claim_gradient_noise(frame: pd.DataFrame) -> Claim:
    text = "Noise added to the gradients makes training of a deep net more robust to a poor initialization."
    rule = "test accuracy with gradient noise − without, from the same poor start, above 0"
    rows = finished(frame)
    rows = rows[rows["init_scale"].notna()] if "init_scale" in rows else rows.iloc[0:0]
    pair = None
    for eta in sorted(set(rows["grad_noise"].dropna())):
        pair = matched_pair(rows, "grad_noise", "nan", eta) or pair
    if pair is None:
        return Claim(
            14,
            text,
            (
                unmeasured(
                    "noise rescues a poor start",
                    rule,
                    "no poorly initialized case (init_scale) with and without gradient noise",
                    NOTE_RUN,
                ),
            ),
        )
    plain, noisy = pair
    first = noisy.iloc[0]
    gain = Estimate.values(
        difference_by_seed(by_seed(noisy, "final_test_accuracy"), by_seed(plain, "final_test_accuracy"))
    )
    figure = (
        f"{len(str(first['hidden']).split(','))} hidden layers, weights × {first['init_scale']:g} at the start, "
        f"η = {first['grad_noise']:g}: accuracy with − without"
    )
    return Claim(
        14, text, (judged("noise rescues a poor start", rule, gain, figure, above=0.0),), case_ids(plain, noisy)
    )
