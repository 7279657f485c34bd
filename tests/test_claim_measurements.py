"""What the note's newer claims read, measured by the engine on small slices of real data: shuffling off,
early stopping, stopping at the target, a poor start, gradient noise, weight figures, a hidden layer's
drift and what a Dropout layer did."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dnnbench.core.errors import BadInput
from dnnbench.definitions.cases import Case, parse_overrides
from dnnbench.definitions.data import DeviceBatches, Split
from dnnbench.measurement.engine import run
from dnnbench.measurement.inspect import (
    HiddenDrift,
    add_gradient_noise,
    note_dropout_example,
    weight_figures,
)
from dnnbench.measurement.training import Training
from tests.conftest import tiny


def first_batch_labels(case: Case, seed: int) -> torch.Tensor:
    _, y = next(iter(Training(case, seed=seed).setup.loader))
    return y


@pytest.mark.parametrize("loader", ["tensor", "device"])
def test_without_shuffling_every_seed_sees_the_same_first_batch(loader):
    stored = tiny(loader=loader, shuffle=False)
    assert torch.equal(first_batch_labels(stored, 1), first_batch_labels(stored, 2))
    shuffled = tiny(loader=loader)
    assert not torch.equal(first_batch_labels(shuffled, 1), first_batch_labels(shuffled, 2))


def test_device_batches_keep_the_stored_order_when_shuffle_is_off():
    split = Split(torch.arange(10.0).unsqueeze(1), torch.arange(10))
    batches = DeviceBatches(split, 4, torch.device("cpu"), torch.Generator().manual_seed(0), shuffle=False)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_early_stopping_ends_when_the_validation_loss_stops_falling():
    case = tiny(epochs=40, eval_every=250, patience=2, train_samples=300, lr=0.01)
    result = run(case, seed=1)
    losses = [p["val_loss"] for p in result.curves["val"]]
    assert result.status == "ok" and "stopped early" in result.reason, result.reason
    assert result.metrics["epochs_completed"] < 40
    best = losses.index(min(losses))
    assert len(losses) - 1 - best == 2  # stopped at the second evaluation without a new best


def test_stop_at_target_ends_at_the_first_evaluation_that_reaches_it():
    case = Case(workload="cubic", protocol="note", batch_size=20, lr=0.01, epochs=10, stop_at_target=True)
    result = run(case, seed=1)
    assert result.target is not None and result.target.reached
    assert result.metrics["epochs_completed"] == pytest.approx(result.metrics["epochs_to_target"])
    assert result.metrics["epochs_completed"] < 10


def test_init_scale_zero_starts_from_zero_weights_and_keeps_the_biases():
    setup = Training(tiny(hidden=(32, 32), init_scale=0.0), seed=1).setup
    assert all(float(w.abs().sum()) == 0.0 for w in setup.weights)
    biases = [m.bias for m in setup.model.modules() if isinstance(m, nn.Linear)]
    assert all(float(b.abs().sum()) > 0 for b in biases)


def test_gradient_noise_has_the_annealed_variance():
    model = nn.Linear(200, 200)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: only the gradients change
    add_gradient_noise(model, optimizer, eta=0.3)
    for t in range(3):
        optimizer.zero_grad()
        (model(torch.zeros(1, 200)).sum() * 0.0).backward()  # a zero gradient: what remains is the noise
        expected = (0.3 / (1 + t) ** 0.55) ** 0.5
        assert float(model.weight.grad.std()) == pytest.approx(expected, rel=0.03)
        optimizer.step()


def test_weight_figures_read_the_norm_and_the_share_near_zero():
    weights = [torch.tensor([[3.0, 0.0], [0.0005, 4.0]]), torch.tensor([[0.0]])]
    figures = weight_figures(weights)
    assert figures["weight_norm"] == pytest.approx(5.0, abs=1e-3)
    assert figures["weight_sparsity"] == pytest.approx(3 / 5)


def test_hidden_drift_is_zero_for_a_model_that_did_not_move_and_grows_when_it_does():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    drift = HiddenDrift(model, torch.randn(100, 8))
    assert drift.step() == {}  # the first evaluation has nothing to compare with
    assert drift.step()["hidden_drift"] == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        model[0].bias += 1.0
    assert drift.step()["hidden_drift"] > 0.5


def test_a_dropout_case_records_what_its_layer_did_and_the_note_example():
    result = run(tiny(regularization="dropout", dropout_p=0.3), seed=1)
    assert result.metrics["dropout_zero_fraction"] == pytest.approx(0.3, abs=0.03)
    assert result.metrics["dropout_kept_scale"] == pytest.approx(1 / 0.7, rel=1e-4)
    assert result.resolved is not None and len(result.resolved["dropout_example_mask"]) == 25


def test_the_note_dropout_example_leaves_the_case_random_stream_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    note_dropout_example()
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("item", "message"),
    [("patience=0", "patience must be a positive integer"), ("grad_noise=-1", "grad_noise must be a finite number")],
)
def test_bad_values_of_the_new_fields_are_refused_by_name(item, message):
    with pytest.raises(BadInput, match=message):
        Case(**parse_overrides([item]))


def test_the_new_fields_show_in_the_case_id():
    case = Case(shuffle=False, patience=3, stop_at_target=True, grad_noise=0.3, init_scale=0.0)
    assert all(token in case.id for token in ("noshuffle", "es3", "untiltarget", "gnoise0.3", "init0"))


def test_the_note_dropout_example_does_not_reseed_the_gpu(monkeypatch):
    def refuse(seed: int) -> None:
        raise AssertionError("the note's example reseeded CUDA: every seed's GPU stream would restart at 1")

    monkeypatch.setattr(torch.cuda, "manual_seed_all", refuse)
    monkeypatch.setattr(torch.cuda, "manual_seed", refuse)
    assert note_dropout_example()["dropout_example_input"].startswith("-1.5256")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"protocol": "note", "workload": "mnist", "patience": 3}, "validates on the test set"),
        ({"world_size": 2, "stop_at_target": True}, "stop_at_target applies to one process"),
        ({"world_size": 2, "grad_noise": 0.3}, "grad_noise applies to one process"),
    ],
)
def test_stopping_rules_the_run_cannot_honour_are_refused(fields, message):
    with pytest.raises(BadInput, match=message):
        Case(**fields)
