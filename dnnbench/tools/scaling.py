"""Scaling efficiency from interleaved rounds: N ranks against one process, alternately, with an interval.

    dnnbench scaling [--rounds 4] [--matrix scaling] [-k TEXT] [--out results/scaling-<time>]

The scaling table of a benchmark run divides two figures measured minutes apart, once each: another
job on the machine during either moves the efficiency arbitrarily (1.52 and 2.47 were printed so).
Here every data-parallel case of the matrix and its one-process reference (the same settings at the
global batch for strong scaling, at the per-rank batch for weak scaling, as the report's table pairs
them) run back to back in each round, the order alternating, each in a fresh `dnnbench run` process;
the efficiency of a round is throughput(N) / (N × throughput(1)), and per case the table gives the
geometric mean over rounds with a 95% bootstrap interval.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from dnnbench.core.errors import BadInput
from dnnbench.definitions.cases import Case
from dnnbench.results.intervals import ratio_interval
from dnnbench.tools.harness import measure_once

FIGURE = "throughput_samples_per_s"


def reference_of(case: Case) -> Case:
    """The one-process case a data-parallel case's efficiency is measured against."""
    weak = case.lr_rule != "none"
    batch = case.batch_size
    if weak and isinstance(batch, int):
        batch = batch // case.world_size
    return case.replace(world_size=1, lr_rule="none", batch_size=batch)


def pairs_of(matrix: str, select: list[str]) -> list[tuple[Case, Case]]:
    """(data-parallel case, its reference) for every runnable multi-rank case of the matrix."""
    from dnnbench.definitions.plan import expand, selected

    runnable = list(dict.fromkeys(p.case for p in expand(matrix) if not p.skip_reason))
    pairs = []
    for case in runnable:
        if case.world_size == 1 or not selected(case.id, select):
            continue
        ref = reference_of(case)
        if ref not in runnable:
            raise BadInput(f"scaling: {case.id} has no one-process reference {ref.id} in matrix {matrix}")
        pairs.append((case, ref))
    if not pairs:
        raise BadInput(f"no runnable data-parallel case in matrix {matrix}" + (f" matching {select}" if select else ""))
    return pairs


def run_rounds(pairs: list[tuple[Case, Case]], rounds: int, matrix: str, out: Path, log=print) -> pd.DataFrame:
    rows = []
    for case, ref in pairs:
        for r in range(1, rounds + 1):
            order = [(ref, "one"), (case, "ranks")] if r % 2 else [(case, "ranks"), (ref, "one")]
            values = {}
            for which, side in order:
                values[side] = measure_once("cli", which.id, matrix, out / f"{side}-{case.id}-r{r}", FIGURE)
            efficiency = values["ranks"] / (case.world_size * values["one"])
            rows.append(
                {
                    "case_id": case.id,
                    "reference": ref.id,
                    "world_size": case.world_size,
                    "scaling": "weak" if case.lr_rule != "none" else "strong",
                    "round": r,
                    "one_process": values["one"],
                    "ranks": values["ranks"],
                    "efficiency": efficiency,
                }
            )
            log(f"scaling: {case.id} round {r}/{rounds}: efficiency {efficiency:.2f}")
    raw = pd.DataFrame(rows)
    raw.to_csv(out / "scaling_rounds.csv", index=False)
    return raw


def summary(raw: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for case_id, group in raw.groupby("case_id", sort=False):
        interval = ratio_interval(group["efficiency"].to_numpy())
        rows.append(
            {
                "case": case_id,
                "world size": int(group["world_size"].iloc[0]),
                "scaling": group["scaling"].iloc[0],
                "one process (samples/s)": f"{group['one_process'].median():,.0f}",
                "N ranks (samples/s)": f"{group['ranks'].median():,.0f}",
                "efficiency [95% CI]": interval.text(),
            }
        )
    return pd.DataFrame(rows)


def main_scaling(rounds: int, out: str | None, matrix: str = "scaling", select: list[str] | None = None) -> int:
    if rounds < 2 or rounds % 2:
        raise BadInput(f"--rounds must be an even number of at least 2 (each side first in half), got {rounds}")
    pairs = pairs_of(matrix, select or [])
    folder = Path(out or f"results/scaling-{datetime.now():%Y%m%d-%H%M%S}")
    folder.mkdir(parents=True, exist_ok=True)
    table = summary(run_rounds(pairs, rounds, matrix, folder))
    print(table.to_string(index=False))
    (folder / "scaling.md").write_text(table.to_markdown(index=False) + "\n")
    print(f"scaling: {folder}/scaling_rounds.csv, scaling.md")
    return 0
