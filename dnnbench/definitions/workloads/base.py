"""The Workload interface (after AlgoPerf's): a workload owns its data, its model, its task and its target.

The engine, the bare loop, the planner and the views call these methods and read these fields; none of
them branches on a workload's name. A new workload is a subclass in a module of this package (or a
plug-in) and an entry in the registry.
"""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dnnbench.definitions.tasks import Task

if TYPE_CHECKING:
    from torch import nn

    from dnnbench.definitions.data import Splits


@dataclass(frozen=True)
class ModelChoices:
    """What a case asks of a workload's model; where each goes is the workload's to decide."""

    widths: tuple[int, ...]  # hidden sizes or channels (the case's, else the workload's `hidden`)
    features: int | None = None  # the input width, where the workload lets a case set it
    batchnorm: bool = False
    dropout_p: float | None = None  # None: no Dropout
    activation: str = "relu"  # the hidden layers' nonlinearity (models.ACTIVATIONS)


@dataclass(frozen=True, kw_only=True)
class Workload(ABC):
    """What a workload is, whatever the case: its task, target and budgets, and how its data and model
    are made. Subclasses fill in `make_splits` and `build_model`."""

    name: str
    task: Task
    target: float | None  # the evaluation metric to reach; None: nothing to converge to
    target_why: str  # where the target comes from (a reference's figure, a measurement)
    hidden: tuple[int, ...]  # the model's default widths (hidden sizes or channels); a case may override
    epochs: int  # default budget in epochs
    max_seconds: float  # default budget in training seconds (evaluation excluded)
    eval_every: int  # samples seen between validation evaluations
    n_train: int  # training split (validation is held out of the original training set)
    n_val: int
    n_test: int
    image_dataset: bool = False  # offers its training items as a torchvision dataset (PIL → ToTensor)
    image_files: bool = False  # offers its training images as PNG files (the image-file loader)
    note_train: int | None = None  # training examples under the note's protocol; None: not the note's
    note_evaluates: str = "test"  # the split the note evaluates every epoch: "test", or "train" (the race)
    note_part: str | None = None  # which of the note's experiments it is: "dnn" (its MNIST DNN), "race"
    places_batchnorm: bool = True  # its model puts BatchNorm somewhere when a case asks (else: skipped)
    places_dropout: bool = True  # the same for Dropout
    convolutional: bool = False  # takes NCHW images into convolutions: channels_last applies
    activations: tuple[str, ...] = ("relu",)  # the nonlinearities its model can be built with
    # seconds per training sample relative to the note's MLP at the same batch size; only the time-left
    # estimate and shard balance read it (definitions.shards.expected_cost), never a measurement
    relative_cost: float = 1.0

    # --- behaviour ---------------------------------------------------------------------------------

    @abstractmethod
    def make_splits(self, protocol: str, train_samples: int | None, features: int | None, data_dir) -> Splits:
        """Train / validation / test splits as in-memory tensors (implementations cache them)."""

    @abstractmethod
    def build_model(self, choices: ModelChoices) -> nn.Module:
        """The net, with BatchNorm and Dropout where this workload's model puts them."""

    def make_loss(self) -> nn.Module:
        """The training loss: the task's (cross-entropy, MSE), unless the workload brings its own."""
        return self.task.make_loss()

    def missing(self, data_dir: str | os.PathLike | None) -> str | None:
        """Why this workload's data is not on this machine, or None (cheap: used to plan skips)."""
        return None

    def require(self, data_dir: str | os.PathLike | None) -> str:
        """Where the data is, fetching it first if need be; DataMissing (one line, exit 2) when it cannot
        be found or fetched."""
        return "made in memory"

    @property
    def default_features(self) -> int | None:
        """The input width a case may change with `features`; None: the data fixes it."""
        return None

    # --- derived -----------------------------------------------------------------------------------

    def load_splits(
        self,
        train_samples: int | None = None,
        features: int | None = None,
        data_dir: str | os.PathLike | None = None,
        protocol: str = "benchmark",
    ) -> Splits:
        """The splits, the training split cut to `train_samples`. Under the note's protocol `val` is what
        the note evaluates during training (the test set; the race: its training data)."""
        splits = self.make_splits(protocol, train_samples, features, data_dir)
        if train_samples is None or train_samples >= len(splits.train):
            return splits
        indices = None if splits.train_indices is None else splits.train_indices[:train_samples]
        return dataclasses.replace(splits, train=splits.train.head(train_samples), train_indices=indices)

    @property
    def in_note(self) -> bool:
        return self.note_train is not None

    def train_size(self, protocol: str) -> int:
        return self.note_train if protocol == "note" and self.note_train else self.n_train

    @property
    def target_metric(self) -> str:
        return f"val_{self.task.metric}"

    def target_metric_under(self, protocol: str) -> str:
        """What the target is measured on: the validation split, or under the note's protocol the split
        the note evaluates every epoch."""
        return self.target_metric if protocol != "note" else f"{self.note_evaluates}_{self.task.metric}"

    def reached(self, value: float) -> bool:
        """Whether an evaluation metric meets the target (higher accuracy, lower MSE: the task says)."""
        return self.task.reached(value, self.target)
