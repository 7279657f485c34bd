"""The nets: an MLP with optional BatchNorm and Dropout after each hidden layer.

The note's MNIST DNN is MLP(784, (500,), 10); its optimizer-race net is MLP(1, (20,), 1).
"""

from __future__ import annotations

from torch import nn


def build_mlp(
    in_features: int,
    hidden: tuple[int, ...],
    out_features: int,
    batchnorm: bool = False,
    dropout_p: float | None = None,
) -> nn.Sequential:
    """Flatten → [Linear → (BatchNorm1d) → ReLU → (Dropout)] per hidden layer → Linear."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if batchnorm:
            layers.append(nn.BatchNorm1d(h))  # eps=1e-5, momentum=0.1, affine=True as in the study note
        layers.append(nn.ReLU())
        if dropout_p is not None:
            layers.append(nn.Dropout(p=dropout_p))
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def weight_matrices(model: nn.Module) -> list:
    """The parameters L1 and L2 penalize: weight matrices, not biases or BatchNorm scales."""
    return [p for p in model.parameters() if p.ndim >= 2]
