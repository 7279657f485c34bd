"""Workloads whose model is an MLP: Flatten → [Linear → (BatchNorm1d) → ReLU → (Dropout)] per hidden layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dnnbench.definitions.workloads.base import ModelChoices, Workload

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True, kw_only=True)
class MLPWorkload(Workload):
    in_features: int
    out_features: int
    activations: tuple[str, ...] = ("relu", "sigmoid", "tanh")

    def build_model(self, choices: ModelChoices) -> nn.Module:
        from dnnbench.definitions.models import build_mlp

        return build_mlp(
            choices.features or self.in_features,
            choices.widths,
            self.out_features,
            batchnorm=choices.batchnorm,
            dropout_p=choices.dropout_p,
            activation=choices.activation,
        )
