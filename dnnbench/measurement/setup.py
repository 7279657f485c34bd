"""Set-up: build what a case trains (model, optimizer, objective, loader, evaluation sets) on a device."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from dnnbench.definitions.cases import Case
from dnnbench.definitions.data import Split, Splits
from dnnbench.definitions.loaders import BuildOptions, make_loader
from dnnbench.definitions.models import weight_matrices
from dnnbench.definitions.optimizers import build_optimizer
from dnnbench.definitions.regularization import REGULARIZATION_KINDS
from dnnbench.definitions.workloads import ModelChoices, Workload
from dnnbench.measurement.hooks import Hooks
from dnnbench.measurement.inspect import add_gradient_noise, scale_initial_weights
from dnnbench.measurement.resolve import ResolvedPlan


@dataclass
class Setup:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: nn.Module
    objective: object  # (output, y) -> (total loss, data loss)
    loader: object  # an iterable of (x, y) batches, one pass per epoch
    eval_sets: dict[str, Split]  # val, test, train (a slice of it)
    weights: list[torch.Tensor]  # what L1 and L2 penalize
    eval_model: nn.Module  # the model itself, unwrapped (a data-parallel wrapper must not evaluate alone)
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext  # forward's precision


class Objective:
    """The loss, plus λ·Σ|w| over the weight matrices when L1 is on (the note: not built into torch)."""

    def __init__(self, loss_fn: nn.Module, weights: list[torch.Tensor], l1: float) -> None:
        self.loss_fn, self.weights, self.l1 = loss_fn, weights, l1

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        data_loss = self.loss_fn(out, y)
        if not self.l1:
            return data_loss, data_loss
        return data_loss + self.l1 * sum(w.abs().sum() for w in self.weights), data_loss


def model_choices(case: Case, plan: ResolvedPlan) -> ModelChoices:
    """What the case asks of its workload's model: widths, input width, BatchNorm, Dropout."""
    regularization = REGULARIZATION_KINDS[case.regularization]
    return ModelChoices(
        widths=plan.hidden,
        features=case.features,
        batchnorm=regularization.batchnorm,
        dropout_p=case.dropout_p if regularization.dropout else None,
        activation=case.activation,
    )


def memory_format(case: Case) -> torch.memory_format | None:
    """torch.channels_last for a case that asks for it, None for the default layout."""
    return torch.channels_last if case.memory_format == "channels_last" else None


def _to(split: Split, device: torch.device, layout: torch.memory_format | None = None) -> Split:
    x = split.x.to(device)
    return Split(x.contiguous(memory_format=layout) if layout is not None else x, split.y.to(device))


def build(
    case: Case,
    plan: ResolvedPlan,
    workload: Workload,
    splits: Splits,
    seed: int,
    hooks: Hooks,
    shard: tuple[int, int] = (0, 1),
) -> Setup:
    """Everything the case trains, seeded with `seed` (model initialisation, dropout, shuffling); with
    shard=(rank, world) the loader gives this rank its share of each epoch."""
    device = torch.device(case.device)
    torch.manual_seed(seed)
    regularization = REGULARIZATION_KINDS[case.regularization]
    model: nn.Module = workload.build_model(model_choices(case, plan)).to(device)
    layout = memory_format(case)
    if layout is not None:  # NHWC weights; the inputs are laid out alike as they are copied (training.step)
        model = model.to(memory_format=layout)
    weights = weight_matrices(model)
    if case.init_scale is not None:
        scale_initial_weights(weights, case.init_scale)
    plain = model
    model = hooks.wrap_model(model)
    if case.compile != "off":  # compiled on its first call, inside the first (warm-up) step
        # torch.compile of a Module returns an OptimizedModule (a Module); its stub only says "a callable"
        model = cast(nn.Module, torch.compile(model, mode=None if case.compile == "default" else case.compile))
    optimizer = build_optimizer(
        case.optimizer,
        model.parameters(),
        plan.lr,
        l2=case.weight_decay if regularization.l2 else None,
        beta2=case.beta2,
        impl=case.optimizer_impl,
    )
    if case.grad_noise:
        add_gradient_noise(plain, optimizer, case.grad_noise)
    loss_fn = workload.make_loss()
    l1 = case.l1_lambda if regularization.l1 else 0.0
    options = BuildOptions(
        plan.rank_batch_size or plan.batch_size,
        seed,
        device,
        num_workers=case.num_workers,
        pin_memory=case.pin_memory,
        drop_last=plan.drop_last,
        shard=shard,
        shuffle=case.shuffle,
    )
    loader = make_loader(case.loader, splits, options)
    cap = case.eval_samples
    eval_sets = {
        "val": _to(splits.val.head(cap), device, layout),
        "test": _to(splits.test.head(cap), device, layout),
        "train": _to(splits.train.head(cap or plan.n_val), device, layout),
    }
    model.train()
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    if case.precision == "bf16":
        autocast = functools.partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)
    objective = Objective(loss_fn, weights, l1)
    return Setup(model, optimizer, loss_fn, objective, loader, eval_sets, weights, plain, autocast)


@contextlib.contextmanager
def precision_mode(case: Case):
    """tf32 is a global switch of CUDA's matmuls: on for the case that asks for it, off again after."""
    if case.precision != "tf32":
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
