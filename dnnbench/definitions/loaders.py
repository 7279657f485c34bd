"""The loader kinds' registry: each kind says what it is, when a case cannot use it, how fast it feeds
relative to tensors in memory (the shard cost model) and how it is built. Case validation, the plan's
skip reasons, the shard balance, the engine's setup, the bare loop and the charts read this one table;
a new kind is one entry here (and its builder). torch is imported only when a loader is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dnnbench.definitions.workloads import Workload

if TYPE_CHECKING:
    import torch

    from dnnbench.definitions.data import Splits


class Case(Protocol):
    """What a loader's skip rule reads of a case (definitions/cases.Case, which validates by this table)."""

    @property
    def workload(self) -> str: ...
    @property
    def num_workers(self) -> int: ...
    @property
    def pin_memory(self) -> bool: ...


@dataclass(frozen=True)
class BuildOptions:
    """What every loader kind is built from, besides the data."""

    batch_size: int
    seed: int
    device: torch.device
    num_workers: int = 0
    pin_memory: bool = False
    drop_last: bool = False
    shard: tuple[int, int] = (0, 1)  # (rank, world): this rank's share of every epoch

    def data_loader_options(self) -> dict[str, Any]:
        """The options a torch DataLoader takes as they are."""
        return {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "drop_last": self.drop_last,
        }


@dataclass(frozen=True)
class LoaderKind:
    name: str
    meaning: str
    relative_rate: float  # samples/s relative to the tensor loader, for the shard cost model
    skip_reason: Callable[[Case, Workload], str | None]
    build: Callable[[Splits, BuildOptions], Iterable[Any]]


def _device_skip(case: Case, workload: Workload) -> str | None:
    if case.num_workers:
        return "the device loader slices resident tensors: it has no DataLoader workers"
    if case.pin_memory:
        return "the device loader keeps tensors on the device: there is nothing to pin"
    return None


def _torchvision_skip(case: Case, workload: Workload) -> str | None:
    if not workload.image_dataset:
        return f"the torchvision loader needs an image data set and {case.workload} has none"
    return None


def _never(case: Case, workload: Workload) -> str | None:
    return None


def _build_device(splits: Splits, o: BuildOptions) -> Iterable[Any]:
    from dnnbench.definitions.data import DeviceBatches, seeded_generator

    return DeviceBatches(splits.train, o.batch_size, o.device, seeded_generator(o.seed), o.drop_last, o.shard)


def _build_tensor(splits: Splits, o: BuildOptions) -> Iterable[Any]:
    from torch.utils.data import TensorDataset

    from dnnbench.definitions.data import data_loader

    return data_loader(TensorDataset(splits.train.x, splits.train.y), o.seed, o.shard, **o.data_loader_options())


def _build_torchvision(splits: Splits, o: BuildOptions) -> Iterable[Any]:
    from torch.utils.data import Subset

    from dnnbench.core.errors import BadInput
    from dnnbench.definitions.data import data_loader

    if splits.image_dataset is None or splits.train_indices is None:
        raise BadInput("the torchvision loader needs an image data set (fashion-mnist or mnist)")
    dataset = Subset(splits.image_dataset, splits.train_indices.tolist())
    return data_loader(dataset, o.seed, o.shard, **o.data_loader_options())


LOADER_KINDS: dict[str, LoaderKind] = {
    kind.name: kind
    for kind in (
        LoaderKind(
            "torchvision",
            "the note's pipeline: dataset item → PIL image → ToTensor, collated by a DataLoader",
            1 / 3,
            _torchvision_skip,
            _build_torchvision,
        ),
        LoaderKind("tensor", "preprocessed tensors through TensorDataset and a DataLoader", 1.0, _never, _build_tensor),
        LoaderKind(
            "device",
            "tensors resident on the device, reshuffled and sliced: no DataLoader",
            1.0,
            _device_skip,
            _build_device,
        ),
    )
}


def make_loader(kind: str, splits: Splits, options: BuildOptions) -> Iterable[Any]:
    """An iterable of (x, y) batches, one pass per epoch (this rank's share with options.shard). The two
    DataLoader kinds shuffle with the same seeded generator, so they yield identical batches."""
    return LOADER_KINDS[kind].build(splits, options)
