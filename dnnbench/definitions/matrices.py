"""Named matrices: which cases each suite runs, sized for a 2-core machine.

A matrix maps suite → cases. The suites are the bench/ modules: batch, optimizers, regularization,
loaders and note (the study note's own experiments). Sizes were measured on the development machine
(2 cores, no GPU); docs/cli.md has their wall times.
"""

from __future__ import annotations

from collections.abc import Callable

from dnnbench.core.errors import BadInput, unknown_choice
from dnnbench.definitions.cases import Case
from dnnbench.definitions.optimizers import OPTIMIZERS, RACE
from dnnbench.definitions.regularization import REGULARIZATION_KINDS

SUITES = ("batch", "optimizers", "regularization", "loaders", "note", "models", "scaling", "harness", "fastpaths")

Matrix = dict[str, list[Case]]


def note_suite(
    device: str,
    *,
    size: Case | None = None,
    race_workers: int = 2,
    race_epochs: int = 10,
    b1_seconds: float | None = None,
    dnn_loader: str = "torchvision",
    full_epochs: int | None = None,
    fashion: bool = True,
) -> list[Case]:
    """The note's experiments by its own protocol (all training data, the test set every epoch):

    - its MNIST DNN (784-500-10, Adam lr 1e-3 with torch's betas, batch 100, 5 epochs, ToTensor through
      torchvision's DataLoader) on MNIST and on Fashion-MNIST;
    - its optimizer race: y = x³ + 0.1·noise, 1,500 points, batch 20, num_workers 2, lr 0.01, 10 epochs,
      SGD / Momentum 0.8 / AdaGrad / RMSprop alpha 0.9 / Adam betas (0.9, 0.99), the same batches for all;
    - the batch regimes (1, 100, the whole training set) and the Dropout, BatchNorm, L1 and L2 variants of
      the MNIST DNN on MNIST, through the tensor loader (the same batches as torchvision's, measured faster).

    `size` carries the fields that shrink it (train_samples, epochs, … for the smoke matrix); `dnn_loader`
    the loader of the two DNN cases (the note's torchvision pipeline, or the tensor loader's same batches
    where a matrix must be short); `full_epochs` the full-batch case's epochs where it needs more than the
    DNN's (one step per epoch); `fashion` whether the DNN also runs on Fashion-MNIST."""
    shrink = {f: getattr(size, f) for f in ("train_samples", "eval_samples", "epochs", "eval_every")} if size else {}
    dnn = Case(protocol="note", loader=dnn_loader, device=device, **shrink)
    mnist = dnn.replace(workload="mnist", loader="tensor")
    cases = [dnn.replace(workload="mnist"), *([dnn] if fashion else [])]
    race = Case(workload="cubic", protocol="note", batch_size=20, lr=0.01, epochs=race_epochs, num_workers=race_workers)
    race = race.replace(device=device)
    cases += [race.replace(optimizer=o, beta2=0.99 if o == "adam" else None) for o in RACE]
    b1 = mnist.replace(batch_size=1, epochs=1, max_seconds=b1_seconds)
    cases += [b1, mnist, mnist.replace(batch_size="full", epochs=full_epochs or mnist.epochs)]
    cases += [mnist.replace(regularization=r) for r in ("dropout", "batchnorm", "l1", "l2")]
    return cases


def _suites(
    base: Case,
    *,
    batch_sizes,
    loader_budget: Case,
    b1_seconds: float,
    full_epochs: int,
    note: list[Case],
    workers=(0, 2),
) -> Matrix:
    """The common shape of every matrix; the matrices differ in data size, budgets and breadth."""
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
    for kind in ("torchvision", "imagefiles", "tensor"):
        # the image files (PIL decode and augmentation per sample) are where workers can pay: 0, 1, 2 of them
        for w in sorted({*workers, 1}) if kind == "imagefiles" else workers:
            for pin in (False, True):
                loaders.append(loader_budget.replace(loader=kind, num_workers=w, pin_memory=pin))
    loaders.append(loader_budget.replace(loader="device"))
    loaders.append(loader_budget.replace(loader="device", num_workers=2))  # skipped: says why
    for kind in ("torchvision", "imagefiles", "tensor", "device"):  # where per-batch overhead shows most
        loaders.append(loader_budget.replace(loader=kind, batch_size=1, max_seconds=b1_seconds / 2))
    return {
        "batch": batch,
        "optimizers": [base.replace(optimizer=name) for name in OPTIMIZERS],
        "regularization": [base.replace(regularization=r) for r in REGULARIZATION_KINDS],
        "loaders": loaders,
        "note": note,
    }


BUDGET_FIELDS = ("train_samples", "eval_samples", "epochs", "eval_every", "max_seconds")


