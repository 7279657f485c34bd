"""The loader kinds' registry: each kind says what it is, when a case cannot use it, how fast it feeds
relative to tensors in memory (the shard cost model) and how it is built. Case validation, the plan's
skip reasons, the shard balance, the engine's setup, the bare loop and the charts read this one table;
a new kind is one entry here (and its builder). torch is imported only when a loader is built.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dnnbench.definitions.workloads import Workload

if TYPE_CHECKING:
    import torch

    from dnnbench.definitions.data import ImageFiles, Splits


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
    shuffle: bool = True  # False: every epoch in the data's stored order

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


def _files_skip(case: Case, workload: Workload) -> str | None:
    if not workload.image_files:
        return f"the image-file loader needs a data set of images and {case.workload} has none"
    return None


def _never(case: Case, workload: Workload) -> str | None:
    return None


def _build_device(splits: Splits, o: BuildOptions) -> Iterable[Any]:
    from dnnbench.definitions.data import DeviceBatches, seeded_generator

    return DeviceBatches(
        splits.train, o.batch_size, o.device, seeded_generator(o.seed), o.drop_last, o.shard, o.shuffle
    )


def _build_tensor(splits: Splits, o: BuildOptions) -> Iterable[Any]:
    from torch.utils.data import TensorDataset

    from dnnbench.definitions.data import data_loader

    return data_loader(
        TensorDataset(splits.train.x, splits.train.y), o.seed, o.shard, o.shuffle, **o.data_loader_options()
    )


def _build_torchvision(splits: Splits, o: BuildOptions) -> Iterable[Any]:
    from torch.utils.data import Subset

    from dnnbench.core.errors import BadInput
    from dnnbench.definitions.data import data_loader

    if splits.image_dataset is None or splits.train_indices is None:
        raise BadInput("the torchvision loader needs an image data set (fashion-mnist or mnist)")
    dataset = Subset(splits.image_dataset, splits.train_indices.tolist())
    return data_loader(dataset, o.seed, o.shard, o.shuffle, **o.data_loader_options())


def _build_image_files(splits: Splits, o: BuildOptions) -> Iterable[Any]:
    """PNG files through torchvision's ImageFolder: decoded by PIL per sample and augmented as people
    train (a random 28×28 crop of the image padded by 2, a horizontal flip where the data set allows it).
    No Normalize: every loader's model is evaluated on the same [0, 1] tensors."""
    from torch.utils.data import Subset

    from dnnbench.core.errors import BadInput
    from dnnbench.definitions.data import data_loader

    if splits.image_files is None or splits.train_indices is None:
        raise BadInput("the image-file loader needs a data set of images (fashion-mnist or mnist)")
    folder, positions = _image_folder(splits.image_files)
    rows = [positions[int(r)] for r in splits.train_indices]
    return data_loader(Subset(folder, rows), o.seed, o.shard, o.shuffle, **o.data_loader_options())


@functools.lru_cache(maxsize=4)
def _image_folder(files: ImageFiles) -> tuple[Any, dict[int, int]]:
    """(the ImageFolder over the data set's PNG files, IDX row → its position in the folder)."""
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    from dnnbench.definitions.data import png_folder

    steps: list[Any] = [T.RandomCrop(28, padding=2)]
    if files.hflip:
        steps.append(T.RandomHorizontalFlip())
    steps.append(T.ToTensor())
    folder = ImageFolder(str(png_folder(files)), transform=T.Compose(steps), loader=_grey)
    positions = {int(Path(path).stem): i for i, (path, _) in enumerate(folder.samples)}
    return folder, positions


def _grey(path: str) -> Any:
    """PIL's decode of a greyscale PNG (ImageFolder's default loader converts to RGB)."""
    from PIL import Image

    with open(path, "rb") as f:
        return Image.open(f).convert("L")


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
        LoaderKind(
            "imagefiles",
            "PNG files through ImageFolder: PIL decodes each sample, random crop and flip augment it",
            1 / 6,
            _files_skip,
            _build_image_files,
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
