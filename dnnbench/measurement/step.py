"""The training step and evaluation: the two functions that touch the model.

Kept small and free of bookkeeping, so that a wrapper (compile, data parallel) or a user's own
workload can replace them without touching timing or records.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from dnnbench.definitions.data import Split
from dnnbench.definitions.tasks import Task

EVAL_CHUNK = 10_000  # samples per forward pass in evaluation


def training_step(
    model: nn.Module, objective, optimizer, x, y, mark: Callable[[str], None], autocast=contextlib.nullcontext
) -> torch.Tensor:
    """One update (forward and loss under `autocast`, backward and the step outside it). Returns the data
    loss (without any L1 penalty), detached, on the device."""
    with autocast():
        total, data_loss = objective(model(x), y)
    mark("forward")
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    mark("backward")
    optimizer.step()
    mark("optimizer")
    return data_loss.detach()


@torch.no_grad()
def evaluate(
    model: nn.Module, split: Split, task: Task, loss_fn: nn.Module, autocast=contextlib.nullcontext
) -> tuple[float, float]:
    """(metric, mean loss) on a split in eval mode, the metric the task's (accuracy, MSE); in the
    training's precision, so that a fast path that costs accuracy shows it."""
    was_training = model.training
    model.eval()
    loss_sum, metric_sum = 0.0, 0.0
    for i in range(0, len(split), EVAL_CHUNK):
        x, y = split.x[i : i + EVAL_CHUNK], split.y[i : i + EVAL_CHUNK]
        with autocast():
            out = model(x)
        out = out.float()
        chunk_loss = float(loss_fn(out, y))
        loss_sum += chunk_loss * len(y)
        metric_sum += task.count(out, y, chunk_loss)
    model.train(was_training)
    return metric_sum / len(split), loss_sum / len(split)
