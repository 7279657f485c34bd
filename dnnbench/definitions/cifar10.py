"""CIFAR-10 in its own file format (the python version: data_batch_1..5 and test_batch, pickled dicts of a
uint8 array N×3072 and a list of labels), read from a folder in torchvision's layout
(<root>/cifar-10-batches-py/) without torchvision's md5 list, so that a copy or a small file of the same
format reads alike; or downloaded by torchvision where the network allows.

Sources, in order: --data-dir / $DNNBENCH_DATA, then the cache (where a download goes).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from dnnbench.definitions.data import DataDamaged, DataMissing, Split, Splits, cache_root
from dnnbench.definitions.safe_pickle import ArraysOnly

FOLDER = "cifar-10-batches-py"
TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = "test_batch"
SPLIT_SEED = 0  # the validation rows held out of the training batches: the same for every case and seed
VAL_FRACTION = 0.1  # 5,000 of the 50,000


class _CifarPickle(ArraysOnly):
    what = "a CIFAR-10 batch"


def _roots(data_dir: str | os.PathLike | None) -> list[Path]:
    user = data_dir or os.environ.get("DNNBENCH_DATA")
    return [r for r in (Path(user) if user else None, cache_root() / "download") if r is not None]


def find(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The root whose cifar-10-batches-py/ holds every batch file, or None."""
    for root in _roots(data_dir):
        if all((root / FOLDER / name).is_file() for name in (*TRAIN, TEST)):
            return root
    return None


def locate(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """find(), else torchvision's download into the cache; DataMissing (one line) when neither works."""
    root = find(data_dir)
    if root is not None:
        return root
    tried = f"looked for {FOLDER}/ in {', '.join(str(r) for r in _roots(data_dir))}"
    if download:
        try:
            import torchvision

            torchvision.datasets.CIFAR10(str(cache_root() / "download"), train=True, download=True)
            return cache_root() / "download"
        except Exception:  # offline: every mirror fails with its own error
            tried += "; torchvision's download failed"
    raise DataMissing(
        f"CIFAR-10 not found ({tried}); put torchvision's {FOLDER}/ folder in a folder passed as --data-dir "
        "or DNNBENCH_DATA"
    )


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images N×3×32×32 uint8, labels N int64) of one batch file; DataDamaged when it is not one."""
    try:
        with open(path, "rb") as f:
            batch = _CifarPickle(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:  # not a pickle, a forbidden global, a missing key
        raise DataDamaged(f"{path} is not a CIFAR-10 batch ({type(exc).__name__}: {exc})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataDamaged(f"{path} holds {data.shape} images and {len(labels)} labels, not N×3072 and N")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataDamaged(f"{path} has labels outside 0-9")
    return data.reshape(-1, 3, 32, 32), labels


@functools.lru_cache(maxsize=2)
def splits(root: str) -> Splits:
    """Train / validation (10% of the training batches, held out by a fixed generator) / test, as float
    tensors in [0, 1] (N, 3, 32, 32)."""
    import torch

    parts = [read_batch(Path(root) / FOLDER / name) for name in TRAIN]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = read_batch(Path(root) / FOLDER / TEST)
    as_split = lambda x, y: Split(torch.from_numpy(x).float() / 255.0, torch.from_numpy(y))  # noqa: E731
    n_val = int(len(y_train) * VAL_FRACTION)
    perm = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(SPLIT_SEED)).numpy()
    val, train = perm[:n_val], perm[n_val:]
    return Splits(
        train=as_split(x_train[train], y_train[train]),
        val=as_split(x_train[val], y_train[val]),
        test=as_split(x_test, y_test),
    )
