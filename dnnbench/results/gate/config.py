"""The gate's settings: tolerances per metric (defaults from the metric registry), the aggregate's
tolerance, the normalization and the statistics; read from [tool.dnnbench.gate] and --tolerance."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from dnnbench.core.errors import BadInput, unknown_choice
from dnnbench.core.metrics import METRICS, gated
from dnnbench.core.probes import BY_NORMALIZE

# normalize → the calibration probe speed figures are adjusted by (measurement/calibration.py). The
# first two share no code with the cases; the torch probes run what a torch regression slows.
NORMALIZATIONS: dict[str, str | None] = {name: probe.key for name, probe in BY_NORMALIZE.items()} | {"none": None}
INDEPENDENT = (*(name for name, probe in BY_NORMALIZE.items() if probe.independent), "none")


def _default_tolerances() -> dict[str, float]:
    # A gated metric always carries a tolerance (core/metrics.py).
    return {name: float(cast(float, METRICS[name].tolerance)) for name in gated()}


@dataclass(frozen=True)
class GateConfig:
    """Tolerances (units: core/metrics.GATE_KINDS) and the statistics' settings.

    The defaults are set from the A/A noise measured between independent smoke runs on a 2-core
    machine (docs/gate.md): the widest A/A per-case slowdown seen stays inside the tolerance."""

    tolerances: dict[str, float] = field(default_factory=_default_tolerances)
    aggregate: float = 0.12  # allowed slowdown of the geometric mean over cases
    group: float = 0.20  # one batch-size class or suite against the other cases (results/gate/groups.py)
    # With spread_multiplier > 0 a baseline of several runs gives each case its own speed tolerance: this
    # many standard deviations of its spread between those runs, at least tolerance_floor, at most the
    # metric's tolerance above. Off by default: on a 2-core VM, 3-5 runs estimate a case's spread too
    # poorly for 55 cases at once (A/A false alarms 63-80% at 4 sd: docs/gate.md).
    spread_multiplier: float = 0.0
    tolerance_floor: float = 0.05
    normalize: str = "numpy"  # which calibration probe speed figures are adjusted by (NORMALIZATIONS)
    confidence: float = 0.95
    resamples: int = 2000
    # A case the baseline (or the base) has and the current run (head) did not record fails the gate:
    # a crash that loses a class of cases must not pass as "only in the baseline". --allow-missing relaxes.
    fail_on_missing: bool = True
    # Speed is judged only between runs of one machine fingerprint (core/machine.py); True vouches for
    # runs whose fingerprints differ or are missing.
    assume_same_machine: bool = False

    def with_overrides(self, overrides: dict[str, Any]) -> GateConfig:
        tolerances = dict(self.tolerances)
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if key in tolerances:
                tolerances[key] = _positive(key, value)
            elif key in ("aggregate", "group", "tolerance_floor"):
                changes[key] = _positive(key, value)
            elif key == "spread_multiplier":  # 0 turns per-case tolerances off
                changes[key] = 0.0 if str(value).strip() in ("0", "0.0") else _positive(key, value)
            elif key == "confidence":
                if not 0 < float(value) < 1:
                    raise BadInput(f"confidence must be in (0, 1), got {value!r}")
                changes[key] = float(value)
            elif key in ("fail_on_missing", "assume_same_machine"):
                changes[key] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif key == "normalize":
                if value not in NORMALIZATIONS:
                    raise unknown_choice("normalization", value, NORMALIZATIONS)
                changes[key] = value
            else:
                raise unknown_choice(
                    "gate setting",
                    key,
                    (
                        *tolerances,
                        "aggregate",
                        "group",
                        "spread_multiplier",
                        "tolerance_floor",
                        "normalize",
                        "confidence",
                        "fail_on_missing",
                        "assume_same_machine",
                    ),
                )
        return replace(self, tolerances=tolerances, **changes)


def _positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"tolerance for {name} must be a number, got {value!r}") from None
    if not number > 0 or number == float("inf"):
        raise BadInput(f"tolerance for {name} must be a finite number > 0, got {value!r}")
    return number


def load_config(pyproject: Path | None, cli: list[str], section: str = "gate") -> GateConfig:
    """Defaults, then [tool.dnnbench.<section>] of pyproject.toml ("gate" for the baseline gate, "ab" for
    A/B runs), then --tolerance METRIC=VALUE."""
    config = GateConfig()
    if pyproject is not None and pyproject.is_file():
        try:
            table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("dnnbench", {}).get(section, {})
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"{pyproject}: {exc}") from None
        config = config.with_overrides(table)
    overrides = {}
    for item in cli:
        key, sep, value = item.partition("=")
        if not sep:
            raise BadInput(f"--tolerance expects METRIC=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return config.with_overrides(overrides)
