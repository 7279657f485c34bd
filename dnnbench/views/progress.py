"""Progress output (CLI, pytest, tools): a record in one line, and done/total with the time left."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TextIO

from dnnbench.core.metrics import METRICS
from dnnbench.core.record import Record
from dnnbench.results.time_left import TimeLeft


def one_line_summary(record: Record) -> str:
    status = record.status
    if status == "skipped":
        return f"skipped: {record.reason}"
    m = record.metrics
    parts = [status if status == "ok" else f"{status.upper()}: {record.reason}"]
    if m["throughput_samples_per_s"]:
        parts.append(f"{METRICS['throughput_samples_per_s'].format(m['throughput_samples_per_s'])} samples/s")
    if m["step_time_ms_median"] is not None:
        p10, p50, p90 = (m[f"step_time_ms_{q}"] for q in ("p10", "median", "p90"))
        parts.append(f"step {p50:.3g} ms (p10 {p10:.3g}, p90 {p90:.3g})")
    if m["data_wait_fraction"] is not None:
        parts.append(f"data wait {METRICS['data_wait_fraction'].format(m['data_wait_fraction'])}")
    if m["final_test_accuracy"] is not None:
        parts.append(f"test acc {METRICS['final_test_accuracy'].format(m['final_test_accuracy'])}")
    elif m["final_test_loss"] is not None:
        on = "MSE on the training data" if record.target and record.target.metric == "train_mse" else "test MSE"
        parts.append(f"{on} {m['final_test_loss']:.4f}")
    target = record.target
    if target and target.reached:
        seconds, epochs = m["time_to_target_s"], m["epochs_to_target"]
        where = " on the test set" if target.metric.startswith("test") else ""
        parts.append(f"target {target.value:g} reached{where} in {seconds:.3g} s ({epochs:.2f} epochs)")
    elif target and target.status:
        parts.append(f"target {target.status}")
    if status == "ok" and record.reason:
        parts.append(record.reason)
    return " · ".join(parts)


def duration(seconds: float) -> str:
    """42s, 7m05s, 2h03m: coarse on purpose, an estimate is no more precise."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def time_left_line(done: int, total: int, elapsed: float, left: float, unit: str = "") -> str:
    """'[23/107 21%] 2m05s elapsed, about 7m40s left' (the estimate: results.time_left)."""
    share = done / total if total else 1.0
    when = "done" if done >= total else f"about {duration(left)} left"
    return f"[{done}/{total}{unit} {share:.0%}] {duration(elapsed)} elapsed, {when}"


def wants_progress(stream: TextIO | None) -> bool:
    """Progress lines go to a terminal only: a CI log stays one line per case. DNNBENCH_PROGRESS=1
    (yes, true, on) forces them, =0 (no, false, off) silences them."""
    forced = os.environ.get("DNNBENCH_PROGRESS", "").strip().lower()
    if forced in ("1", "yes", "true", "on"):
        return True
    if forced in ("0", "no", "false", "off"):
        return False
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def show_time_left(estimate: TimeLeft, log: Callable[[str], object] = print, stream: TextIO | None = None) -> None:
    """One time-left line through `log`, when its output is a terminal (wants_progress) and there is
    a plan to count (a run that keeps no records has none)."""
    if estimate.total and wants_progress(stream if stream is not None else sys.stdout):
        log(f"  {time_left_line(estimate.done, estimate.total, estimate.elapsed(), estimate.left())}")
