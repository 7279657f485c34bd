"""The harness's cost: the engine against a bare hand-written loop, per front-end, alternately.

    python -m dnnbench harness [--rounds 3] [--out results/harness-<time>]

For each case of the `harness` matrix (Fashion-MNIST on the device loader at batch 1, 100 and the full
split) and each round, three fresh processes run it in a rotating order: the bare loop
(measurement/bare.py), `dnnbench run` (the CLI) and `pytest bench` (pytest-benchmark's pedantic
rounds). Each front-end's throughput is divided by the bare loop's of the same round; the table
gives every round's ratio and their median (goal: 0.97 or more). Not a timed test: a figure for the
README, measured on whatever machine runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd

from dnnbench.core.errors import BadInput
from dnnbench.results.frames import load

FRONT_ENDS = ("bare", "cli", "pytest")


def _command(front_end: str, case_id: str, folder: Path) -> list[str]:
    python = sys.executable
    if front_end == "bare":
        return [python, "-m", "dnnbench.measurement.bare", case_id, "--matrix", "harness"]
    if front_end == "cli":
        return [python, "-m", "dnnbench", "run", "--matrix", "harness", "--case", case_id, "--results", str(folder)]
    return [python, "-m", "pytest", "bench/test_harness.py", "-q", "-p", "no:cacheprovider", "--matrix", "harness",
            "-k", case_id, "--results", str(folder)]  # fmt: skip


def measure_once(front_end: str, case_id: str, folder: Path) -> float:
    done = subprocess.run(_command(front_end, case_id, folder), capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
        raise BadInput(f"harness: {front_end} failed on {case_id}: {last}")
    if front_end == "bare":
        return float(json.loads(done.stdout.strip().splitlines()[-1])["throughput_samples_per_s"])
    frame = load(folder)
    return float(frame["throughput_samples_per_s"].iloc[0])


def run_harness(cases: list[str], rounds: int, out: Path, log=print) -> pd.DataFrame:
    rows = []
    for case_id in cases:
        for r in range(rounds):
            order = FRONT_ENDS[r % 3 :] + FRONT_ENDS[: r % 3]  # nobody always goes first
            for front_end in order:
                value = measure_once(front_end, case_id, out / f"{front_end}-{case_id}-r{r + 1}")
                rows.append({"case_id": case_id, "round": r + 1, "front_end": front_end, "throughput": value})
            log(f"harness: {case_id} round {r + 1}: " + ", ".join(f"{row['front_end']} {row['throughput']:,.0f}"
                                                                  for row in rows[-3:]))  # fmt: skip
    raw = pd.DataFrame(rows)
    raw.to_csv(out / "harness_raw.csv", index=False)
    wide = raw.pivot_table(index=["case_id", "round"], columns="front_end", values="throughput").reset_index()
    for front_end in ("cli", "pytest"):
        wide[f"{front_end}/bare"] = wide[front_end] / wide["bare"]
    wide.to_csv(out / "harness.csv", index=False)
    return wide


def summary(wide: pd.DataFrame) -> pd.DataFrame:
    """Per case: the bare loop's median throughput and each front-end's ratios (every round, median)."""
    rows = []
    for case_id, group in wide.groupby("case_id", sort=False):
        row = {"case": case_id, "bare (samples/s)": f"{group['bare'].median():,.0f}"}
        for front_end in ("cli", "pytest"):
            ratios = group[f"{front_end}/bare"]
            row[f"{front_end} / bare"] = f"{ratios.median():.3f} (" + ", ".join(f"{v:.3f}" for v in ratios) + ")"
        rows.append(row)
    return pd.DataFrame(rows)


def main_harness(rounds: int, out: str | None) -> int:
    from dnnbench.definitions.plan import expand

    folder = Path(out or f"results/harness-{datetime.now():%Y%m%d-%H%M%S}")
    folder.mkdir(parents=True, exist_ok=True)
    cases = [p.case.id for p in expand("harness") if not p.skip_reason]
    wide = run_harness(cases, rounds, folder)
    table = summary(wide)
    print(table.to_string(index=False))
    (folder / "harness.md").write_text(table.to_markdown(index=False) + "\n")
    print(f"harness: {folder}/harness.csv, harness.md")
    return 0
