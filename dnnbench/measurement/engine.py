"""Engine: train one case under one seed and return its Record.

    record = engine.run(case, seed)                       # the plain loop
    record = engine.run(case, seed, drive=my_driver)      # pytest-benchmark's pedantic rounds, a profiler window
    record = engine.run(case, seed, hooks=MyHooks())      # observe or wrap the step (hooks.py)

A driver receives the step, the untimed work between steps, the warm-up and the planned step count,
and calls between() then step() per step; whatever it times, the engine's own clocks produce the
record. Measurement rules (docs/metrics.md): throughput over steady-state steps only (a warm-up is
left out); evaluation is excluded from training time; time to target is training time until the
validation metric first reaches the workload's target, evaluated every `eval_every` samples.
A diverging, out-of-memory or failing case comes back as a record with that status; only bad
input (BadInput) is raised. A data-parallel case runs one process per rank (distributed.py), each
through the same measuring path as this one (measuring.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from dnnbench.core.errors import BadInput
from dnnbench.core.record import Record
from dnnbench.definitions.cases import Case
from dnnbench.measurement.hooks import NO_HOOKS, Hooks
from dnnbench.measurement.measuring import Driver, Measuring, is_oom, loop_driver, one_line, run_here
from dnnbench.measurement.recording import unmeasured
from dnnbench.measurement.training import StopTraining, Training

__all__ = ["Driver", "StopTraining", "loop_driver", "run"]


def run(
    case: Case,
    seed: int,
    *,
    drive: Driver = loop_driver,
    hooks: Hooks = NO_HOOKS,
    data_dir: str | None = None,
    suites: Sequence[str] = (),
    suite: str | None = None,
) -> Record:
    """Train `case` under `seed` and return its record; `suites` lists the suites of the matrix that
    name the case and `suite` the one running it (default: the first)."""
    started = time.perf_counter()
    suites = tuple(suites)
    suite = suite or (suites[0] if suites else None)
    if case.world_size > 1:  # one process per rank, through torchrun; each rank measures as below
        from dnnbench.measurement import distributed

        return distributed.launch(case, seed, data_dir=data_dir, suites=suites, suite=suite)
    with Measuring(case) as conditions:
        try:
            training = Training(case, seed, data_dir, hooks)
        except BadInput:
            raise
        except Exception as exc:
            return unmeasured(case, seed, one_line(exc), "oom" if is_oom(exc) else "error", suites, suite)
        record = run_here(training, drive, conditions, suites, suite, started)
        del training  # before the device's cache is emptied
    assert record is not None  # a single process is its own lead
    return record
