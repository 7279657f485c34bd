"""`dnnbench tune`: learning-rate sweeps with a stated budget, then the default and the best on fresh seeds.

    dnnbench tune [--size quick|full] [--search grid|random --trials K] [--seeds 3] [--save NAME]
    dnnbench tune --matrix quick [-k lenet5] ...   # the workloads of a matrix, as it trains them

Without --matrix the sweep covers the study's problems (definitions/tuning.problems); with it, every
workload the matrix trains (its -k selection), at the budget and settings of that workload's first
case in the matrix, over the optimizers the matrix runs on it: `--set lr=tuned` then works for it.

1. The sweep (suite 'tuning'): per problem and optimizer, every learning rate of the grid
   (definitions/tuning.py) once, seed 1; a diverged trial is recorded as such and the sweep goes on.
2. The choice: per problem and optimizer the rate with the best validation score (results/tuning.py);
   test data play no part. The sweep's training seconds are the tuning cost.
3. The re-runs (suites 'default' and 'tuned'): the default and the chosen rate on seeds 2..N+1, fresh
   seeds, so that the figures do not carry the luck of the seed the choice was made on.
The chosen rates are saved to results/tuned/NAME.json for `--set lr=tuned[:NAME]`; the run folder's
report has the tuning section (sensitivity, default against tuned, performance profiles).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

from dnnbench.core.errors import BadInput
from dnnbench.core.signals import Terminated
from dnnbench.definitions import tuning
from dnnbench.definitions.cases import Case
from dnnbench.definitions.plan import PlannedCase
from dnnbench.definitions.shards import expected_cost
from dnnbench.measurement.env import run_description
from dnnbench.results.frames import load
from dnnbench.results.run import Run
from dnnbench.results.time_left import TimeLeft
from dnnbench.results.tuning import TunedChoice, choose
from dnnbench.views.progress import one_line_summary, show_time_left

SEARCHES = ("grid", "random")


def _measure(run: Run, case: Case, seed: int, suites: tuple[str, ...], log, estimate: TimeLeft) -> None:
    planned = PlannedCase(suites, case, seed, skip_reason=None)
    record = run.measure(planned)
    if record is not None:
        log(f"{planned.id}: {one_line_summary(record)}")
        estimate.finished((case.id, seed))
        show_time_left(estimate, log)


def problems_of_matrix(matrix: str, device: str, select: list[str]) -> list[tuning.Problem]:
    """One problem per workload the matrix trains (cases whose id contains a `select` text, when given):
    its first mini-batch case in the matrix without regularization (else its first), single-process, at its default
    rate and under the benchmark protocol (the choice reads a held-out validation split, which the
    note's protocol does not keep); over every optimizer the matrix runs on that workload."""
    from dnnbench.definitions.plan import expand, selected

    cases = [
        p.case
        for p in expand(matrix, device)
        if not p.skip_reason and p.case.world_size == 1 and selected(p.case.id, select)
    ]
    if not cases:
        raise BadInput(
            f"matrix {matrix} has no runnable single-process case"
            + (f" whose id contains {' or '.join(map(repr, select))}" if select else "")
        )
    out = []
    for workload in dict.fromkeys(c.workload for c in cases):
        own = [c for c in cases if c.workload == workload]
        # a mini-batch case without regularization where there is one: the rate is then used for every
        # case of the workload (rates are kept per workload and optimizer), and batch 1 on a seconds budget
        # or the full batch would tune for an extreme
        plain = [c for c in own if c.regularization == "none"] or own
        base = next((c for c in plain if isinstance(c.batch_size, int) and c.batch_size >= 32), plain[0])
        optimizers = tuple(dict.fromkeys(c.optimizer for c in own))
        out.append(tuning.Problem(workload, base.replace(lr=None, protocol="benchmark"), optimizers))
    return out


def run_tune(
    size: str,
    search: str,
    trials: int,
    seeds: int,
    device: str,
    out: Path,
    save: str,
    log=print,
    matrix: str | None = None,
    select: list[str] | None = None,
) -> tuple[Path, float]:
    if size not in ("quick", "full"):
        raise BadInput(f"unknown size {size!r}; choose from: quick, full")
    if search not in SEARCHES:
        raise BadInput(f"unknown search {search!r}; choose from: {', '.join(SEARCHES)}")
    if seeds < 1 or trials < 2:
        raise BadInput("--seeds must be >= 1 and --trials >= 2")
    started = time.perf_counter()
    run = Run(out, "dnnbench tune", resume=True)  # a sweep picks up where it stopped
    if select and not matrix:
        raise BadInput("-k selects cases of a matrix: give --matrix too (e.g. --matrix quick -k lenet5)")
    problems = problems_of_matrix(matrix, device, select or []) if matrix else tuning.problems(size, device)
    description = run_description(f"tune-{size}" + (f"-{matrix}" if matrix else ""), device, [], None, None)
    run.open(description | {"search": search, "trials": trials, "seeds": list(range(1, seeds + 2))})
    status = 2
    try:
        for notice in run.notices:
            print(notice, file=sys.stderr)
        with run.measuring():
            sweep = [
                problem.base.replace(optimizer=optimizer, lr=lr)
                for problem in problems
                for optimizer in problem.optimizers
                for lr in tuning.grid_for(optimizer, size, search, trials)
            ]
            # the sweep, then the re-runs on fresh seeds: the default's, and a tuned rate's (a stand-in key until
            # the choice is made; the rate changes no modelled cost)
            fresh = range(2, seeds + 2)
            defaults = [problem.base.replace(optimizer=o) for problem in problems for o in problem.optimizers]
            estimate = TimeLeft.of(
                [
                    *(((c.id, 1), expected_cost(c)) for c in sweep),
                    *(((c.id, s), expected_cost(c)) for c in defaults for s in fresh),
                    *((("tuned", c.id, s), expected_cost(c)) for c in defaults for s in fresh),
                ],
                group_of=lambda key: key[0],  # type: ignore[index]
            )
            for done in [k for k in estimate.expected if k in run.finished]:
                del estimate.expected[done]
            for case in sweep:
                _measure(run, case, 1, ("tuning",), log, estimate)
            chosen = choose(load(out))
            reruns = [
                (case, suites)
                for choice in chosen
                for case, suites in rerun_cases(next(p for p in problems if _same(p, choice)), choice)
            ]
            for stand_in in [k for k in estimate.expected if k[0] == "tuned"]:  # type: ignore[index]
                del estimate.expected[stand_in]
            estimate.expected.update(
                ((case.id, seed), expected_cost(case))
                for case, _ in reruns
                for seed in fresh
                if (case.id, seed) not in run.finished and (case.id, seed) not in estimate.expected
            )
            for case, suites in reruns:
                for seed in range(2, seeds + 2):
                    _measure(run, case, seed, suites, log, estimate)
        status = 0
    except Terminated:
        status = 143  # the CLI ends it in one line
        raise
    finally:
        run.close(status)
    entries = [
        {k: getattr(choice, k) for k in ("problem", "workload", "regularization", "optimizer", "default_lr",
                                        "tuned_lr", "trials", "diverged", "tuning_cost_s")}
        | {"search": search, "size": size}
        for choice in chosen
    ]  # fmt: skip
    path = tuning.save_tuned(entries, save)
    return path, time.perf_counter() - started


def _same(problem: tuning.Problem, choice: TunedChoice) -> bool:
    return (
        problem.base.workload == choice.workload
        and problem.base.regularization == choice.regularization
        and choice.optimizer in problem.optimizers
    )


def rerun_cases(problem: tuning.Problem, choice: TunedChoice) -> list[tuple[Case, tuple[str, ...]]]:
    """The fresh-seed re-runs of one choice: the default, and the tuned rate where one was found and it
    differs from the default (otherwise the default run stands for both settings)."""
    default = problem.base.replace(optimizer=choice.optimizer)
    tuned = None if choice.tuned_lr is None else problem.base.replace(optimizer=choice.optimizer, lr=choice.tuned_lr)
    if tuned is None or tuned == default:
        return [(default, ("default", "tuned"))]
    return [(default, ("default",)), (tuned, ("tuned",))]


def _chosen_lines(entries: list[dict]) -> list[str]:
    """One line per problem: each optimizer's default → chosen rate (= where the default won)."""
    problems: dict[str, list[str]] = {}
    for e in entries:
        chosen = "none reached" if e["tuned_lr"] is None else f"{e['tuned_lr']:g}"
        same = "=" if e["tuned_lr"] == e["default_lr"] else "→"
        problems.setdefault(e["problem"], []).append(f"{e['optimizer']} {e['default_lr']:g} {same} {chosen}")
    return [f"chosen on validation, {p}: " + ", ".join(items) for p, items in problems.items()]


def main_tune(args) -> int:
    out = Path(args.out or f"results/tune-{args.size}-{datetime.now():%Y%m%d-%H%M%S}")
    path, seconds = run_tune(
        args.size, args.search, args.trials, args.seeds, args.device, out, args.save, matrix=args.matrix, select=args.k
    )
    for line in _chosen_lines(json.loads(Path(path).read_text())["tuned"]):
        print(line)
    print(f"tuned learning rates: {path} (reuse them with --set lr=tuned:{args.save})")
    print(f"tune: {out} in {seconds / 60:.1f} min; report: dnnbench report {out}")
    return 0
