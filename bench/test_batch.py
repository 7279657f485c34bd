"""Batch regimes: stochastic (batch 1), mini-batch (m) and batch gradient descent (the whole
training split). The note's claims: batch GD has the steadiest updates but pays a full pass per
step; SGD is fast per step but noisy; mini-batch balances the two and uses matrix math well.
The synthetic workload shows the same axis for pure compute, without data files."""

SUITE = "batch"


def test_batch(planned, measure):
    measure(planned)
