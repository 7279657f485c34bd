"""LeNet-5 (a small CNN) on MNIST and Fashion-MNIST: convolutions, BatchNorm2d and Dropout2d, channels_last."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dnnbench.definitions.tasks import TASKS
from dnnbench.definitions.workloads.base import ModelChoices
from dnnbench.definitions.workloads.idx_images import IdxImages

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True, kw_only=True)
class LeNet5(IdxImages):
    """models.build_lenet5 on the 1×28×28 images; `hidden` is (conv1, conv2, fc...) widths."""

    convolutional: bool = True
    relative_cost: float = 6.0  # its steps against the MLP's, batch 100, quick matrix (docs/performance.md)
    activations: tuple[str, ...] = ("relu", "sigmoid", "tanh")

    def build_model(self, choices: ModelChoices) -> nn.Module:
        from dnnbench.definitions.models import build_lenet5

        return build_lenet5(
            1, 28, choices.widths, 10, choices.batchnorm, choices.dropout_p, activation=choices.activation
        )


LENET5_FASHION_MNIST = LeNet5(
    name="lenet5-fashion-mnist",
    dataset="fashion-mnist",
    hflip=True,
    task=TASKS["classification"],
    target=0.85,
    target_why=(
        "the note's MLP's target on the same data, so the two nets compare on one scale; LeNet-5-like CNNs "
        "reach 0.89-0.91 test accuracy after full training. Measured (quick matrix, Adam, batch 100, device "
        "loader, 2 seeds): 0.80 after one epoch, 0.843 after two"
    ),
    hidden=(6, 16, 120, 84),
    epochs=4,
    max_seconds=120.0,
    eval_every=10_000,
)

LENET5_MNIST = replace(
    LENET5_FASHION_MNIST,
    name="lenet5-mnist",
    dataset="mnist",
    hflip=False,
    target=0.98,
    target_why="LeNet-5 reaches 0.99 on MNIST (LeCun et al. 1998: 0.95% test error); 0.98 on validation",
)
