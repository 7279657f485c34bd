"""The note's claims about its pipeline: pinned memory (7), worker processes (8) and its MNIST DNN's
accuracy (9). Loader cases are compared with the same case differing only in that setting."""

from __future__ import annotations

import pandas as pd

from dnnbench.results.claims.select import by_seed, case_ids, finished, matched_groups, ratio_by_seed
from dnnbench.results.claims.training import note_workloads
from dnnbench.results.claims.verdicts import Claim, Estimate, Part, judged, unmeasured

MUCH_FASTER = 0.8  # "much faster": a pinned copy takes under 0.8 of an unpinned one
ABOUT_98 = (0.975, 0.985)  # "about 98%": within half a point


def _pairs(rows: pd.DataFrame, field: str, on: object) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Every (without, with) pair of matched rows where `field` is off (False / 0) and `on` (True / > 0)."""
    out = []
    for group in matched_groups(rows, [field]):
        values = group[field]
        off, with_ = group[values == 0], group[values > 0] if on == "positive" else group[values == on]
        if len(off) and len(with_):
            out.append((off, with_))
    return out


def claim_pinned(frame: pd.DataFrame) -> Claim:
    text = "Pinned memory makes host-to-GPU copies much faster."
    rule = f"copy time per step pinned / not pinned, below {MUCH_FASTER:g}"
    rows = finished(frame)
    cuda = rows[(rows["device"] == "cuda") & (rows["loader"] != "device")] if "device" in rows else rows.iloc[0:0]
    pairs = _pairs(cuda.assign(pin_memory=cuda["pin_memory"].astype(bool)), "pin_memory", True)
    if not pairs:
        why = (
            "no CUDA device here: pin_memory only affects host-to-GPU copies"
            if cuda.empty
            else "no pinned/unpinned pair"
        )
        return Claim(
            7,
            text,
            (
                unmeasured(
                    "pinned copies faster", rule, why, "make bench DEVICE=cuda (its loader suite pins and does not)"
                ),
            ),
        )
    parts: list[Part] = []
    for plain, pinned in pairs:
        copy = lambda r: by_seed(r.assign(copy_ms=r["phase_copy"] * r["step_time_ms_median"]), "copy_ms")  # noqa: E731
        first = pinned.iloc[0]
        name = f"{first['loader']}, batch {first['batch']}, {first['num_workers']} workers"
        parts.append(
            judged(
                name,
                rule,
                Estimate.ratios(ratio_by_seed(copy(pinned), copy(plain))),
                "copy time pinned / not",
                below=MUCH_FASTER,
            )
        )
    return Claim(7, text, tuple(parts), case_ids(*(r for pair in pairs for r in pair)))


def claim_workers(frame: pd.DataFrame) -> Claim:
    text = "Loading in worker processes (num_workers > 0) speeds data loading."
    rule = "samples/s with workers / without (every other field the same), above 1"
    rows = finished(frame)
    pairs = [
        (off, on[on["num_workers"] == n])
        for off, on in _pairs(rows, "num_workers", "positive")
        for n in sorted(set(on["num_workers"]))
    ]
    if not pairs:
        return Claim(
            8,
            text,
            (
                unmeasured(
                    "workers speed loading",
                    rule,
                    "no case with workers beside the same without",
                    "make bench (its loader suite runs 0, 1 and 2 workers)",
                ),
            ),
        )
    parts = []
    for off, on in pairs:
        first = on.iloc[0]
        name = (
            f"{first['workload']}, {first['loader']} loader, batch {first['batch']}, {first['num_workers']} workers"
            + (", pinned" if bool(first["pin_memory"]) else "")
        )
        estimate = Estimate.ratios(
            ratio_by_seed(by_seed(on, "throughput_samples_per_s"), by_seed(off, "throughput_samples_per_s"))
        )
        parts.append(judged(name, rule, estimate, "samples/s with / without", above=1.0))
    return Claim(8, text, tuple(parts), case_ids(*(r for pair in pairs for r in pair)))


def claim_mnist(frame: pd.DataFrame) -> Claim:
    text = "The MNIST DNN reaches about 98% test accuracy after 5 epochs."
    rule = f"test accuracy after 5 epochs of the note's protocol, within {ABOUT_98[0]:g}–{ABOUT_98[1]:g}"
    rows = finished(frame)
    rows = rows[
        rows["workload"].isin(note_workloads("dnn")) & (rows["regularization"] == "none") & (rows["batch"] == "100")
    ]
    rows = (
        rows[(rows["protocol"] == "note") & rows["train_samples"].isna() & (rows["resolved_epochs"] == 5)]
        if len(rows)
        else rows
    )
    rows = rows[~rows["stop_at_target"].astype(bool) & rows["hidden"].isna()] if len(rows) else rows
    if (rows["loader"] == "torchvision").any():  # the note's own pipeline (the tensor loader trains the same)
        rows = rows[rows["loader"] == "torchvision"]
    if rows.empty:
        return Claim(
            9, text, (unmeasured("about 98%", rule, "the note's MNIST DNN did not run here as written", NOTE_RUN_ALL),)
        )
    estimate = Estimate.values(by_seed(rows, "final_test_accuracy").to_numpy())
    return Claim(
        9,
        text,
        (
            judged(
                "about 98%", rule, estimate, lambda e: f"test accuracy {e.text(lambda v: f'{v:.4f}')}", inside=ABOUT_98
            ),
        ),
        case_ids(rows),
    )


NOTE_RUN_ALL = "make bench MATRIX=note (MNIST, all 60,000 training samples, 5 epochs)"
