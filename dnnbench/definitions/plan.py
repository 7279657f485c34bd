"""Plan: expand a named matrix into the (case, seed) pairs a run will measure, with skip reasons.

Combinations that mean nothing on this machine (pin_memory without CUDA, workers for the device
loader, a data set that is not here) stay in the plan with a stated reason, so that `list`, the
pytest output, the records and the report all show them instead of silently dropping them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from dnnbench.core.errors import BadInput
from dnnbench.definitions import fastpaths, shards, tuning
from dnnbench.definitions.cases import Case, parse_overrides
from dnnbench.definitions.devices import resolve_device, too_many_ranks
from dnnbench.definitions.loaders import LOADER_KINDS
from dnnbench.definitions.matrices import DEFAULT_REPEATS, SUITE_REPEATS, get_matrix
from dnnbench.definitions.regularization import REGULARIZATION_KINDS
from dnnbench.definitions.workloads import get_workload
from dnnbench.definitions.workloads import use as use_workload


@dataclass(frozen=True)
class PlannedCase:
    suites: tuple[str, ...]  # every suite of the matrix that lists this case; the first to run it measures
    case: Case
    seed: int
    skip_reason: str | None

    @property
    def id(self) -> str:
        """The pytest id: case id and seed."""
        return f"{self.case.id}-s{self.seed}"


def selected(case_id: str, select: list[str]) -> bool:
    """-k TEXT …: a case is selected when its id contains one of the texts (all, when none is given)."""
    return not select or any(text in case_id for text in select)


def skip_reason(case: Case, data_dir: str | os.PathLike | None = None) -> str | None:
    """Why a case cannot be measured here, or None."""
    workload = get_workload(case.workload)
    if case.pin_memory and case.device == "cpu":
        return "pin_memory only speeds host-to-GPU copies and the device is cpu"
    loader = LOADER_KINDS[case.loader].skip_reason(case, workload)
    if loader:
        return loader
    ranks = too_many_ranks(case.world_size, case.device) or fastpaths.skip_reason(case)
    if ranks:
        return ranks
    if case.memory_format == "channels_last" and not workload.convolutional:
        return f"channels_last lays out the feature maps of convolutions and the {case.workload} model has none"
    if case.activation not in workload.activations:
        return f"the {case.workload} model is built with {', '.join(workload.activations)}, not {case.activation}"
    regularization = REGULARIZATION_KINDS[case.regularization]
    if regularization.batchnorm and not workload.places_batchnorm:
        return f"the {case.workload} model has no place for BatchNorm"
    if regularization.dropout and not workload.places_dropout:
        return f"the {case.workload} model has no place for Dropout"
    if case.batch_size == 1 and REGULARIZATION_KINDS[case.regularization].batchnorm:
        return "BatchNorm cannot normalise a batch of one sample in training"
    n_train = case.train_samples or workload.train_size(case.protocol)
    if isinstance(case.batch_size, int) and case.batch_size > n_train:
        return f"batch_size {case.batch_size} exceeds the {n_train} training samples"
    try:
        return workload.missing(data_dir)
    except BadInput:
        raise
    except Exception as exc:  # a plug-in's own code: one line naming it, never a traceback
        raise BadInput(f"workload {case.workload!r}: finding its data failed: {type(exc).__name__}: {exc}") from None


def expand_from_options(options) -> list[PlannedCase]:
    """expand() with the values of PLAN_OPTIONS as parsed by argparse or pytest."""
    plan = expand(
        options.matrix,
        device=options.device,
        overrides=parse_overrides(options.dnnbench_set),
        repeats=options.repeats,
        seeds=parse_seeds(options.seeds) if options.seeds else None,
        data_dir=options.data_dir,
        workload=getattr(options, "workload", None),
    )
    shard = getattr(options, "shard", None)
    return shards.select(plan, *shards.parse_shard(shard)) if shard else plan


def _override(case: Case, overrides: dict) -> Case:
    """case with --set values; an optimizer set without betas also drops the case's own beta2 (the
    race's Adam keeps (0.9, 0.99) only while it is Adam)."""
    from dnnbench.definitions.optimizers import OPTIMIZERS

    changes = dict(overrides)
    optimizer = changes.get("optimizer")
    if optimizer in OPTIMIZERS and "beta2" not in changes and "betas" not in OPTIMIZERS[optimizer].options:
        changes["beta2"] = None
    return case.replace(**changes)


