"""The harness's cost: the engine against a bare hand-written loop, per front-end, alternately.

    dnnbench harness [--rounds 6] [--matrix harness] [-k TEXT] [--out results/harness-<time>]

For each case of the matrix (by default `harness`: Fashion-MNIST on the device loader at batch 1, 100
and the full split) and each round, three fresh processes run it in a rotating order: the bare loop
(measurement/bare.py), `dnnbench run` (the CLI) and `pytest bench` (pytest-benchmark's pedantic
rounds). Like is compared with like: each front-end's wall-clock throughput over its steady steps
(evaluation subtracted: wall_throughput_samples_per_s, which counts the bookkeeping between steps
that the per-step throughput leaves out) over the bare loop's, which is wall-clock too. Per case and
front-end: the geometric mean of the rounds' ratios with a bootstrap interval over the rounds, and
whether the goal (0.97) holds (the whole interval above it), fails (below) or is undecided. Not a
timed test: a figure for docs/performance.md, measured on whatever machine runs it.
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
from dnnbench.results.intervals import ratio_interval
from dnnbench.results.time_left import TimeLeft
from dnnbench.views.progress import show_time_left

FRONT_ENDS = ("bare", "cli", "pytest")
GOAL = 0.97  # a front-end keeps at least 97% of the bare loop's throughput
ENGINE_FIGURE = "wall_throughput_samples_per_s"


def _command(front_end: str, case_id: str, matrix: str, folder: Path) -> list[str]:
    python = sys.executable
    if front_end == "bare":
        return [python, "-m", "dnnbench.measurement.bare", case_id, "--matrix", matrix]
    if front_end == "cli":
        return [python, "-m", "dnnbench", "run", "--matrix", matrix, "--case", case_id, "--results", str(folder)]
    return [python, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider", "--matrix", matrix,
            "-k", case_id, "--results", str(folder)]  # fmt: skip


def measure_once(front_end: str, case_id: str, matrix: str, folder: Path, figure: str = ENGINE_FIGURE) -> float:
    """One process of one front-end on one case: its `figure` (by default the wall-clock samples/s over
    the steady steps; the bare loop's is always that)."""
    done = subprocess.run(_command(front_end, case_id, matrix, folder), capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
        raise BadInput(f"harness: {front_end} failed on {case_id}: {last}")
    if front_end == "bare":
        return float(json.loads(done.stdout.strip().splitlines()[-1])["throughput_samples_per_s"])
    frame = load(folder)
    frame = frame[frame["case_id"] == case_id]
    if frame.empty or pd.isna(frame[figure].iloc[0]):
        why = f" ({frame['status'].iloc[0]}: {frame['reason'].iloc[0]})" if len(frame) else ""
        raise BadInput(f"harness: {front_end} recorded no {figure} for {case_id}{why}")
    return float(frame[figure].iloc[0])


def run_harness(cases: list[str], rounds: int, out: Path, matrix: str = "harness", log=print) -> pd.DataFrame:
    rows = []
    estimate = TimeLeft.of([((c, r), 1.0) for c in cases for r in range(rounds)], group_of=lambda key: key[0])  # type: ignore[index]
    for case_id in cases:
        for r in range(rounds):
            order = FRONT_ENDS[r % 3 :] + FRONT_ENDS[: r % 3]  # each goes first, second and third alike
            for front_end in order:
                value = measure_once(front_end, case_id, matrix, out / f"{front_end}-{case_id}-r{r + 1}")
                rows.append({"case_id": case_id, "round": r + 1, "front_end": front_end, "throughput": value})
            log(f"harness: {case_id} round {r + 1}/{rounds}: " + ", ".join(
                f"{row['front_end']} {row['throughput']:,.0f}" for row in rows[-3:]))  # fmt: skip
            estimate.finished((case_id, r))
            show_time_left(estimate, log)
    raw = pd.DataFrame(rows)
    raw.to_csv(out / "harness_raw.csv", index=False)
    wide = raw.pivot_table(index=["case_id", "round"], columns="front_end", values="throughput").reset_index()
    for front_end in ("cli", "pytest"):
        wide[f"{front_end}/bare"] = wide[front_end] / wide["bare"]
    wide.to_csv(out / "harness.csv", index=False)
    return wide


def summary(wide: pd.DataFrame, goal: float = GOAL) -> pd.DataFrame:
    """Per case: the bare loop's median throughput, and per front-end the geometric mean of its ratios
    to the bare loop with a 95% bootstrap interval over the rounds, and the goal's verdict."""
    rows = []
    for case_id, group in wide.groupby("case_id", sort=False):
        row = {"case": case_id, "bare (samples/s)": f"{group['bare'].median():,.0f}"}
        for front_end in ("cli", "pytest"):
            interval = ratio_interval(group[f"{front_end}/bare"].to_numpy())
            row[f"{front_end} / bare [95% CI]"] = interval.text()
            row[f"{front_end} ≥ {goal}"] = interval.against(goal)
        rows.append(row)
    return pd.DataFrame(rows)


def main_harness(rounds: int, out: str | None, matrix: str = "harness", select: list[str] | None = None) -> int:
    from dnnbench.definitions.plan import expand, selected

    if rounds < 2:
        raise BadInput(f"--rounds must be at least 2 (an interval needs rounds to vary over), got {rounds}")
    cases = [p.case.id for p in expand(matrix) if not p.skip_reason and p.case.world_size == 1]
    cases = [c for c in dict.fromkeys(cases) if selected(c, select or [])]
    if not cases:
        raise BadInput(f"no single-process case of matrix {matrix} to run" + (f" matching {select}" if select else ""))
    folder = Path(out or f"results/harness-{datetime.now():%Y%m%d-%H%M%S}")
    folder.mkdir(parents=True, exist_ok=True)
    wide = run_harness(cases, rounds, folder, matrix)
    table = summary(wide)
    print(table.to_string(index=False))
    (folder / "harness.md").write_text(table.to_markdown(index=False) + "\n")
    print(f"harness: {folder}/harness.csv, harness.md")
    return 0
