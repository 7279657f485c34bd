import pytest

from dnnbench.core.errors import BadInput
from dnnbench.definitions.cases import Case, parse_overrides
from dnnbench.definitions.matrices import MATRICES, get_matrix


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "workload",
            "imagenet",
            "unknown workload 'imagenet'; choose from: fashion-mnist, mnist, cubic, synthetic",
        ),
        ("optimizer", "adamx", "unknown optimizer 'adamx'; choose from: sgd, momentum, nesterov"),
        ("loader", "fast", "unknown loader 'fast'; choose from: torchvision, imagefiles, tensor, device"),
        ("regularization", "l3", "unknown regularization 'l3'"),
        ("device", "tpu", "unknown device 'tpu'; choose from: cpu, cuda, auto"),
        ("batch_size", 0, "batch_size must be a positive integer or 'full', got 0"),
        ("batch_size", 2.5, "got 2.5"),
        ("batch_size", "half", "got 'half'"),
        ("batch_size", True, "got True"),
        ("lr", 0, "lr must be a finite number > 0, got 0"),
        ("lr", -0.1, "got -0.1"),
        ("dropout_p", 1.0, "dropout_p must be in [0, 1), got 1.0"),
        ("dropout_p", -0.1, "got -0.1"),
        ("num_workers", -1, "num_workers must be an integer >= 0, got -1"),
        ("epochs", 0, "epochs must be a positive integer, got 0"),
        ("hidden", (0,), "hidden must be layer widths"),
        ("features", 10, "features applies to workloads whose data has no fixed width (synthetic)"),
        ("train_samples", 60_000, "exceeds the 50000 samples"),
    ],
)
def test_bad_field_names_value_and_choices(field, value, message):
    with pytest.raises(BadInput) as info:
        Case(**{field: value})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_defaults_are_canonical_so_ids_are_stable():
    # The note's Adam lr=0.001 and hidden (500,) are the defaults: same case, same id.
    assert Case(lr=0.001, hidden=(500,), epochs=5) == Case()
    assert Case(lr=0.001).id == Case().id == "fashion-mnist_b100_adam_tensor_cpu"
    assert Case(lr=0.002).id == "fashion-mnist_b100_adam_lr0.002_tensor_cpu"


def test_id_names_every_non_default_field():
    c = Case(
        batch_size="full",
        optimizer="sgd",
        regularization="dropout",
        dropout_p=0.3,
        loader="torchvision",
        num_workers=2,
        pin_memory=True,
        train_samples=2000,
    )
    assert c.id == "fashion-mnist_bfull_sgd_dropout_p0.3_torchvision_w2_pin_n2000_cpu"


@pytest.mark.parametrize("name", sorted(MATRICES))
def test_matrix_ids_are_unique_per_config(name):
    cases = {c for cases in get_matrix(name, "cpu").values() for c in cases}
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))


def test_parse_overrides_types_values():
    got = parse_overrides(["lr=0.05", "hidden=256,128", "batch_size=full", "pin_memory=true", "epochs=default"])
    assert got == {"lr": 0.05, "hidden": (256, 128), "batch_size": "full", "pin_memory": True, "epochs": None}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("lr", "--set expects FIELD=VALUE, got 'lr'"),
        ("speed=3", "unknown case field 'speed'; choose from: workload, batch_size"),
        ("batch_size=abc", "bad value 'abc' for batch_size: expected a positive integer or 'full'"),
        ("seed=3", "use --repeats N"),
    ],
)
def test_parse_overrides_rejects(item, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_overrides([item])