def _workload_swap(spec: str, data_dir: str | os.PathLike | None) -> Callable[[Case], Case | None]:
    """case → the same case on the named workload (None: a case of the note's protocol the workload is
    not in); fields the workload cannot take fall back to its own defaults."""
    from dnnbench.definitions.workloads import BUILT_IN, use
    from dnnbench.definitions.workloads.check import check

    name = use(spec)
    workload = get_workload(name)
    if workload in BUILT_IN:
        workload.require(data_dir)
    else:  # a plug-in: tried on four samples, its data found, before anything is written
        check(workload, data_dir, spec)

    def swap(case: Case) -> Case | None:
        if case.protocol == "note" and not workload.in_note:
            return None
        n_train = workload.train_size(case.protocol)
        return case.replace(
            workload=name,
            train_samples=case.train_samples if case.train_samples and case.train_samples < n_train else None,
            features=case.features if workload.default_features is not None else None,
        )

    return swap


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadInput(f"--seeds expects integers such as 1,2,3, got {text!r}") from None
    if not seeds:
        raise BadInput("--seeds needs at least one seed")
    return seeds


def expand(
    matrix: str,
    device: str = "cpu",
    overrides: dict | None = None,
    repeats: int | None = None,
    seeds: list[int] | None = None,
    data_dir: str | os.PathLike | None = None,
    workload: str | None = None,
) -> list[PlannedCase]:
    """The run's plan in matrix order. Overrides (--set) apply to every case; cases that become
    identical merge. Naming a workload explicitly makes its missing data an error, not a skip.

    `workload` (--workload: a name or a plug-in spec) trains every case of the matrix on that workload,
    after checking that its data, model and loss fit together; the note's cases (its protocol) stay the
    note's and are left out unless the workload is one of the note's."""
    overrides = dict(overrides or {})
    swap = _workload_swap(workload, data_dir) if workload else None
    device = resolve_device(overrides.pop("device", device))
    tuned_name = None
    if isinstance(overrides.get("lr"), str):  # --set lr=tuned[:NAME]
        tuned_name = overrides.pop("lr").split(":", 1)[1]
        tuned = tuning.load_tuned(tuned_name)
    if repeats is not None and (not isinstance(repeats, int) or repeats < 1):
        raise BadInput(f"--repeats must be a positive integer, got {repeats!r}")
    # A matrix's default seeds may be fewer for some suites (quick's note suite: the note's one seed);
    # seeds the user asks for (--repeats, --seeds) apply to every suite.
    limits = SUITE_REPEATS.get(matrix, {}) if seeds is None and repeats is None else {}
    if seeds is None:
        seeds = list(range(1, (repeats or DEFAULT_REPEATS.get(matrix, 1)) + 1))
    if "workload" in overrides:
        _workload_swap(overrides["workload"], data_dir)  # loads, checks and finds the data of a plug-in too
        overrides["workload"] = use_workload(overrides["workload"])  # DataMissing (exit 2) when absent

    order: list[Case] = []
    suites_of: dict[Case, list[str]] = {}
    untuned: dict[Case, str] = {}  # --set lr=tuned: cases with no rate saved, skipped with the command to tune them
    for suite, cases in get_matrix(matrix, device).items():
        for case in cases:
            if swap is not None:
                swapped = swap(case)
                if swapped is None:
                    continue
                case = swapped
            case = _override(case, overrides) if overrides else case
            if tuned_name:
                at_tuned = tuning.with_tuned_lr(case, tuned)
                if at_tuned is None:
                    untuned[case] = tuning.untuned_reason(case, tuned_name, matrix)
                else:
                    case = at_tuned
            if case not in suites_of:
                order.append(case)
                suites_of[case] = []
            if suite not in suites_of[case]:
                suites_of[case].append(suite)

    reasons = {case: untuned.get(case) or skip_reason(case, data_dir) for case in order}

    def seeds_of(case: Case) -> list[int]:
        return seeds[: max(limits.get(suite, len(seeds)) for suite in suites_of[case])]

    return [PlannedCase(tuple(suites_of[case]), case, s, reasons[case]) for case in order for s in seeds_of(case)]
