"""The one measuring path: a built Training driven to its Record, in one process or as a rank.

    with Measuring(case, lead=True) as conditions:      # allocator, precision, calibration, collector
        record = run_here(training, drive, conditions, suites, suite, started)

A single process (engine.py) and each rank of a data-parallel case (distributed.py) train through
`run_here`, so they measure under the same conditions: malloc's thresholds pinned, the case's
precision mode (tf32 on CUDA), the calibration probes before and after the case on the lead process
(none with DNNBENCH_CALIBRATION=off: an A/B run pairs its sides instead), and the garbage collector
off while steps are timed. A diverging, out-of-memory or failing case comes back as a record with that
status; on a rank a failure other than StopTraining is raised, since its peers wait for it in a
collective (distributed.py turns it into the case's error record).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable

import torch

from dnnbench.core.record import Calibration, Record
from dnnbench.definitions.cases import Case
from dnnbench.measurement import allocator
from dnnbench.measurement.calibration import calibrate
from dnnbench.measurement.recording import collect_metrics, record_of
from dnnbench.measurement.setup import precision_mode
from dnnbench.measurement.training import StopTraining, Training

# (step, between, warmup_steps, planned_steps) -> None; it calls between() then step() per step.
Driver = Callable[[Callable[[], None], Callable[[], None], int, int], None]

CALIBRATION_SECONDS = 0.03  # per probe (four), before and after each case: ~0.25 s of a case's wall time


def loop_driver(step: Callable[[], None], between: Callable[[], None], warmup: int, planned: int) -> None:
    """The plain driver: no timing of its own, the engine's clocks measure."""
    del warmup
    for _ in range(planned):
        between()
        step()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def is_oom(exc: BaseException) -> bool:
    """CUDA raises OutOfMemoryError; the CPU allocator raises a RuntimeError saying so."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def probes(device: str, seconds: float = CALIBRATION_SECONDS) -> tuple[dict[str, float], str]:
    """The calibration probes now, or none where DNNBENCH_CALIBRATION=off (an A/B run pairs instead)."""
    if os.environ.get("DNNBENCH_CALIBRATION") == "off":
        return {}, "not measured (DNNBENCH_CALIBRATION=off)"
    # The probes draw random tensors: on the case's own random stream they would shift every Dropout mask
    # after them, so that a seed trained differently with calibration on and off (A/B runs turn it off).
    cuda = [torch.cuda.current_device()] if device == "cuda" and torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=cuda):
        return calibrate(device, seconds=seconds)


class Measuring:
    """The conditions a case is measured under (module docstring); `lead` is the process that
    calibrates and writes the record (the only one, or rank 0)."""

    def __init__(self, case: Case, lead: bool = True) -> None:
        self.case, self.lead = case, lead
        self._precision = precision_mode(case)
        self._before: dict[str, float] = {}

    def __enter__(self) -> Measuring:
        allocator.pin()
        self._precision.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._precision.__exit__(*exc_info)
        if self.case.device == "cuda":
            torch.cuda.empty_cache()

    def calibrate_before(self) -> None:
        """The machine's speed just before the case: contention that slows the case slows the probes too."""
        if self.lead:
            self._before = probes(self.case.device)[0]

    def calibration(self) -> Calibration | None:
        """Before and after the case (the lead only)."""
        if not self.lead:
            return None
        after, what = probes(self.case.device)
        return Calibration(self._before, after, what)

    @contextlib.contextmanager
    def timed_steps(self):
        """The collector off while steps are timed (as pyperf and timeit do): a collection that lands in a
        step measures the process's other objects, not the step."""
        gc.collect()
        gc.disable()
        try:
            yield
        finally:
            gc.enable()


def run_here(
    training: Training,
    drive: Driver,
    conditions: Measuring,
    suites: tuple[str, ...],
    suite: str | None,
    started: float,
) -> Record | None:
    """Drive a built training to its record (None on a rank other than the lead)."""
    grouped = training.world > 1
    status, reason = "ok", ""
    conditions.calibrate_before()
    training.synchronize()
    with conditions.timed_steps():
        training.hooks.steps_begin()
        try:
            drive(training.step, training.between, training.plan.warmup_steps, training.plan.planned_steps)
        except StopTraining as stop:
            status, reason = stop.status, stop.reason
        except Exception as exc:
            if grouped:
                raise
            status, reason = ("oom" if is_oom(exc) else "error"), one_line(exc)
        finally:
            training.hooks.steps_end()
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
    extra = training.group_figures()
    record = None
    if conditions.lead:
        measured = collect_metrics(training, status, started)
        record = record_of(training, status, reason, measured, conditions.calibration(), suites, suite, extra)
    training.synchronize()
    return record
