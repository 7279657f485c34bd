"""Records: the plain-data result of one case × seed, with a schema version.

A record is a JSON object; the metric names below are the public schema that tables, the gate and
the report read. SCHEMA_VERSION goes up when a field changes meaning, and `upgrade` keeps older
records loadable.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1

STATUSES = ("ok", "diverged", "oom", "skipped", "error")

# The public metric names (issue: "these names are the public schema").
METRICS = (
    "throughput_samples_per_s",
    "step_time_ms_median",
    "step_time_ms_p10",
    "step_time_ms_p90",
    "time_to_target_s",
    "steps_to_target",
    "epochs_to_target",
    "final_test_accuracy",
    "final_test_loss",
    "final_train_loss",
    "final_train_accuracy",
    "best_val_accuracy",
    "best_val_loss",
    "generalization_gap",
    "peak_memory_bytes",
    "process_peak_rss_bytes",
    "data_wait_fraction",
    "train_time_s",
    "eval_time_s",
    "wall_time_s",
    "steps",
    "samples",
    "epochs_completed",
)


def key(record: dict[str, Any]) -> tuple[str, int]:
    """What makes a record unique within a run: the case id and the seed."""
    return record["case_id"], int(record["seed"])


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """Bring an older record to the current schema (version 1 is the first)."""
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"record schema version {version!r} is not supported (expected {SCHEMA_VERSION})")
    return record


def unmeasured_record(
    case: dict[str, Any], case_id: str, seed: int, status: str, reason: str, env: dict[str, Any]
) -> dict[str, Any]:
    """A record for a case that produced no measurement (skipped, or failed before training), so
    that reports show it rather than drop it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "case_id": case_id,
        "seed": seed,
        "case": case,
        "status": status,
        "reason": reason,
        "metrics": dict.fromkeys(METRICS),
        "phase_fractions": None,
        "resolved": None,
        "target": None,
        "curves": None,
        "env": env,
    }


# Which way is better, for comparisons (report Δ columns, the gate): +1 higher is better, -1 lower.
METRIC_DIRECTION: dict[str, int] = {
    "throughput_samples_per_s": +1,
    "step_time_ms_median": -1,
    "step_time_ms_p10": -1,
    "step_time_ms_p90": -1,
    "time_to_target_s": -1,
    "steps_to_target": -1,
    "epochs_to_target": -1,
    "final_test_accuracy": +1,
    "final_test_loss": -1,
    "final_train_loss": -1,
    "best_val_accuracy": +1,
    "best_val_loss": -1,
    "generalization_gap": -1,
    "peak_memory_bytes": -1,
    "data_wait_fraction": -1,
}

# Units for labels in tables and charts.
METRIC_LABELS: dict[str, str] = {
    "throughput_samples_per_s": "throughput (samples/s)",
    "step_time_ms_median": "step time, median (ms)",
    "step_time_ms_p90": "step time, p90 (ms)",
    "time_to_target_s": "time to target (s)",
    "steps_to_target": "steps to target",
    "epochs_to_target": "epochs to target",
    "final_test_accuracy": "final test accuracy",
    "final_test_loss": "final test loss",
    "final_train_loss": "final train loss",
    "best_val_accuracy": "best validation accuracy",
    "generalization_gap": "train − test gap",
    "peak_memory_bytes": "peak memory (bytes)",
    "data_wait_fraction": "data-wait share",
}
