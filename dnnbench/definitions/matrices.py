"""Named matrices: which cases each suite runs, sized for a 2-core machine.

A matrix maps suite → cases. The suites are the bench/ modules: batch, optimizers, regularization,
loaders and note (the study note's own experiments). Sizes were measured on the development machine
(2 cores, no GPU): smoke ≈ 1 minute, quick ≈ 8 minutes; see README for the figures.
"""

from __future__ import annotations

from collections.abc import Callable

from dnnbench.core.errors import BadInput, unknown_choice
from dnnbench.definitions.cases import REGULARIZATIONS, Case
from dnnbench.definitions.optimizers import OPTIMIZERS

SUITES = ("batch", "optimizers", "regularization", "loaders", "note")
RACE_OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")  # the note's five, in its legend order

Matrix = dict[str, list[Case]]


def _suites(
    base: Case,
    *,
    batch_sizes,
    race_epochs: int,
    race_workers: int,
    loader_budget: Case,
    b1_seconds: float,
    full_epochs: int,
    workers=(0, 2),
) -> Matrix:
    """The common shape of every matrix; the matrices differ in data size, budgets and breadth."""
    note_dnn = base.replace(loader="torchvision")  # the note's MNIST DNN: 784-500-10, Adam 1e-3, batch 100
    batch: list[Case] = []
    for b in batch_sizes:
        if b == 1:
            batch.append(base.replace(batch_size=1, epochs=1, max_seconds=b1_seconds))
        elif b == "full":
            batch.append(base.replace(batch_size="full", epochs=full_epochs))
        else:
            batch.append(base.replace(batch_size=b))
    small = base.train_samples is not None
    synthetic = Case(workload="synthetic", device=base.device, train_samples=2000 if small else None)
    batch += [
        synthetic.replace(batch_size=1, max_seconds=b1_seconds / 2),
        synthetic,
        synthetic.replace(batch_size="full", epochs=full_epochs),
    ]

    loaders: list[Case] = []
    for kind in ("torchvision", "tensor"):
        for w in workers:
            for pin in (False, True):
                loaders.append(loader_budget.replace(loader=kind, num_workers=w, pin_memory=pin))
    loaders.append(loader_budget.replace(loader="device"))
    loaders.append(loader_budget.replace(loader="device", num_workers=2))  # skipped: says why
    for kind in ("torchvision", "tensor", "device"):  # where per-batch overhead shows most
        loaders.append(loader_budget.replace(loader=kind, batch_size=1, max_seconds=b1_seconds / 2))

    race = Case(
        workload="cubic",
        batch_size=20,
        lr=0.01,
        epochs=race_epochs,
        num_workers=race_workers,
        device=base.device,
    )
    note = [note_dnn, note_dnn.replace(workload="mnist")]
    note += [race.replace(optimizer=name) for name in RACE_OPTIMIZERS]
    return {
        "batch": batch,
        "optimizers": [base.replace(optimizer=name) for name in OPTIMIZERS],
        "regularization": [base.replace(regularization=r) for r in REGULARIZATIONS],
        "loaders": loaders,
        "note": note,
    }


def smoke(device: str) -> Matrix:
    """Every axis at least once on a 2,000-sample slice of real Fashion-MNIST: about a minute."""
    base = Case(device=device, train_samples=2000, eval_samples=1000, epochs=2, eval_every=500)
    return _suites(
        base,
        batch_sizes=(1, 100, "full"),
        race_epochs=3,
        race_workers=0,
        loader_budget=base.replace(epochs=1),
        b1_seconds=1.0,
        full_epochs=2,
    )


def quick(device: str) -> Matrix:
    """The default of `make bench`: full Fashion-MNIST, short budgets, two seeds; under 15 minutes."""
    base = Case(device=device, epochs=3)
    return _suites(
        base,
        batch_sizes=(1, 20, 100, "full"),
        race_epochs=10,
        race_workers=0,
        loader_budget=base.replace(epochs=1),
        b1_seconds=10.0,
        full_epochs=10,
    )


def full(device: str) -> Matrix:
    """Everything crossed: optimizer × regularization, more batch sizes and workers; hours on a CPU."""
    base = Case(device=device)
    m = _suites(
        base,
        batch_sizes=(1, 20, 100, 1000, "full"),
        race_epochs=10,
        race_workers=2,
        loader_budget=base.replace(epochs=2),
        b1_seconds=60.0,
        full_epochs=30,
        workers=(0, 1, 2, 4),
    )
    m["regularization"] = [base.replace(optimizer=o, regularization=r) for o in OPTIMIZERS for r in REGULARIZATIONS]
    return m


def note(device: str) -> Matrix:
    """The study note's experiments at their own settings (5 epochs, the race's 10 epochs with
    num_workers=2), one seed: torch.manual_seed(1) as in the note."""
    base = Case(device=device)
    return _suites(
        base,
        batch_sizes=(1, 20, 100, "full"),
        race_epochs=10,
        race_workers=2,
        loader_budget=base.replace(epochs=1),
        b1_seconds=60.0,
        full_epochs=5,
    )


MATRICES: dict[str, Callable[[str], Matrix]] = {"smoke": smoke, "quick": quick, "full": full, "note": note}
DEFAULT_REPEATS = {"smoke": 1, "quick": 2, "full": 3, "note": 1}
RENAMED = {"seed": "note"}  # old matrix names: refused with one line naming the new one


def get_matrix(name: str, device: str) -> Matrix:
    if name in RENAMED:
        raise BadInput(
            f"matrix {name!r} is now called {RENAMED[name]!r} (the study note's experiments; 'seed' is the random "
            f"seed: --seeds, --repeats); use MATRIX={RENAMED[name]} or --matrix {RENAMED[name]}"
        )
    try:
        build = MATRICES[name]
    except KeyError:
        raise unknown_choice("matrix", name, MATRICES) from None
    return build(device)
