"""Shards: a matrix's case × seed pairs spread over N machines (`--shard I/N`), and merged back later.

Every pair lands in exactly one shard, decided by the pair alone where it can be, so that adding a
case elsewhere moves few others: rendezvous hashing (each pair ranks the shards by a hash of pair and
shard) with bounded loads (Mirrokni, Thorup and Zadimoghaddam 2018): in a fixed order of their own
hashes, each pair takes the first shard on its list whose expected cost stays under 1.25 × the mean,
so shards balance by expected seconds, not by count.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Protocol

from dnnbench.core.errors import BadInput
from dnnbench.definitions.cases import Case
from dnnbench.definitions.loaders import LOADER_KINDS
from dnnbench.definitions.workloads import get_workload

PAIR_OVERHEAD_S = 2.5  # set-up, calibration, the final evaluations and the front-end's own, per pair
SLACK = 1.25  # a shard may take up to this times the mean expected cost before pairs spill further down their lists

# Rough samples/s of the MLP on 2 CPU cores by batch size (the README's figures), for expected costs only.
_RATE = ((1, 1_500.0), (32, 15_000.0), (10**9, 40_000.0))


class Planned(Protocol):
    """A planned pair, read-only (PlannedCase is a frozen dataclass)."""

    @property
    def case(self) -> Case: ...

    @property
    def seed(self) -> int: ...

    @property
    def skip_reason(self) -> str | None: ...


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' → (2, 4); BadInput for anything else."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = 0
    if not sep or n < 1 or not 1 <= i <= n:
        raise BadInput(f"--shard expects I/N with 1 <= I <= N, such as 1/4, got {text!r}")
    return i, n


def expected_cost(case: Case, skipped: bool = False) -> float:
    """Expected seconds of one case × seed on a 2-core CPU: training at a rough rate for its batch size
    and loader, capped by its time budget, plus evaluation and set-up."""
    if skipped:
        return 0.01
    workload = get_workload(case.workload)
    n = case.train_samples or workload.train_size(case.protocol)
    batch = n if case.batch_size == "full" else int(case.batch_size)
    rate = (
        next(r for limit, r in _RATE if batch <= limit)
        * LOADER_KINDS[case.loader].relative_rate
        / workload.relative_cost
    )
    if case.num_workers:
        rate /= 1.5
    epochs = case.epochs or workload.epochs
    seconds = min(n * epochs / rate, case.max_seconds or workload.max_seconds)
    evaluations = (n * epochs) / (case.eval_every or workload.eval_every)
    overhead = PAIR_OVERHEAD_S + 0.05 * evaluations + (8.0 * case.world_size if case.world_size > 1 else 0.0)
    return seconds + overhead


def _score(key: str, shard: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{key}|{shard}".encode()).digest()[:8], "big")


def assign(plan: Sequence[Planned], count: int) -> dict[tuple[str, int], int]:
    """(case id, seed) → shard (1..count) for every pair of the plan."""
    keys = [(p.case.id, p.seed) for p in plan]
    if len(set(keys)) != len(keys):
        raise BadInput("the plan lists a case x seed pair twice")
    cost = {(p.case.id, p.seed): expected_cost(p.case, p.skip_reason is not None) for p in plan}
    capacity = SLACK * sum(cost.values()) / count
    loads = [0.0] * (count + 1)
    out: dict[tuple[str, int], int] = {}
    for key in sorted(keys, key=lambda k: _score(f"{k[0]}-s{k[1]}", 0)):
        name = f"{key[0]}-s{key[1]}"
        ranked = sorted(range(1, count + 1), key=lambda s: _score(name, s), reverse=True)
        fits = [s for s in ranked if loads[s] + cost[key] <= capacity]
        chosen = fits[0] if fits else min(ranked, key=lambda s: loads[s])
        loads[chosen] += cost[key]
        out[key] = chosen
    return out


def select(plan: Sequence[Planned], index: int, count: int) -> list:
    """The pairs of shard `index` of `count`, in plan order."""
    if count == 1:
        return list(plan)
    shards = assign(plan, count)
    return [p for p in plan if shards[(p.case.id, p.seed)] == index]


def loads(plan: Sequence[Planned], count: int) -> list[float]:
    """Expected seconds per shard (for `list --shard` and the docs)."""
    shards = assign(plan, count)
    totals = [0.0] * count
    for p in plan:
        totals[shards[(p.case.id, p.seed)] - 1] += expected_cost(p.case, p.skip_reason is not None)
    return totals


def imbalance(totals: list[float]) -> float:
    """max / mean of the shards' expected costs (1.0: perfectly even)."""
    mean = sum(totals) / len(totals)
    return max(totals) / mean if mean else math.nan
