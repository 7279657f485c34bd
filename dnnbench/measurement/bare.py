"""The bare reference loop: the same training as the engine's, written by hand with nothing around it.

Same data, loader, model, optimizer and loss (built by the same functions), same allocator setting,
threads and garbage-collector policy; no clocks inside the step, no bookkeeping, no evaluation. Its
throughput over the steady-state steps is what the harness (`dnnbench harness`) divides the engine's by.

    python -m dnnbench.measurement.bare CASE-ID [--matrix harness] [--seed 1]   # prints samples/s
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from typing import cast

import torch

from dnnbench.definitions.cases import Case
from dnnbench.definitions.loaders import BuildOptions, make_loader
from dnnbench.definitions.optimizers import build_optimizer
from dnnbench.definitions.workloads import ModelChoices, get_workload
from dnnbench.measurement import allocator
from dnnbench.measurement.resolve import resolve_plan
from dnnbench.measurement.setup import memory_format
from dnnbench.measurement.training import DEFAULT_THREADS


def bare_throughput(case: Case, seed: int = 1, data_dir: str | None = None) -> float:
    """Training samples per second of the hand-written loop over the plan's steady-state steps."""
    allocator.pin()
    torch.set_num_threads(case.threads or DEFAULT_THREADS)
    workload = get_workload(case.workload)
    splits = workload.load_splits(case.train_samples, case.features, data_dir, case.protocol)
    plan = resolve_plan(case, workload, len(splits.train), len(splits.val), len(splits.test), torch.get_num_threads())
    device = torch.device(case.device)
    torch.manual_seed(seed)
    choices = ModelChoices(plan.hidden, case.features, activation=case.activation)  # no regularization
    model = workload.build_model(choices).to(device)
    layout = memory_format(case)
    if layout is not None:
        model = model.to(memory_format=layout)
    optimizer = build_optimizer(case.optimizer, model.parameters(), plan.lr, None, case.beta2, case.optimizer_impl)
    loss_fn = workload.make_loss()
    loader = make_loader(
        case.loader, splits, BuildOptions(plan.batch_size, seed, device, case.num_workers, case.pin_memory)
    )
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    steps, samples, start = 0, 0, None
    gc.collect()
    gc.disable()
    try:
        while steps < plan.planned_steps:
            for x, y in loader:
                if steps == plan.warmup_steps:
                    sync()
                    start, samples = time.perf_counter(), 0
                x, y = x.to(device), y.to(device)
                if layout is not None:
                    x = x.contiguous(memory_format=layout)
                loss = loss_fn(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
                samples += len(y)
                if steps == plan.planned_steps or (start and time.perf_counter() - start > plan.max_seconds):
                    break
            if start and time.perf_counter() - start > plan.max_seconds:
                break
        sync()
        elapsed = time.perf_counter() - cast(float, start)  # set once the warm-up ended (warmup_steps < planned_steps)
    finally:
        gc.enable()
    return samples / elapsed


def main(argv: list[str] | None = None) -> int:
    from dnnbench.definitions.plan import expand

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("--matrix", default="harness")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    (planned,) = [p for p in expand(args.matrix, seeds=[args.seed]) if p.case.id == args.case]
    print(
        json.dumps(
            {"case_id": args.case, "throughput_samples_per_s": bare_throughput(planned.case, args.seed, args.data_dir)}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
