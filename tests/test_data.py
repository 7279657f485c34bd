import shutil

import pytest
import torch

from dnnbench.definitions import data
from dnnbench.definitions.data import DataMissing, locate
from dnnbench.definitions.loaders import BuildOptions, make_loader
from dnnbench.definitions.workloads import get_workload

FMNIST = get_workload("fashion-mnist")


def test_splits_are_50k_10k_10k_and_disjoint(fashion_root):
    splits = FMNIST.load_splits()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (50_000, 10_000, 10_000)
    assert splits.train.x.shape[1:] == (1, 28, 28)
    assert float(splits.train.x.min()) >= 0.0 and float(splits.train.x.max()) <= 1.0
    # validation is held out of the training set: no image appears in both
    train_rows = {bytes(r) for r in (splits.train.x[:5000] * 255).round().to(torch.uint8).flatten(1).numpy()}
    val_rows = [bytes(r) for r in (splits.val.x * 255).round().to(torch.uint8).flatten(1).numpy()]
    assert sum(r in train_rows for r in val_rows) < 10  # Fashion-MNIST has a few exact duplicate images
    assert set(splits.train.y.unique().tolist()) == set(range(10))


def test_split_does_not_depend_on_the_case_seed(fashion_root):
    a, b = FMNIST.load_splits(), FMNIST.load_splits(train_samples=100)
    assert torch.equal(a.train.x[:100], b.train.x)
    assert torch.equal(a.val.y, b.val.y)


def test_torchvision_and_tensor_loaders_yield_identical_batches(fashion_root):
    splits = FMNIST.load_splits(train_samples=300)
    cpu = torch.device("cpu")
    tv = make_loader("torchvision", splits, BuildOptions(64, seed=3, device=cpu))
    tensor = make_loader("tensor", splits, BuildOptions(64, seed=3, device=cpu))
    for (x1, y1), (x2, y2) in zip(tv, tensor, strict=True):
        assert torch.equal(y1, y2)
        assert torch.allclose(x1, x2)  # PIL → ToTensor equals the preprocessed tensor


def test_device_loader_visits_every_sample_once_per_epoch(fashion_root):
    splits = FMNIST.load_splits(train_samples=250)
    loader = make_loader("device", splits, BuildOptions(100, seed=1, device=torch.device("cpu")))
    assert len(loader) == 3
    for _ in range(2):
        sizes, labels = [], []
        for x, y in loader:
            sizes.append(len(x))
            labels.append(y)
        assert sizes == [100, 100, 50]
        assert torch.equal(torch.cat(labels).sort().values, splits.train.y.sort().values)


def test_debian_files_are_staged_into_torchvision_layout(tmp_path, monkeypatch):
    debian = data.IDX_DATA_SETS["fashion-mnist"].debian_dir
    if not debian.exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed here (make data installs it)")
    monkeypatch.setenv("DNNBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DNNBENCH_DATA", raising=False)
    root = locate("fashion-mnist", download=False)
    assert root.is_relative_to(tmp_path / "cache")
    raw = root / "FashionMNIST" / "raw"
    assert (raw / "train-images-idx3-ubyte").stat().st_size == 47_040_016
    assert not list(raw.glob("*.partial"))


def test_data_dir_with_flat_idx_files_comes_first(tmp_path, monkeypatch, fashion_root):
    # A user's folder holding the four IDX files (uncompressed; the Debian test covers .gz).
    user = tmp_path / "mine"
    user.mkdir()
    for f in data.IDX_FILES:
        shutil.copyfile(fashion_root / "FashionMNIST" / "raw" / f, user / f)
    monkeypatch.setenv("DNNBENCH_CACHE", str(tmp_path / "cache"))
    root = locate("fashion-mnist", data_dir=user, download=False)
    assert root.is_relative_to(tmp_path / "cache") and "mine" in root.name
    assert locate("fashion-mnist", download=False) != root  # the Debian copy stages elsewhere
    assert data.available("fashion-mnist", user)


def test_missing_mnist_offline_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DNNBENCH_CACHE", str(tmp_path / "empty"))
    with pytest.raises(DataMissing) as info:
        locate("mnist", data_dir=tmp_path / "nothing-here", download=False)
    message = str(info.value)
    assert "mnist data set not found" in message and "--data-dir" in message
    # the hint names another data set only where this machine has one (Debian's Fashion-MNIST)
    assert ("use a data set this machine has (fashion-mnist)" in message) == data.IDX_DATA_SETS[
        "fashion-mnist"
    ].debian_dir.exists()
    assert "\n" not in message


def test_two_runs_staging_the_same_files_at_once_both_succeed(tmp_path):
    # Two benchmark runs on one machine (two CI jobs, a run beside `make data`) share the cache: each must
    # stage into files of its own and rename them into place, never write into the other's half-copy.
    import gzip
    import os
    import threading

    payload = os.urandom(8 << 20)
    src = tmp_path / "train-images-idx3-ubyte.gz"
    src.write_bytes(gzip.compress(payload, compresslevel=1))
    errors: list[BaseException] = []

    def stage() -> None:
        try:
            data._stage({"train-images-idx3-ubyte": src}, tmp_path / "root", "mnist")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=stage) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raw = tmp_path / "root" / "MNIST" / "raw"
    assert errors == []
    assert (raw / "train-images-idx3-ubyte").read_bytes() == payload
    assert [p.name for p in raw.iterdir()] == ["train-images-idx3-ubyte"]  # no half-copy left behind


def test_png_files_hold_the_idx_pixels_under_their_label(fashion_root):
    import numpy as np
    from PIL import Image

    splits = FMNIST.load_splits()
    folder = data.png_folder(splits.image_files)
    train_set = data._torchvision_class("fashion-mnist")(str(fashion_root), train=True, download=False)
    for row in (0, 12_345, 59_999):
        label = int(train_set.targets[row])
        png = np.array(Image.open(folder / str(label) / f"{row:05d}.png"))
        assert np.array_equal(png, train_set.data[row].numpy())


def test_image_file_loader_visits_every_training_sample_once_per_epoch(fashion_root):
    splits = FMNIST.load_splits(train_samples=300)
    loader = make_loader("imagefiles", splits, BuildOptions(64, seed=2, device=torch.device("cpu")))
    labels, shapes = [], set()
    for x, y in loader:
        labels.append(y)
        shapes.add(tuple(x.shape[1:]))
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert shapes == {(1, 28, 28)}
    assert torch.equal(torch.cat(labels).sort().values, splits.train.y.sort().values)
