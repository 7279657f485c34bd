"""CIFAR-10's loading code on a small data set in CIFAR-10's own file format, written by the test (the
real one is not on these machines), and ResNet-18 training a step on it."""

import pickle

import numpy as np
import pytest
import torch

from dnnbench.definitions import cifar10
from dnnbench.definitions.data import DataDamaged, DataMissing

PER_BATCH = 20


def write_cifar(root, hostile: bytes | None = None):
    """root/cifar-10-batches-py/ as CIFAR-10 ships it: five training batches, a test batch, the meta file
    (pickled by Python 3 here; the real files are Python 2 pickles of the same dicts)."""
    rng = np.random.default_rng(0)
    folder = root / cifar10.FOLDER
    folder.mkdir(parents=True)
    written = {}
    for name in (*cifar10.TRAIN, cifar10.TEST):
        data = rng.integers(0, 256, size=(PER_BATCH, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=PER_BATCH)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(PER_BATCH)]}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(batch, protocol=4))
        written[name] = (data, labels)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=4))
    if hostile is not None:
        (folder / cifar10.TEST).write_bytes(hostile)
    return written


def test_splits_hold_the_files_pixels_and_labels(tmp_path):
    written = write_cifar(tmp_path)
    splits = cifar10.splits(str(tmp_path))
    n = PER_BATCH * len(cifar10.TRAIN)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (n - n // 10, n // 10, PER_BATCH)
    assert splits.train.x.shape[1:] == (3, 32, 32) and splits.train.y.dtype == torch.int64
    test_data, test_labels = written[cifar10.TEST]
    expected = torch.from_numpy(test_data.reshape(-1, 3, 32, 32)).float() / 255
    assert torch.equal(splits.test.x, expected) and splits.test.y.tolist() == test_labels
    every = np.concatenate([written[b][0] for b in cifar10.TRAIN]).reshape(-1, 3, 32, 32)
    seen = torch.cat([splits.train.x, splits.val.x]) * 255
    assert sorted(map(bytes, seen.round().to(torch.uint8).numpy())) == sorted(map(bytes, every))


def test_a_batch_that_runs_code_is_refused_in_one_line(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    write_cifar(tmp_path, hostile=pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataDamaged, match=r"builtins\.print is not allowed in a CIFAR-10 batch"):
        cifar10.splits.__wrapped__(str(tmp_path))


def test_no_cifar_anywhere_offline_is_one_line_and_a_skip_reason(tmp_path, monkeypatch):
    from dnnbench.definitions.cases import Case
    from dnnbench.definitions.plan import skip_reason

    monkeypatch.setenv("DNNBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DNNBENCH_DATA", raising=False)
    with pytest.raises(DataMissing, match="CIFAR-10 not found") as info:
        cifar10.locate(tmp_path / "empty", download=False)
    assert "\n" not in str(info.value)
    reason = skip_reason(Case(workload="resnet18-cifar10"), tmp_path / "empty")
    assert reason is not None and reason.startswith("CIFAR-10 is not on this machine")


def test_resnet18_trains_on_the_written_cifar(tmp_path):
    from dnnbench.definitions.cases import Case
    from dnnbench.measurement import engine

    write_cifar(tmp_path)
    case = Case(workload="resnet18-cifar10", loader="device", batch_size=8, train_samples=16, eval_samples=8,
                epochs=1, warmup_steps=0)  # fmt: skip
    record = engine.run(case, seed=1, data_dir=str(tmp_path))
    assert record.status == "ok", record.reason
    assert record.metrics["steps"] == 2 and 0 <= record.metrics["final_test_accuracy"] <= 1
    assert record.metrics["flops_per_sample"] > 1e9  # ResNet-18 at 32×32: about 0.56 GFLOP forward alone
