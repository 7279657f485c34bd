"""Random tensors with random labels: throughput without a data set (nothing to converge to)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dnnbench.definitions.tasks import TASKS
from dnnbench.definitions.workloads.mlp import MLPWorkload

if TYPE_CHECKING:
    from dnnbench.definitions.data import Splits

SYNTHETIC_SEED = 0


@dataclass(frozen=True, kw_only=True)
class RandomTensors(MLPWorkload):
    """The input width is an axis of its own (`features`): the data has no shape to keep."""

    @property
    def default_features(self) -> int | None:
        return self.in_features

    def make_splits(self, protocol: str, train_samples: int | None, features: int | None, data_dir) -> Splits:
        n_train = train_samples or self.n_train
        return _random_splits(n_train, self.n_val, self.n_test, features or self.in_features, self.out_features)


@functools.lru_cache(maxsize=2)
def _random_splits(n_train: int, n_val: int, n_test: int, features: int, classes: int) -> Splits:
    import torch

    from dnnbench.definitions.data import Split, Splits

    gen = torch.Generator().manual_seed(SYNTHETIC_SEED)

    def make(n: int) -> Split:
        return Split(torch.randn(n, features, generator=gen), torch.randint(0, classes, (n,), generator=gen))

    return Splits(train=make(n_train), val=make(n_val), test=make(n_test))


SYNTHETIC = RandomTensors(
    name="synthetic",
    task=TASKS["classification"],
    target=None,
    target_why="random labels: there is nothing to converge to",
    in_features=28 * 28,
    out_features=10,
    hidden=(500,),
    epochs=2,
    max_seconds=60.0,
    eval_every=10_000,
    n_train=10_000,
    n_val=2_000,
    n_test=2_000,
)
