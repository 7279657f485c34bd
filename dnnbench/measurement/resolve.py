"""Plan resolution (a ResolvedPlan): a case's defaults resolved against its workload and the data's size.

A pure function of its arguments (no torch, no global state), so what a run will do can be read,
tested and recorded before anything is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dnnbench.core.errors import BadInput
from dnnbench.definitions.cases import Case
from dnnbench.definitions.optimizers import default_lr
from dnnbench.definitions.regularization import REGULARIZATION_KINDS
from dnnbench.definitions.workloads import Workload


@dataclass(frozen=True)
class ResolvedPlan:
    """What the run will actually do."""

    batch_size: int  # global: all ranks together
    lr: float
    hidden: tuple[int, ...]
    epochs: int
    max_seconds: float
    eval_every: int
    n_train: int
    n_val: int
    n_test: int
    steps_per_epoch: int
    planned_steps: int
    warmup_steps: int
    drop_last: bool
    threads: int
    loss: str
    target_metric: str
    target: float | None
    world_size: int = 1
    rank_batch_size: int = 0  # each rank's share of batch_size
    lr_rule: str = "none"

    @property
    def classification(self) -> bool:
        return self.loss == "cross_entropy"


def warmup_steps(requested: int, planned: int) -> int:
    """Steps left out of throughput statistics: as requested, but at most a quarter of the run and,
    when the run has two steps or more, at least the first (it pays for lazy allocation)."""
    if requested == 0 or planned < 2:
        return 0
    return min(requested, max(1, planned // 4))


def resolve_plan(case: Case, workload: Workload, n_train: int, n_val: int, n_test: int, threads: int) -> ResolvedPlan:
    """The plan of `case` on splits of the given sizes, with `threads` torch threads."""
    batch = n_train if case.batch_size == "full" else int(case.batch_size)
    if batch > n_train:
        raise BadInput(f"batch_size {batch} exceeds the {n_train} training samples; use 'full'")
    world = case.world_size
    if batch % world:  # "full" at world_size > 1: the whole split, if it splits evenly
        raise BadInput(f"the global batch {batch} does not split evenly over {world} processes")
    # Each of `world` ranks takes ceil(n / world) samples an epoch (DistributedSampler pads), in batches of
    # batch / world. BatchNorm cannot train on a final batch of one sample; drop it in that one case.
    shard, rank_batch = math.ceil(n_train / world), batch // world
    drop_last = REGULARIZATION_KINDS[case.regularization].batchnorm and shard % rank_batch == 1
    steps_per_epoch = shard // rank_batch if drop_last else math.ceil(shard / rank_batch)
    epochs = case.epochs or workload.epochs
    planned = steps_per_epoch * epochs
    # The note evaluates once per epoch; the benchmark at the workload's cadence in samples.
    default_cadence = n_train if case.protocol == "note" else workload.eval_every
    scale = {"none": 1.0, "linear": float(world), "sqrt": math.sqrt(world)}[case.lr_rule]
    return ResolvedPlan(
        batch_size=batch,
        lr=(case.lr or default_lr(case.optimizer)) * scale,
        hidden=case.hidden if case.hidden is not None else workload.hidden,
        epochs=epochs,
        max_seconds=case.max_seconds or workload.max_seconds,
        eval_every=case.eval_every or default_cadence,
        n_train=n_train,
        n_val=n_val,
        n_test=n_test,
        steps_per_epoch=steps_per_epoch,
        planned_steps=planned,
        warmup_steps=warmup_steps(case.warmup_steps, planned),
        drop_last=drop_last,
        threads=threads,
        loss=workload.task.loss,
        target_metric=workload.target_metric_under(case.protocol),
        target=workload.target,
        world_size=world,
        rank_batch_size=batch // world,
        lr_rule=case.lr_rule,
    )