def models_suite(device: str, *, size: Case, to_target: Case | None = None) -> list[Case]:
    """LeNet-5 on Fashion-MNIST (device loader, Adam, batch 100): plain, channels_last, BatchNorm2d,
    Dropout2d; the deep MLP (three hidden layers of 256) with ReLU and with sigmoid, under SGD and Adam.
    `size` carries the budget fields (train_samples, epochs, eval_every, ...); `to_target`, where given,
    adds a plain LeNet-5 on a budget of its own, long enough to reach its target (the rest compare on less)."""
    budget = {f: getattr(size, f) for f in BUDGET_FIELDS}
    lenet = Case(workload="lenet5-fashion-mnist", loader="device", device=device, **budget)
    deep = Case(workload="deep-fashion-mnist", loader="device", device=device, **budget)
    reach = [lenet.replace(**{f: getattr(to_target, f) for f in BUDGET_FIELDS})] if to_target else []
    return [
        *reach,
        lenet,
        lenet.replace(memory_format="channels_last"),
        lenet.replace(regularization="batchnorm"),
        lenet.replace(regularization="dropout", dropout_p=0.1),  # Dropout2d drops whole maps: a light p
        *(deep.replace(optimizer=o, activation=a) for o in ("sgd", "adam") for a in ("relu", "sigmoid")),
    ]


def smoke(device: str) -> Matrix:
    """Every axis at least once on a 2,000-sample slice of real data: about a minute."""
    base = Case(device=device, train_samples=2000, eval_samples=1000, epochs=2, eval_every=500)
    note = note_suite(device, size=base.replace(eval_every=None), race_workers=0, race_epochs=3, b1_seconds=1.0)
    m = _suites(
        base,
        batch_sizes=(1, 100, "full"),
        loader_budget=base.replace(epochs=1),
        b1_seconds=1.0,
        full_epochs=2,
        note=note,
    )
    # The fast paths and data-parallel training once each (torch.compile is left to MATRIX=fastpaths:
    # it compiles for about 20 s here, more than the rest of the smoke matrix together).
    fast = base.replace(loader="device", epochs=1)
    m["fastpaths"] = [
        fast,
        fast.replace(optimizer_impl="fused"),
        fast.replace(precision="bf16"),
        fast.replace(threads=1),
    ]
    m["fastpaths"] += [fast.replace(precision="tf32")]  # skipped on a CPU, and says why
    m["scaling"] = [base.replace(epochs=1, world_size=2)]
    m["models"] = models_suite(device, size=base.replace(epochs=1))
    return m


def quick(device: str) -> Matrix:
    """The default of `make bench`: full Fashion-MNIST, short budgets, two seeds; under 15 minutes on 2 cores
    of either CPU generation. Loader cases measure throughput on 10,000 samples (a steady state, not a
    result); the note's suite runs under the note's one seed, its DNN through the tensor loader (its own
    torchvision pipeline: MATRIX=note)."""
    base = Case(device=device, epochs=2)
    m = _suites(
        base,
        batch_sizes=(1, 100, "full"),
        loader_budget=base.replace(epochs=1, train_samples=10_000),
        b1_seconds=5.0,  # batch-1 cases run on a time budget: the same seconds on a slow CPU as on a fast one
        full_epochs=10,
        note=note_suite(device, race_workers=0, b1_seconds=5.0, dnn_loader="tensor"),
    )
    m["models"] = models_suite(
        device, size=Case(train_samples=10_000, epochs=1), to_target=Case(epochs=4, max_seconds=90.0)
    )
    return m


def full(device: str) -> Matrix:
    """Everything crossed: optimizer × regularization, more batch sizes and workers; hours on a CPU."""
    base = Case(device=device)
    m = _suites(
        base,
        batch_sizes=(1, 20, 100, 1000, "full"),
        loader_budget=base.replace(epochs=2),
        b1_seconds=60.0,
        full_epochs=30,
        note=note_suite(device) + claim_cases(device),
        workers=(0, 1, 2, 4),
    )
    m["regularization"] = [
        base.replace(optimizer=o, regularization=r) for o in OPTIMIZERS for r in REGULARIZATION_KINDS
    ]
    m["models"] = models_suite(device, size=Case())
    resnet = Case(workload="resnet18-cifar10", loader="device", batch_size=128, device=device)
    m["models"] += [resnet, resnet.replace(memory_format="channels_last")]  # skipped where CIFAR-10 is absent
    m.update(scaling(device))
    m.update(fastpaths(device))
    return m


def scaling(device: str) -> Matrix:
    """Data-parallel training over 1, 2, 4, … processes (as many as the cores or GPUs allow; each rank gets
    an equal share of the cores): the same global batch split over the ranks (strong scaling, lr kept)
    and the same per-rank batch (weak scaling, lr × world size), through the tensor and device loaders."""
    import os

    import torch

    available = torch.cuda.device_count() if device == "cuda" else (os.cpu_count() or 1)
    sizes = [w for w in (1, 2, 4, 8, 16) if w <= max(1, available)]
    base = Case(device=device, epochs=2, eval_every=25_000)
    cases = []
    for loader in ("tensor", "device"):
        for w in sizes:
            cases.append(base.replace(loader=loader, world_size=w))
            if w > 1:
                cases.append(base.replace(loader=loader, world_size=w, batch_size=100 * w, lr_rule="linear"))
    return {"scaling": cases}


