"""Optimizers: SGD, Momentum, Nesterov, AdaGrad, RMSProp, Adam, AdamW, Adadelta at their documented
defaults (dnnbench/optimizers.py). The note's claim: adaptive methods are robust and about equal,
Adam often best; plain SGD converges more slowly."""

SUITE = "optimizers"


def test_optimizers(planned, measure):
    measure(planned)
