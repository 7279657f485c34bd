"""The regularization settings' registry: what each name turns on, so that the model builder, the
optimizer's weight decay, the loss's L1 term, the plan's skip rules and drop_last read flags instead of
looking for substrings in the name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Regularization:
    name: str
    meaning: str
    batchnorm: bool = False  # BatchNorm1d after each hidden layer (needs more than one sample per batch)
    dropout: bool = False  # Dropout(case.dropout_p) after each hidden layer
    l2: bool = False  # weight decay case.weight_decay on the weight matrices
    l1: bool = False  # loss + case.l1_lambda · Σ|w|


REGULARIZATION_KINDS: dict[str, Regularization] = {
    r.name: r
    for r in (
        Regularization("none", "no regularization"),
        Regularization("batchnorm", "BatchNorm after each hidden layer", batchnorm=True),
        Regularization("dropout", "Dropout after each hidden layer", dropout=True),
        Regularization("batchnorm+dropout", "BatchNorm, then Dropout", batchnorm=True, dropout=True),
        Regularization("l2", "L2 weight decay on the weight matrices", l2=True),
        Regularization("l1", "an L1 penalty on the weight matrices added to the loss", l1=True),
    )
}