def harness(device: str) -> Matrix:
    """The harness's cost (dnnbench harness): full Fashion-MNIST on the device loader, Adam, at batch 1 (a 10 s
    budget), 100 and the whole split — the engine against a bare loop."""
    base = Case(device=device, loader="device")
    return {
        "harness": [
            base.replace(batch_size=1, epochs=1, max_seconds=10.0),
            base.replace(epochs=2),
            base.replace(batch_size="full", epochs=10),
        ]
    }


def fastpaths(device: str) -> Matrix:
    """PyTorch's fast paths at batch 1 and 100 (Fashion-MNIST, device loader, Adam, 1 epoch; batch 1 on a
    20 s budget): each axis value alone against the default — optimizer implementation, torch.compile,
    precision, threads — and all the fastest together. A value the device cannot run is skipped with why."""
    import os

    cores = os.cpu_count() or 1
    threads = sorted({1, max(1, cores // 2), cores} - {cores}) if device == "cpu" else []
    cases = []
    for batch, budget in ((1, 20.0), (100, None)):
        base = Case(device=device, loader="device", batch_size=batch, epochs=1, max_seconds=budget)
        cases.append(base)
        cases += [base.replace(optimizer_impl=impl) for impl in ("for-loop", "foreach", "fused")]
        cases += [base.replace(compile=mode) for mode in ("default", "max-autotune-no-cudagraphs", "reduce-overhead")]
        cases += [base.replace(precision=p) for p in ("bf16", "tf32")]
        cases += [base.replace(threads=t) for t in threads]
        fastest = "tf32" if device == "cuda" else "bf16"
        cases.append(base.replace(optimizer_impl="fused", compile="default", precision=fastest))
    return {"fastpaths": cases}


def claim_cases(device: str) -> list[Case]:
    """Cases for the note's claims beyond its own experiments (results/claims reads them), each beside the case
    it differs from in one field, all small enough for a few seconds on 2 cores:

    - a deep MLP (three hidden layers of 256) with sigmoid and with ReLU under plain SGD: per-layer gradients;
    - the race's Adam without shuffling, its data in stored order (x ascending), and without worker processes;
    - early stopping (patience 3) on a 5,000-sample MNIST slice against the same run to 30 epochs;
    - the deep ReLU MLP under SGD from weights a tenth of torch's, with and without gradient noise (η = 0.3, one
      of Neelakantan et al.'s values);
    - a batch-size sweep on MNIST (20 … 1000, the test set every 10,000 samples, stopped at the target, at most
      5 epochs)."""
    deep = Case(workload="mnist", hidden=(256, 256, 256), optimizer="sgd", lr=0.05, train_samples=10_000,
                epochs=2, eval_every=2_000, device=device)  # fmt: skip
    race_adam = Case(
        workload="cubic", protocol="note", batch_size=20, lr=0.01, num_workers=2, beta2=0.99, device=device
    )
    slice_ = Case(workload="mnist", train_samples=5_000, epochs=30, eval_every=5_000, device=device)
    small = deep.replace(init_scale=0.1)  # a poor start, but no saddle point: 0 would be rescued by any nudge
    sweep = Case(workload="mnist", protocol="note", epochs=5, eval_every=10_000, stop_at_target=True, device=device)
    return [
        *(deep.replace(activation=a) for a in ("sigmoid", "relu")),
        race_adam.replace(shuffle=False),
        race_adam.replace(num_workers=0),
        slice_,
        slice_.replace(patience=3),
        small,
        small.replace(grad_noise=0.3),
        *(sweep.replace(batch_size=b) for b in (20, 50, 100, 256, 1000)),
    ]


def note(device: str) -> Matrix:
    """The study note's experiments as written (one seed: torch.manual_seed(1); --repeats 3 for more), batch 1
    on a 10 s budget and the full batch for 12 steps (enough for its loss noise), and the cases its other
    claims need (claim_cases). The DNN on Fashion-MNIST, the note's drop-in data set but not its experiment,
    is left to the quick matrix's note suite: `--repeats 3` stays within 15 minutes on 2 cores."""
    cases = note_suite(device, b1_seconds=10.0, full_epochs=12, fashion=False)
    return {"note": cases + claim_cases(device)}


MATRICES: dict[str, Callable[[str], Matrix]] = {
    "smoke": smoke,
    "quick": quick,
    "full": full,
    "note": note,
    "scaling": scaling,
    "harness": harness,
    "fastpaths": fastpaths,
}
DEFAULT_MATRIX = "quick"  # what `make bench`, `dnnbench run` and `pytest bench` run without --matrix
DEFAULT_REPEATS = {"smoke": 1, "quick": 2, "full": 3, "note": 1, "scaling": 1, "harness": 1, "fastpaths": 1}
# Fewer default seeds for a suite of a matrix: quick runs the note's experiments under the note's one seed
# (torch.manual_seed(1)), as MATRIX=note does; --repeats / --seeds still apply to every suite.
SUITE_REPEATS = {"quick": {"note": 1}}
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
