"""One-line, human-readable summaries of a record, for progress output."""

from __future__ import annotations

from typing import Any


def one_line_summary(record: dict[str, Any]) -> str:
    status = record["status"]
    if status == "skipped":
        return f"skipped: {record['reason']}"
    m = record["metrics"]
    parts = [status if status == "ok" else f"{status.upper()}: {record['reason']}"]
    if m.get("throughput_samples_per_s"):
        parts.append(f"{m['throughput_samples_per_s']:,.0f} samples/s")
    if m.get("step_time_ms_median") is not None:
        p10, p50, p90 = (m[f"step_time_ms_{q}"] for q in ("p10", "median", "p90"))
        parts.append(f"step {p50:.3g} ms (p10 {p10:.3g}, p90 {p90:.3g})")
    if m.get("data_wait_fraction") is not None:
        parts.append(f"data wait {m['data_wait_fraction']:.0%}")
    if m.get("final_test_accuracy") is not None:
        parts.append(f"test acc {m['final_test_accuracy']:.4f}")
    elif m.get("final_test_loss") is not None:
        parts.append(f"test MSE {m['final_test_loss']:.4f}")
    target = record.get("target") or {}
    if target.get("reached"):
        seconds, epochs = m["time_to_target_s"], m["epochs_to_target"]
        parts.append(f"target {target['value']:g} reached in {seconds:.3g} s ({epochs:.2f} epochs)")
    elif target.get("status"):
        parts.append(f"target {target['status']}")
    if status == "ok" and record.get("reason"):
        parts.append(record["reason"])
    return " · ".join(parts)
