"""Optimizer registry: name → torch.optim factory with documented defaults.

Defaults follow the study note where it gives one (Momentum 0.8 and RMSprop alpha 0.9 from its
optimizer race) and PyTorch's own otherwise: Adam keeps betas (0.9, 0.999), as the note's MNIST DNN
(which passes only lr) does; its race's (0.9, 0.99) is the case field beta2. Learning
rates are per optimizer because one rate does not suit them all: plain SGD needs about 10x Adam's.
torch is imported lazily so that listing cases stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OptimizerSpec:
    torch_class: str  # name in torch.optim
    default_lr: float
    options: dict[str, Any] = field(default_factory=dict)  # fixed hyper-parameters besides lr
    default_weight_decay: float = 0.0  # AdamW's decoupled decay is part of what it is
    label: str = ""  # as the note's legends spell it


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec("SGD", 0.1, label="SGD"),
    "momentum": OptimizerSpec("SGD", 0.01, {"momentum": 0.8}, label="Momentum"),
    "nesterov": OptimizerSpec("SGD", 0.01, {"momentum": 0.9, "nesterov": True}, label="Nesterov"),
    "adagrad": OptimizerSpec("Adagrad", 0.01, {"lr_decay": 0.0}, label="AdaGrad"),
    "rmsprop": OptimizerSpec("RMSprop", 0.001, {"alpha": 0.9, "eps": 1e-8}, label="RMSprop"),
    "adam": OptimizerSpec("Adam", 0.001, {"betas": (0.9, 0.999), "eps": 1e-8}, label="Adam"),
    "adamw": OptimizerSpec("AdamW", 0.001, {"betas": (0.9, 0.999)}, default_weight_decay=0.01, label="AdamW"),
    "adadelta": OptimizerSpec("Adadelta", 1.0, {"rho": 0.9}, label="Adadelta"),
}


RACE = ("sgd", "momentum", "adagrad", "rmsprop", "adam")  # the note's optimizer race, in its legend order


def default_lr(name: str) -> float:
    return OPTIMIZERS[name].default_lr


IMPLEMENTATIONS = {
    "default": {},
    "for-loop": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
}


def build_optimizer(
    name: str, params: Iterable[Any], lr: float, l2: float | None, beta2: float | None = None, impl: str = "default"
):
    """Build the optimizer; `l2` (weight_decay) applies to weight matrices only, not biases or BatchNorm.

    `l2=None` keeps the optimizer's own default decay (0, or AdamW's 0.01); `beta2` replaces Adam's
    second-moment decay (the note's race uses 0.99).
    """
    import torch

    spec = OPTIMIZERS[name]
    decay = spec.default_weight_decay if l2 is None else l2
    decayed: list[Any] = []
    plain: list[Any] = []
    for p in params:
        (decayed if p.ndim >= 2 else plain).append(p)
    groups = [{"params": decayed, "weight_decay": decay}, {"params": plain, "weight_decay": 0.0}]
    options = {**spec.options, **IMPLEMENTATIONS[impl]}
    if beta2 is not None:
        options["betas"] = (options["betas"][0], beta2)
    return getattr(torch.optim, spec.torch_class)(groups, lr=lr, **options)
