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


def test_lenet5_has_lenet5s_parameter_count():
    from dnnbench.definitions.models import build_lenet5

    model = build_lenet5(1, 28, (6, 16, 120, 84), 10)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    # conv1 156 + conv2 2,416 + fc 48,120 + 10,164 + 850: LeNet-5's 61,706 (LeCun et al. 1998, C1-F6 and output)
    assert sum(p.numel() for p in model.parameters()) == 61_706


def test_batchnorm2d_and_dropout2d_take_the_conv_feature_maps():
    from dnnbench.definitions.models import build_lenet5

    model = build_lenet5(1, 28, (6, 16, 120), 10, batchnorm=True, dropout_p=0.1)
    kinds = [type(m).__name__ for m in model]
    for conv in [i for i, k in enumerate(kinds) if k == "Conv2d"]:
        assert kinds[conv + 1 : conv + 4] == ["BatchNorm2d", "ReLU", "Dropout2d"]
    fc = kinds.index("Linear")
    assert kinds[fc + 1 : fc + 4] == ["BatchNorm1d", "ReLU", "Dropout"]


def test_the_activation_axis_builds_the_named_nonlinearity():
    model = build_mlp(784, (32, 32), 10, activation="sigmoid")
    assert [type(m).__name__ for m in model].count("Sigmoid") == 2 and not any(isinstance(m, nn.ReLU) for m in model)


def test_sigmoid_gradients_vanish_toward_the_input_and_relu_ones_do_not(fashion_root):
    # The note's claim about deep nets, as the record measures it: the first layer's gradient norm over
    # the last hidden layer's, on the deep MLP (three hidden layers of 256), plain SGD, 20 steps.
    from dnnbench.definitions.cases import Case
    from dnnbench.measurement import engine

    ratios = {}
    for activation in ("relu", "sigmoid"):
        case = Case(workload="deep-fashion-mnist", loader="device", optimizer="sgd", activation=activation,
                    train_samples=2000, eval_samples=500, epochs=1, eval_every=500)  # fmt: skip
        record = engine.run(case, seed=1)
        assert record.status == "ok", record.reason
        ratios[activation] = record.metrics["grad_norm_ratio"]
    assert ratios["sigmoid"] < 0.25 < ratios["relu"], ratios


def test_a_one_hidden_layer_net_records_no_gradient_ratio(fashion_root):
    from dnnbench.measurement import engine
    from tests.conftest import tiny

    record = engine.run(tiny(), seed=1)
    assert record.status == "ok" and record.metrics["grad_norm_ratio"] is None


def test_a_channels_last_case_lays_out_its_conv_weights_nhwc(fashion_root):
    from dnnbench.definitions.cases import Case
    from dnnbench.definitions.plan import skip_reason
    from dnnbench.measurement.training import Training

    base = Case(workload="lenet5-fashion-mnist", loader="device", train_samples=300, eval_samples=100, epochs=1)
    for layout, nhwc in (("contiguous", False), ("channels_last", True)):
        training = Training(base.replace(memory_format=layout), seed=1)
        conv2 = [m for m in training.setup.model if isinstance(m, nn.Conv2d)][1]
        assert conv2.weight.is_contiguous(memory_format=torch.channels_last) is nhwc
        # (the 1-channel inputs are laid out alike either way: NCHW and NHWC are one layout when C = 1)
        training.step()
    assert "channels_last lays out the feature maps of convolutions" in skip_reason(Case(memory_format="channels_last"))
