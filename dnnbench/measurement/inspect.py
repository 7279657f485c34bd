"""What the note's claims read inside a model, measured untimed beside training: the weights' size and
sparsity (L1 against L2), a hidden layer's feature statistics over training (BatchNorm's steadier
distributions) and what a Dropout layer does to its input (zeroes about p, scales the rest by 1/(1−p))."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dnnbench.definitions.models import ACTIVATIONS

SPARSE_BELOW = 1e-3  # a weight counts as zero below this magnitude (L1 under Adam hovers near, not at, 0)
PROBE_SAMPLES = 512  # the fixed validation samples a hidden layer's statistics are read on


def weight_figures(weights: list[torch.Tensor]) -> dict[str, float]:
    """The L2 norm of every weight matrix together, and the share of their entries below SPARSE_BELOW."""
    if not weights:
        return {}
    flat = torch.cat([w.detach().float().flatten() for w in weights])
    return {
        "weight_norm": float(flat.norm()),
        "weight_sparsity": float((flat.abs() < SPARSE_BELOW).float().mean()),
    }


def first_activation(model: nn.Module) -> nn.Module | None:
    """The first nonlinearity of the model: its input is the first hidden layer's features (after BatchNorm)."""
    kinds = tuple(ACTIVATIONS.values())
    return next((m for m in model.modules() if isinstance(m, kinds)), None)


class HiddenDrift:
    """Per-unit mean and std of the first hidden layer's features on a fixed probe batch at each evaluation;
    the drift between two evaluations is the mean over units of |Δmean| / std + |Δ log std|."""

    def __init__(self, model: nn.Module, probe: torch.Tensor) -> None:
        self.model, self.probe = model, probe[:PROBE_SAMPLES]
        self.layer = first_activation(model)
        self.previous: tuple[torch.Tensor, torch.Tensor] | None = None

    def _statistics(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.layer is None or len(self.probe) < 2:
            return None
        seen: list[torch.Tensor] = []
        handle = self.layer.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].detach()))
        was_training = self.model.training
        try:
            self.model.eval()
            with torch.no_grad():
                self.model(self.probe)
        finally:
            handle.remove()
            self.model.train(was_training)
        features = seen[0].float().flatten(1)
        return features.mean(0), features.std(0).clamp_min(1e-6)

    def step(self) -> dict[str, float]:
        """{'hidden_drift': …} against the previous evaluation; {} at the first one or without a hidden layer."""
        current = self._statistics()
        if current is None:
            return {}
        previous, self.previous = self.previous, current
        if previous is None:
            return {}
        (mean0, std0), (mean1, std1) = previous, current
        drift = ((mean1 - mean0).abs() / std0 + (std1.log() - std0.log()).abs()).mean()
        return {"hidden_drift": float(drift)}


class DropoutProbe:
    """Reads the first Dropout layer once, on the first training step: the share of its non-zero inputs it
    zeroed and the median factor it scaled the kept ones by."""

    def __init__(self, model: nn.Module) -> None:
        self.figures: dict[str, float] = {}
        layer = next((m for m in model.modules() if isinstance(m, nn.Dropout)), None)
        self._handle = layer.register_forward_hook(self._read) if layer is not None else None

    def _read(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        x, y = inputs[0].detach(), output.detach()
        if module.training:
            live = x != 0
            kept = live & (y != 0)
            if live.any():
                self.figures["dropout_zero_fraction"] = float(((y == 0) & live).sum() / live.sum())
            if kept.any():
                self.figures["dropout_kept_scale"] = float((y[kept] / x[kept]).median())
        self.close()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def note_dropout_example() -> dict[str, str]:
    """The note's own example, run on this torch without touching the case's random stream:
    torch.manual_seed(1); x = torch.randn(5, 5); nn.Dropout(p=0.5)(x). Its input and mask, as text."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(1)  # the CPU stream only: torch.manual_seed would reseed CUDA too
        layer = nn.Dropout(p=0.5)
        x = torch.randn(5, 5)
        y = layer(x)
    return {
        "dropout_example_input": ",".join(f"{v:.4f}" for v in x[0].tolist()),
        "dropout_example_mask": "".join("1" if v else "0" for v in (y != 0).flatten().tolist()),
        "dropout_example_scale": f"{float((y[y != 0] / x[y != 0]).median()):.6f}",
    }


def scale_initial_weights(weights: list[torch.Tensor], scale: float) -> None:
    """A poor start on purpose: the weight matrices times `scale` (0: all zero; the biases keep torch's init)."""
    with torch.no_grad():
        for w in weights:
            w.mul_(scale)


def add_gradient_noise(model: nn.Module, optimizer: torch.optim.Optimizer, eta: float) -> None:
    """Annealed Gaussian noise on every gradient before the optimizer reads it (Neelakantan et al. 2015):
    variance η / (1 + t)^0.55 at optimizer step t."""
    step = [0]
    optimizer.register_step_post_hook(lambda *_: step.__setitem__(0, step[0] + 1))

    def noisy(param: torch.Tensor) -> None:
        if param.grad is not None:
            std = (eta / (1 + step[0]) ** 0.55) ** 0.5
            param.grad.add_(torch.randn_like(param.grad) * std)

    for param in model.parameters():
        if param.requires_grad:
            param.register_post_accumulate_grad_hook(noisy)
