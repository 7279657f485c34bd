"""Regularization: none, BatchNorm, Dropout, both, L2 (weight decay on weight matrices) and L1
(λ·Σ|w| added to the loss). The note's claims: regularized nets generalize better (smaller
train/test gap) and BatchNorm speeds convergence."""

SUITE = "regularization"


def test_regularization(planned, measure):
    measure(planned)
