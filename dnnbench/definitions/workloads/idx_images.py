"""28×28 greyscale data sets in IDX files (MNIST, Fashion-MNIST), and the note's DNN (an MLP, 784-500-10) on them."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dnnbench.definitions.tasks import TASKS
from dnnbench.definitions.workloads.base import Workload
from dnnbench.definitions.workloads.mlp import MLPWorkload

if TYPE_CHECKING:
    from dnnbench.definitions.data import Splits


@dataclass(frozen=True, kw_only=True)
class IdxImages(Workload):
    """The data of a workload on an IDX data set: the four files found by data.locate (a folder, the
    Debian package, the cache, a download); 10,000 of the 60,000 training images held out for validation
    (all 60,000 under the note's protocol, which evaluates on the test set). Its model is the subclass's."""

    dataset: str  # the IDX data set's name (data.locate): mnist, fashion-mnist
    n_train: int = 50_000  # the 60,000 training images less the validation split
    n_val: int = 10_000
    n_test: int = 10_000
    hflip: bool = False  # the image-file loader may flip its images (clothes: yes; digits: no)
    image_dataset: bool = True
    image_files: bool = True

    def make_splits(self, protocol: str, train_samples: int | None, features: int | None, data_dir) -> Splits:
        from dnnbench.definitions import data

        return data.image_splits(self.dataset, str(data.locate(self.dataset, data_dir)), protocol, self.hflip)

    def missing(self, data_dir: str | os.PathLike | None) -> str | None:
        from dnnbench.definitions import data

        if data.available(self.dataset, data_dir):
            return None
        return (
            f"the {self.dataset} data set is not on this machine (offline): put its IDX files in a "
            "folder passed as --data-dir or DNNBENCH_DATA to include it"
        )

    def require(self, data_dir: str | os.PathLike | None) -> str:
        from dnnbench.definitions import data

        return str(data.locate(self.dataset, data_dir))  # raises DataMissing (exit 2) when absent


@dataclass(frozen=True, kw_only=True)
class IdxImageMLP(IdxImages, MLPWorkload):
    """An MLP on the flattened images: the note's DNN."""

    activations: tuple[str, ...] = MLPWorkload.activations  # IdxImages would hand down the base's default


FASHION_MNIST = IdxImageMLP(
    name="fashion-mnist",
    dataset="fashion-mnist",
    hflip=True,
    task=TASKS["classification"],
    target=0.85,
    target_why=(
        "published MLP reference points are 0.87-0.88 test accuracy; 0.85 on validation is reached by the "
        "note's Adam config within its first or second epoch, so it separates settings by speed rather than "
        "marking only the best"
    ),
    in_features=28 * 28,
    out_features=10,
    hidden=(500,),
    epochs=5,
    max_seconds=300.0,
    eval_every=10_000,
    note_train=60_000,
)

# The same net, splits and budgets on MNIST; only the data and the target differ.
MNIST = replace(
    FASHION_MNIST,
    name="mnist",
    dataset="mnist",
    note_part="dnn",
    hflip=False,
    target=0.97,
    target_why="AlgoPerf's MNIST target (validation accuracy)",
)

# The note's deep net: its figure has three hidden layers, and its first section says that their
# gradients vanish toward the input through sigmoid activations (the `activation` axis).
DEEP_FASHION_MNIST = replace(
    FASHION_MNIST,
    name="deep-fashion-mnist",
    note_train=None,  # not one of the note's experiments: it has no protocol of the note's
    hidden=(256, 256, 256),
    target_why="the same target as the note's one-hidden-layer MLP on the same data, so the two compare: "
    + FASHION_MNIST.target_why,
)
