"""One-line, human-readable summaries of a record, for progress output (CLI and pytest)."""

from __future__ import annotations

from dnnbench.core.metrics import METRICS
from dnnbench.core.record import Record


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
