"""The study note's claims (docs/note.md), each judged on a run's records.

Every verdict is computed from the records: each part of a claim compares matched cases seed by seed and
decides only when the interval over seeds lies on one side of the claim's threshold (verdicts.py). A claim
the run cannot test says which run would. The note's protocol is preferred where a run has both.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from dnnbench.results.claims.batch import claim_full_batch, claim_minibatch, claim_sgd, claim_sweet_spot
from dnnbench.results.claims.pipeline import claim_mnist, claim_pinned, claim_workers
from dnnbench.results.claims.regularization import (
    claim_batchnorm,
    claim_dropout,
    claim_feature_drift,
    claim_gap,
    claim_weights,
)
from dnnbench.results.claims.training import (
    claim_early_stopping,
    claim_gradient_noise,
    claim_optimizers,
    claim_shuffle,
    claim_vanishing,
)
from dnnbench.results.claims.verdicts import (
    INCONCLUSIVE,
    NOT_MEASURABLE,
    NOT_SUPPORTED,
    SUPPORTED,
    Claim,
    Part,
)

__all__ = ["CHECKS", "INCONCLUSIVE", "NOT_MEASURABLE", "NOT_SUPPORTED", "SUPPORTED", "Claim", "Part", "evaluate_claims"]

# In the note's order. claim_batchnorm also reads the validation curves.
CHECKS: list[Callable[..., Claim]] = [
    claim_minibatch,
    claim_full_batch,
    claim_sgd,
    claim_optimizers,
    claim_gap,
    claim_batchnorm,
    claim_pinned,
    claim_workers,
    claim_mnist,
    claim_vanishing,
    claim_weights,
    claim_shuffle,
    claim_early_stopping,
    claim_gradient_noise,
    claim_sweet_spot,
    claim_feature_drift,
    claim_dropout,
]


def evaluate_claims(frame: pd.DataFrame, val: pd.DataFrame) -> list[Claim]:
    """Every claim of the note, in its order, judged on this run's records."""
    return [check(frame, val) if check is claim_batchnorm else check(frame) for check in CHECKS]
