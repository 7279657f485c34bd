"""The bare reference loop: the same training as the engine's, written by hand with nothing around it.

It trains what the case asks, built by the same functions as the engine's (measurement/setup.build:
data, loader with its drop_last, model with BatchNorm / Dropout, L1 in the objective, L2 in the
optimizer, precision, compile, channels_last), under the same conditions (allocator, threads,
garbage-collector policy); the step is written out here with no clocks inside it, no bookkeeping and
no evaluation. Its throughput is steady-state samples over wall time, which the harness (`dnnbench
harness`) divides the engine's wall-clock throughput by. A data-parallel case (world_size > 1) is
refused by name: the bare loop is one process.

    python -m dnnbench.measurement.bare CASE-ID [--matrix harness] [--seed 1]   # prints samples/s
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import torch

from dnnbench.core.errors import BadInput
from dnnbench.definitions.cases import Case
from dnnbench.definitions.workloads import get_workload
from dnnbench.measurement import allocator
from dnnbench.measurement.hooks import NO_HOOKS
from dnnbench.measurement.resolve import resolve_plan
from dnnbench.measurement.setup import Objective, build, memory_format, precision_mode
from dnnbench.measurement.training import DEFAULT_THREADS

# Case fields the bare loop cannot follow, and why; it refuses a case that sets them.
NOT_FOLLOWED = {"world_size": "the bare loop is one process (data-parallel cases run through torchrun)"}


@dataclass
class BareResult:
    throughput: float  # steady-state samples per second of wall time
    steps: int
    losses: list[float] = field(default_factory=list)  # per step, when asked for (tests)


def refusal(case: Case) -> str | None:
    """Why the bare loop cannot run `case` as the engine would, naming the field; None when it can."""
    if case.world_size != 1:
        return f"world_size={case.world_size}: {NOT_FOLLOWED['world_size']}"
    return None


def bare_run(case: Case, seed: int = 1, data_dir: str | None = None, keep_losses: bool = False) -> BareResult:
    """Train `case` by hand and time its steady-state steps on the wall clock."""
    why = refusal(case)
    if why:
        raise BadInput(f"the bare loop cannot follow this case: {why}")
    allocator.pin()
    torch.set_num_threads(case.threads or DEFAULT_THREADS)
    workload = get_workload(case.workload)
    splits = workload.load_splits(case.train_samples, case.features, data_dir, case.protocol)
    plan = resolve_plan(case, workload, len(splits.train), len(splits.val), len(splits.test), torch.get_num_threads())
    device = torch.device(case.device)
    setup = build(case, plan, workload, splits, seed, NO_HOOKS)
    model, optimizer, autocast = setup.model, setup.optimizer, setup.autocast
    objective = cast(Objective, setup.objective)
    loader = cast(Iterable[tuple[torch.Tensor, torch.Tensor]], setup.loader)
    layout = memory_format(case)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    steps, samples, start = 0, 0, 0.0
    losses: list[torch.Tensor] = []
    gc.collect()
    gc.disable()
    try:
        with precision_mode(case):
            if plan.warmup_steps == 0:
                start = time.perf_counter()
            while steps < plan.planned_steps:
                for x, y in loader:
                    x = x.to(device, non_blocking=case.pin_memory)
                    if layout is not None:
                        x = x.contiguous(memory_format=layout)
                    y = y.to(device, non_blocking=case.pin_memory)
                    with autocast():
                        total, data_loss = objective(model(x), y)
                    optimizer.zero_grad(set_to_none=True)
                    total.backward()
                    optimizer.step()
                    if keep_losses:
                        losses.append(data_loss.detach())
                    steps += 1
                    samples += len(y)
                    if steps == plan.warmup_steps:  # the window opens before the next batch is fetched, as the engine's
                        sync()
                        start, samples = time.perf_counter(), 0
                    if steps == plan.planned_steps or (start and time.perf_counter() - start > plan.max_seconds):
                        break
                if start and time.perf_counter() - start > plan.max_seconds:
                    break
            sync()
            elapsed = time.perf_counter() - start  # set once the warm-up ended (warmup_steps < planned_steps)
    finally:
        gc.enable()
    return BareResult(samples / elapsed, steps, [float(v) for v in losses])


def bare_throughput(case: Case, seed: int = 1, data_dir: str | None = None) -> float:
    """Training samples per second of the hand-written loop over the plan's steady-state steps."""
    return bare_run(case, seed, data_dir).throughput


def main(argv: list[str] | None = None) -> int:
    from dnnbench.definitions.plan import expand

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("--matrix", default="harness")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    try:
        plan = expand(args.matrix, seeds=[args.seed])
        found = [p for p in plan if p.case.id == args.case]
        if not found:
            ids = ", ".join(dict.fromkeys(p.case.id for p in plan))
            raise BadInput(f"no case {args.case!r} in matrix {args.matrix}; choose from: {ids}")
        result = bare_run(found[0].case, args.seed, args.data_dir)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"case_id": args.case, "throughput_samples_per_s": result.throughput, "steps": result.steps}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
