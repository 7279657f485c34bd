"""Record: the typed result of one case × seed, and its JSON form with a schema version.

Only the engine (measurement/) and the store (results/) construct records; a record is frozen once
built. `Record.from_json` reads every schema version this project has written, so last month's
runs and the committed baselines still load:

- version 1: calibration as flat keys (gflops_start, ref_start, …).
- version 2: calibration as named probes measured at the start and the end of the case, so that
  more probes can be added without a new version; the record states its protocol.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from dnnbench.core.errors import BadInput
from dnnbench.core.metrics import METRICS

SCHEMA_VERSION = 2
STATUSES = ("ok", "diverged", "oom", "skipped", "error")

# Calibration probes of schema version 1, by their version-2 names.
_V1_PROBES = {"matmul_gflops": ("gflops_start", "gflops_end"), "reference_steps_per_s": ("ref_start", "ref_end")}
_V1_RUN_PROBES = {"gflops": "matmul_gflops", "ref_steps_per_s": "reference_steps_per_s"}


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if mapping is None else MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Target:
    """What the case trained towards and whether it got there."""

    metric: str  # "val_accuracy" or "val_mse" (or test_*, under the note's protocol)
    value: float | None  # None: the workload has no target
    reached: bool
    status: str  # "reached", "not reached within the budget (…)", …
    eval_every_samples: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Calibration:
    """The machine's speed just before and after a case, per probe (probe name → value)."""

    start: Mapping[str, float]
    end: Mapping[str, float]
    what: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _frozen(self.start))
        object.__setattr__(self, "end", _frozen(self.end))

    def mean(self, probe: str) -> float | None:
        """Mean of the start and end values of `probe`, None where it was not measured."""
        values = [v for v in (self.start.get(probe), self.end.get(probe)) if v]
        return sum(values) / len(values) if values else None

    def to_json(self) -> dict[str, Any]:
        return {"start": dict(self.start), "end": dict(self.end), "what": self.what}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Calibration:
        return cls(dict(d.get("start") or {}), dict(d.get("end") or {}), d.get("what") or "")


@dataclass(frozen=True)
class Record:
    """One case × seed: its config, status, metrics (names from core/metrics.py) and context."""

    case_id: str
    seed: int
    case: Mapping[str, Any]  # the Case's fields as plain data
    status: str  # one of STATUSES
    env: Mapping[str, Any]
    reason: str = ""
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    phase_fractions: Mapping[str, float] | None = None
    resolved: Mapping[str, Any] | None = None  # the plan the engine resolved (learning rate, steps, …)
    target: Target | None = None
    curves: Mapping[str, Any] | None = None  # loss per step and validation points, for charts
    memory_kind: str | None = None
    calibration: Calibration | None = None
    protocol: str = "benchmark"  # "benchmark" (held-out validation split) or "note" (the study note's)
    suite: str | None = None  # the suite that measured it
    suites: tuple[str, ...] = ()  # every suite of the matrix that lists this case
    run_id: str | None = None  # the run folder's name, stamped by the journal
    benchmark: Mapping[str, Any] | None = None  # pytest-benchmark's entry for this case
    source_run: str | None = None  # the run a baseline record came from
    finished_at: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; choose from: {', '.join(STATUSES)}")
        unknown = set(self.metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"metric(s) {', '.join(sorted(unknown))} not in the metric registry (core/metrics.py)")
        complete = dict.fromkeys(METRICS)
        complete.update(self.metrics)
        object.__setattr__(self, "metrics", _frozen(complete))
        object.__setattr__(self, "case", _frozen(self.case))
        object.__setattr__(self, "env", _frozen(self.env))
        object.__setattr__(self, "suites", tuple(self.suites))

    @property
    def key(self) -> tuple[str, int]:
        """What makes a record unique within a run."""
        return self.case_id, int(self.seed)

    def with_context(self, **changes: Any) -> Record:
        """A copy with run context set by the store (run_id, benchmark, source_run); used by results/."""
        allowed = {"run_id", "benchmark", "source_run", "curves"}
        if not set(changes) <= allowed:
            raise TypeError(
                f"only {sorted(allowed)} may change after measurement, not {sorted(set(changes) - allowed)}"
            )
        return replace(self, **changes)

    # --- JSON ----------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (Target, Calibration)):
                value = value.to_json()
            elif isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Record:
        """A record from its JSON form, any schema version this project wrote; BadInput otherwise."""
        version = d.get("schema_version")
        if version == 1:
            d = _upgrade_v1(d)
        elif version != SCHEMA_VERSION:
            raise BadInput(f"record schema version {version!r} is not supported (this dnnbench reads 1 and 2)")
        try:
            known = {f.name for f in fields(cls)}
            values = {k: v for k, v in d.items() if k in known}
            if values.get("target"):
                values["target"] = Target(**values["target"])
            if values.get("calibration"):
                values["calibration"] = Calibration.from_json(values["calibration"])
            # A figure this dnnbench no longer knows (renamed or retired) is left out, not an error.
            values["metrics"] = {k: v for k, v in (values.get("metrics") or {}).items() if k in METRICS}
            values["env"] = values.get("env") or {}
            values["suites"] = tuple(values.get("suites") or ([d["suite"]] if d.get("suite") else []))
            return cls(**values)
        except (TypeError, ValueError, KeyError) as exc:
            raise BadInput(f"not a dnnbench record ({exc})") from None


def _upgrade_v1(d: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(d)
    old = d.get("calibration")
    if old:
        out["calibration"] = {
            "start": {probe: old.get(keys[0]) for probe, keys in _V1_PROBES.items() if old.get(keys[0])},
            "end": {probe: old.get(keys[1]) for probe, keys in _V1_PROBES.items() if old.get(keys[1])},
            "what": old.get("what") or "",
        }
    target = d.get("target")
    if target:
        out["target"] = {k: target.get(k) for k in ("metric", "value", "reached", "status", "eval_every_samples")}
        out["target"]["reached"] = bool(target.get("reached"))
        out["target"]["status"] = target.get("status") or ""
    return out


def upgrade_run_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """run.json's calibration probes under their version-2 names (older runs used gflops, ref_steps_per_s)."""
    out = dict(meta)
    for moment in ("calibration_start", "calibration_end"):
        probes = out.get(moment)
        if probes:
            out[moment] = {_V1_RUN_PROBES.get(k, k): v for k, v in probes.items()}
    for source in out.get("sources") or []:
        if source.get("calibration_start"):
            source["calibration_start"] = {_V1_RUN_PROBES.get(k, k): v for k, v in source["calibration_start"].items()}
    return out


def finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: a diverged loss is stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
