import pytest
import torch
from torch import nn

from dnnbench.definitions.models import build_mlp, weight_matrices
from dnnbench.definitions.optimizers import OPTIMIZERS, build_optimizer
from dnnbench.definitions.workloads import WORKLOADS, get_workload


def test_targets_point_the_right_way():
    assert get_workload("fashion-mnist").reached(0.85) and not get_workload("fashion-mnist").reached(0.849)
    assert get_workload("cubic").reached(0.019) and not get_workload("cubic").reached(0.021)
    assert not get_workload("synthetic").reached(1.0)  # no target at all


def test_every_workload_states_its_budget_and_cadence():
    for w in WORKLOADS.values():
        assert w.epochs >= 1 and w.max_seconds > 0 and w.eval_every >= 1 and w.n_train > 0


def test_note_mnist_dnn_shape():
    model = build_mlp(784, (500,), 10)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 500), (500, 10)]
    assert sum(p.numel() for p in model.parameters()) == 784 * 500 + 500 + 500 * 10 + 10


def test_batchnorm_and_dropout_placement():
    model = build_mlp(784, (64, 32), 10, batchnorm=True, dropout_p=0.2)
    kinds = [type(m).__name__ for m in model]
    assert kinds == [
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Dropout",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Dropout",
        "Linear",
    ]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_takes_a_step(name):
    torch.manual_seed(0)
    model = build_mlp(4, (8,), 2)
    opt = build_optimizer(name, model.parameters(), lr=0.01, l2=None)
    before = [p.detach().clone() for p in model.parameters()]
    nn.CrossEntropyLoss()(model(torch.randn(16, 4)), torch.randint(0, 2, (16,))).backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_note_hyperparameters():
    model = build_mlp(4, (8,), 2)
    assert build_optimizer("momentum", model.parameters(), 0.01, None).defaults["momentum"] == 0.8
    assert build_optimizer("rmsprop", model.parameters(), 0.01, None).defaults["alpha"] == 0.9
    # the MNIST DNN passes only lr, so torch's betas; the race sets (0.9, 0.99)
    assert build_optimizer("adam", model.parameters(), 0.01, None).defaults["betas"] == (0.9, 0.999)
    assert build_optimizer("adam", model.parameters(), 0.01, None, beta2=0.99).defaults["betas"] == (0.9, 0.99)
    assert build_optimizer("nesterov", model.parameters(), 0.01, None).defaults["nesterov"] is True


def test_l2_decays_weight_matrices_not_biases():
    model = build_mlp(4, (8,), 2, batchnorm=True)
    opt = build_optimizer("sgd", model.parameters(), 0.1, l2=1e-3)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 1e-3 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(p) for p in weight_matrices(model)}
    assert all(p.ndim == 1 for p in plain["params"])
