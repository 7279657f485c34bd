"""The nets: an MLP and a LeNet-5-style CNN, each with optional BatchNorm and Dropout.

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
    activation: str = "relu",
) -> nn.Sequential:
    """Flatten → [Linear → (BatchNorm1d) → activation → (Dropout)] per hidden layer → Linear."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers.append(nn.Linear(width, h))
        if batchnorm:
            layers.append(nn.BatchNorm1d(h))  # eps=1e-5, momentum=0.1, affine=True as in the study note
        layers.append(ACTIVATIONS[activation]())
        if dropout_p is not None:
            layers.append(nn.Dropout(p=dropout_p))
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def build_lenet5(
    in_channels: int,
    side: int,
    widths: tuple[int, ...],
    out_features: int,
    batchnorm: bool = False,
    dropout_p: float | None = None,
    activation: str = "relu",
) -> nn.Sequential:
    """LeNet-5 after LeCun et al. 1998, with max-pooling and ReLU as it is trained today.

    widths = (conv1 channels, conv2 channels, fc sizes...), LeNet-5's (6, 16, 120, 84). Each conv block
    is Conv2d → (BatchNorm2d) → activation → (Dropout2d) → MaxPool2d(2): BatchNorm2d and Dropout2d take
    the conv's feature maps, as the note places them; the fully connected layers take BatchNorm1d and
    Dropout. conv1 pads by 2, so a 28×28 input meets conv2 at 14×14 as LeNet-5's 32×32 did.
    """
    if len(widths) < 2:
        raise ValueError(f"LeNet-5 needs two conv widths and any fc widths, got {widths}")
    act = ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    channels = in_channels
    for i, width in enumerate(widths[:2]):
        layers.append(nn.Conv2d(channels, width, kernel_size=5, padding=2 if i == 0 else 0))
        if batchnorm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(act())
        if dropout_p is not None:
            layers.append(nn.Dropout2d(p=dropout_p))
        layers.append(nn.MaxPool2d(2))
        channels = width
    side = (side // 2 - 4) // 2  # conv1 keeps the side (padding 2), pool halves, conv2 takes 4, pool halves
    head = build_mlp(channels * side * side, widths[2:], out_features, batchnorm, dropout_p, activation)
    return nn.Sequential(*layers, *head)


def weight_matrices(model: nn.Module) -> list:
    """The parameters L1 and L2 penalize: weight matrices, not biases or BatchNorm scales."""
    return [p for p in model.parameters() if p.ndim >= 2]
