"""The note's claims judged on hand-made records: each verdict follows the figures it reads."""

import pytest

from dnnbench.definitions.cases import Case
from dnnbench.results.claims import NOT_MEASURABLE, NOT_SUPPORTED, SUPPORTED, evaluate_claims
from dnnbench.results.frames import load, load_curves
from dnnbench.results.journal import Journal
from tests.conftest import record

NOTE = {"protocol": "note", "suites": ["note"]}


def verdicts(tmp_path, records) -> dict[int, tuple[str, str]]:
    journal = Journal(tmp_path / "run")
    for r in records:
        journal.append(r)
    frame = load(tmp_path / "run")
    _, val = load_curves(tmp_path / "run")
    return {c.number: (c.verdict, c.figure) for c in evaluate_claims(frame, val)}


def note(case: Case, seed: int = 1, **metrics):
    return record(case.replace(protocol="note"), seed, ["note"], protocol="note", **metrics)


MNIST = Case(workload="mnist", loader="torchvision")


@pytest.mark.parametrize(
    ("accuracy", "case", "expected"),
    [
        (0.981, MNIST, SUPPORTED),
        (0.951, MNIST, NOT_SUPPORTED),
        (0.981, MNIST.replace(train_samples=2000), NOT_MEASURABLE),  # a slice is not the note's experiment
        (0.981, MNIST.replace(workload="fashion-mnist"), NOT_MEASURABLE),
    ],
)
def test_mnist_about_98_percent(tmp_path, accuracy, case, expected):
    got = verdicts(tmp_path, [note(case, final_test_accuracy=accuracy)])
    assert got[9][0] == expected, got[9]


def race(losses: dict[str, float]):
    out = []
    for optimizer, loss in losses.items():
        case = Case(workload="cubic", optimizer=optimizer, batch_size=20, lr=0.01)
        out.append(note(case, final_test_loss=loss))
    return out


def test_the_race_supports_adam_best_adaptive_equal_sgd_slower(tmp_path):
    losses = {"sgd": 0.030, "momentum": 0.022, "adagrad": 0.015, "rmsprop": 0.012, "adam": 0.011}
    verdict, figure = verdicts(tmp_path / "a", race(losses))[4]
    assert verdict == SUPPORTED and "adam 0.0110" in figure
    worse_adam = dict(losses, adam=0.014)  # RMSprop now best
    assert verdicts(tmp_path / "b", race(worse_adam))[4][0] == NOT_SUPPORTED
    unequal = dict(losses, adagrad=0.030)  # AdaGrad 2.7x Adam's loss: not "about equal"
    assert verdicts(tmp_path / "c", race(unequal))[4][0] == NOT_SUPPORTED


def batch_regimes(b100_throughput=40_000.0, full_rise=0.01):
    mnist = Case(workload="mnist")
    return [
        note(mnist.replace(batch_size=1), throughput_samples_per_s=1_000.0, final_test_accuracy=0.80,
             loss_noise=2.5, step_time_ms_median=1.0, steps_to_target=None),
        note(mnist, throughput_samples_per_s=b100_throughput, final_test_accuracy=0.97,
             loss_noise=0.3, step_time_ms_median=2.5, steps_to_target=600),
        note(mnist.replace(batch_size="full"), throughput_samples_per_s=50_000.0, final_test_accuracy=0.40,
             loss_noise=full_rise, step_time_ms_median=1_200.0, steps_to_target=None),
    ]  # fmt: skip


def test_batch_regime_claims_follow_throughput_noise_and_step_time(tmp_path):
    got = verdicts(tmp_path / "a", batch_regimes())
    assert [got[n][0] for n in (1, 2, 3)] == [SUPPORTED] * 3
    assert "(40.0x from 1 to 100)" in got[1][1]
    slow_minibatch = verdicts(tmp_path / "b", batch_regimes(b100_throughput=1_500.0))
    assert slow_minibatch[1][0] == NOT_SUPPORTED  # 1.5x is not "uses matrix math well"
    noisy_full = verdicts(tmp_path / "c", batch_regimes(full_rise=0.6))  # noisier than a mini-batch
    assert noisy_full[2][0] == NOT_SUPPORTED


def test_regularization_must_narrow_the_gap(tmp_path):
    mnist = Case(workload="mnist")
    base = [note(mnist, generalization_gap=0.030), note(mnist.replace(regularization="l2"), generalization_gap=0.020)]
    narrower = verdicts(
        tmp_path / "a", [*base, note(mnist.replace(regularization="dropout"), generalization_gap=0.010)]
    )
    assert narrower[5][0] == SUPPORTED
    wider = verdicts(tmp_path / "b", [*base, note(mnist.replace(regularization="dropout"), generalization_gap=0.050)])
    assert wider[5][0] == NOT_SUPPORTED and "narrower with: l2" in wider[5][1]


def curve(first: float) -> dict:
    points = [{"step": 600 * i, "samples": 60_000 * i, "epoch": i, "train_time_s": i, "val_metric": first + 0.01 * i,
               "val_loss": 0.1} for i in (1, 2)]  # fmt: skip
    return {"loss": {"step": [1], "loss": [1.0], "bucket": 1}, "val": points}


def test_batchnorm_must_converge_sooner(tmp_path):
    mnist = Case(workload="mnist")
    faster = [note(mnist, curves=curve(0.95)), note(mnist.replace(regularization="batchnorm"), curves=curve(0.97))]
    assert verdicts(tmp_path / "a", faster)[6][0] == SUPPORTED
    slower = [note(mnist, curves=curve(0.97)), note(mnist.replace(regularization="batchnorm"), curves=curve(0.95))]
    assert verdicts(tmp_path / "b", slower)[6][0] == NOT_SUPPORTED


def test_workers_and_pinned_memory(tmp_path):
    loader = Case(loader="torchvision", epochs=1)
    slower = [
        record(loader, 1, ["loaders"], throughput_samples_per_s=12_000.0, data_wait_fraction=0.6),
        record(loader.replace(num_workers=2), 1, ["loaders"], throughput_samples_per_s=9_000.0, data_wait_fraction=0.4),
    ]
    got = verdicts(tmp_path / "a", slower)
    assert got[8][0] == NOT_SUPPORTED and "12,000 samples/s" in got[8][1]
    assert got[7] == (NOT_MEASURABLE, "no CUDA device here: pin_memory only affects host-to-GPU copies")
    faster = [slower[0], record(loader.replace(num_workers=2), 1, ["loaders"], throughput_samples_per_s=15_000.0,
                                data_wait_fraction=0.2)]  # fmt: skip
    assert verdicts(tmp_path / "b", faster)[8][0] == SUPPORTED


def test_a_run_without_the_note_suite_says_what_it_cannot_measure(tmp_path):
    got = verdicts(tmp_path, [record(Case(), 1, ["optimizers"], throughput_samples_per_s=40_000.0)])
    assert {n for n, (v, _) in got.items() if v == NOT_MEASURABLE} == set(range(1, 10))
