"""Tasks: what a workload's outputs are scored by — its loss, its evaluation metric, which way is better.

The engine, the record and the views ask the task; none of them branches on a workload's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dnnbench.core.errors import unknown_choice

if TYPE_CHECKING:  # no torch at import: the views read a task's direction and names
    import torch
    from torch import nn


@dataclass(frozen=True)
class Task:
    name: str
    loss: str  # the loss's name, as the plan and the record spell it
    metric: str  # the evaluation metric's name (val_<metric>, final_test_<metric>)
    higher_is_better: bool
    loss_module: str  # the torch.nn loss class
    count: Callable[[torch.Tensor, torch.Tensor, float], float]  # a chunk's metric summed: (out, y, chunk loss)

    def make_loss(self) -> nn.Module:
        from torch import nn

        return getattr(nn, self.loss_module)()

    @property
    def metric_is_loss(self) -> bool:
        """The metric is the mean loss itself (MSE): the record keeps it once, as the loss."""
        return self.metric == self.loss

    def reached(self, value: float, target: float | None) -> bool:
        """Whether an evaluation metric meets a target (None: there is nothing to reach)."""
        if target is None:
            return False
        return value >= target if self.higher_is_better else value <= target

    def better(self, a: float, b: float) -> float:
        """The better of two metric values."""
        return max(a, b) if self.higher_is_better else min(a, b)

    def gap(self, train: float, test: float) -> float:
        """Generalization gap, positive when the training figure is the better one."""
        return train - test if self.higher_is_better else test - train


def _correct(out: torch.Tensor, y: torch.Tensor, loss: float) -> float:
    return float((out.argmax(1) == y).sum())


def _squared_error(out: torch.Tensor, y: torch.Tensor, loss: float) -> float:
    return loss * len(y)


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("classification", "cross_entropy", "accuracy", True, "CrossEntropyLoss", _correct),
        Task("regression", "mse", "mse", False, "MSELoss", _squared_error),
    )
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise unknown_choice("task", name, TASKS) from None


def task_measured_by(column: str) -> Task | None:
    """The task whose metric a target column names (val_accuracy, train_mse, ...), or None."""
    metric = column.rsplit("_", 1)[-1] if isinstance(column, str) else None
    return next((t for t in TASKS.values() if t.metric == metric), None)
