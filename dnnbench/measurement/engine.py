"""Engine: train one case under one seed and return its Record.

    record = engine.run(case, seed)                       # the plain loop
    record = engine.run(case, seed, drive=my_driver)      # pytest-benchmark's pedantic rounds, a profiler window
    record = engine.run(case, seed, hooks=MyHooks())      # observe or wrap the step (hooks.py)

A driver receives the step, the untimed work between steps, the warm-up and the planned step count,
and calls between() then step() per step; whatever it times, the engine's own clocks produce the
record. Measurement rules (DESIGN.md): throughput over steady-state steps only (a warm-up is left
out); evaluation is excluded from training time; time to target is training time until the
validation metric first reaches the workload's target, evaluated every `eval_every` samples.
A diverging, out-of-memory or failing case comes back as a record with that status; only bad
input (BadInput) is raised.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Sequence

import torch

from dnnbench.core.errors import BadInput
from dnnbench.core.record import Calibration, Record
from dnnbench.definitions.cases import Case
from dnnbench.measurement import allocator
from dnnbench.measurement import env as envmod
from dnnbench.measurement.calibration import calibrate
from dnnbench.measurement.hooks import NO_HOOKS, Hooks
from dnnbench.measurement.recording import collect_metrics, record_of
from dnnbench.measurement.setup import precision_mode
from dnnbench.measurement.training import StopTraining, Training

# (step, between, warmup_steps, planned_steps) -> None; it calls between() then step() per step.
Driver = Callable[[Callable[[], None], Callable[[], None], int, int], None]

CALIBRATION_SECONDS = 0.03  # per probe (four), before and after each case: ~0.25 s of a case's wall time

__all__ = ["Driver", "StopTraining", "loop_driver", "run", "skipped"]


def loop_driver(step: Callable[[], None], between: Callable[[], None], warmup: int, planned: int) -> None:
    """The plain driver: no timing of its own, the engine's clocks measure."""
    del warmup
    for _ in range(planned):
        between()
        step()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _is_oom(exc: BaseException) -> bool:
    """CUDA raises OutOfMemoryError; the CPU allocator raises a RuntimeError saying so."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def skipped(
    case: Case,
    seed: int,
    reason: str,
    suites: Sequence[str] = (),
    suite: str | None = None,
    status: str = "skipped",
) -> Record:
    """The record of a case that produced no measurement (skipped here, or failed before training),
    so that reports show it rather than drop it. `suite` (default: the first of `suites`) is the
    suite that ran it."""
    return Record(
        case_id=case.id,
        seed=seed,
        case=case.to_dict(),
        status=status,
        reason=reason,
        env=envmod.capture(case.device),
        suite=suite or (suites[0] if suites else None),
        suites=tuple(suites),
    )


def _calibration(device: str) -> tuple[dict[str, float], str]:
    """The probes around a case; none when DNNBENCH_CALIBRATION=off (an A/B run pairs its sides instead)."""
    if os.environ.get("DNNBENCH_CALIBRATION") == "off":
        return {}, "not measured (DNNBENCH_CALIBRATION=off)"
    return calibrate(device, seconds=CALIBRATION_SECONDS)


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
    allocator.pin()
    started = time.perf_counter()
    suites = tuple(suites)
    suite = suite or (suites[0] if suites else None)
    if case.world_size > 1:  # one process per rank, through torchrun (distributed.py)
        from dnnbench.measurement import distributed

        return distributed.launch(case, seed, data_dir=data_dir, suites=suites, suite=suite)
    with precision_mode(case):
        return _run_here(case, seed, drive, hooks, data_dir, suites, suite, started)


def _run_here(case, seed, drive, hooks, data_dir, suites, suite, started) -> Record:
    try:
        training = Training(case, seed, data_dir, hooks)
    except BadInput:
        raise
    except Exception as exc:
        return skipped(case, seed, _one_line(exc), suites, suite, status="oom" if _is_oom(exc) else "error")

    status, reason = "ok", ""
    # The machine's speed just before and after this case, for comparing its speed figures with
    # another run's: contention that slows the case slows these fixed probes too.
    before, _ = _calibration(case.device)
    gc.collect()  # the collector stays off while steps are timed (as pyperf and timeit do): a collection
    gc.disable()  # that lands in a step measures the process's other objects, not the step
    try:
        drive(training.step, training.between, training.plan.warmup_steps, training.plan.planned_steps)
    except StopTraining as stop:
        status, reason = stop.status, stop.reason
    except Exception as exc:
        status, reason = ("oom" if _is_oom(exc) else "error"), _one_line(exc)
    finally:
        gc.enable()
    try:
        if status == "ok":
            try:
                training.close_window()
                training.evaluate_if_new()
            except StopTraining as stop:
                status, reason = stop.status, stop.reason
        else:
            # A failed step can leave the device unusable; keep whatever was measured before it.
            with contextlib.suppress(Exception):
                training.progress.phase_rows.append(training.clock.collect())
        measured = collect_metrics(training, status, started)
        after, what = _calibration(case.device)
        return record_of(training, status, reason, measured, Calibration(before, after, what), suites, suite)
    finally:
        del training
        if case.device == "cuda":
            torch.cuda.empty_cache()
