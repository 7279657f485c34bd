"""Gate: did a run regress against a baseline? Built for CI on shared, noisy machines.

How a change becomes a regression (both must hold):
  1. it is worse than the metric's tolerance: a speed metric slowed by more than a factor 1 + t
     (throughput × 1/(1+t), time to target × (1+t)), memory grew by more than t, or test accuracy
     fell by more than t points;
  2. it is distinguishable from noise: the bootstrap confidence interval of the change (percentile
     interval, 2,000 resamples of each side's seeds, fixed random state so a gate is repeatable)
     lies wholly on the worse side of "no change".
Why a bootstrap interval and not a Mann–Whitney test: runs carry one to three seeds per case, and a
rank test on 3 vs 3 values cannot go below p = 0.1, so it could never flag anything; the bootstrap
interval uses the same few values, shrinks to the tolerance check alone with one seed per side, and
gives an interval that reads directly in the metric's units.

Speed metrics are normalized by the in-run calibration measured just before and after each case (a
small reference training step's rate by default, or a fixed matmul's GFLOP/s), so a baseline from a
faster or slower machine, or a case that ran while a neighbour held the cores, does not trip the gate;
raw and normalized changes are both shown. Each case's sensitivity to the machine's speed is fitted
where the records allow it (see `fit_slope`). Besides each case, the gate judges the geometric mean
of the normalized speed ratios over all common cases (bootstrap over cases): a slowdown of every step
by 25% is buried in a single short case's noise but stands out clearly in thirty.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnbench.errors import BadInput, unknown_choice
from dnnbench.records import METRIC_DIRECTION
from dnnbench.store import journal_path, load, read_run_meta

GATED = ("throughput_samples_per_s", "time_to_target_s", "final_test_accuracy", "peak_memory_bytes")
SPEED = ("throughput_samples_per_s", "time_to_target_s")  # normalized by the calibration
POINTS = ("final_test_accuracy",)  # tolerance in accuracy points (0.01 = 1 point), not relative
SEED_DEPENDENT = ("final_test_accuracy", "time_to_target_s")  # compared on the seeds both runs have
ENV_KEYS = ("device", "torch", "torch_threads", "cpu_model", "gpu_name", "cuda_build")
BASELINES_DIR = Path("results/baselines")
# normalize → (record column, run.json measure): the calibration that speed figures are adjusted by
NORMALIZATIONS = {
    "reference": ("calibration_ref", "ref_steps_per_s"),
    "matmul": ("calibration_gflops", "gflops"),
    "none": (None, None),
}


@dataclass(frozen=True)
class GateConfig:
    """Tolerances (see module docstring for their units) and the statistics' settings.

    The defaults are set from the A/A noise measured between independent smoke runs on a 2-core
    machine (docs/gate.md): the widest A/A per-case slowdown seen stays inside the tolerance."""

    tolerances: dict[str, float] = field(
        default_factory=lambda: {
            "throughput_samples_per_s": 1.0,
            "time_to_target_s": 1.0,
            "final_test_accuracy": 2.0,
            "peak_memory_bytes": 0.10,
        }
    )
    aggregate: float = 0.12  # allowed slowdown of the geometric mean over cases
    normalize: str = "reference"  # which calibration speed figures are adjusted by (NORMALIZATIONS)
    confidence: float = 0.95
    resamples: int = 2000
    fail_on_missing: bool = False

    def with_overrides(self, overrides: dict[str, Any]) -> GateConfig:
        tolerances = dict(self.tolerances)
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if key in GATED:
                tolerances[key] = _positive(key, value)
            elif key == "aggregate":
                changes[key] = _positive(key, value)
            elif key == "confidence":
                if not 0 < float(value) < 1:
                    raise BadInput(f"confidence must be in (0, 1), got {value!r}")
                changes[key] = float(value)
            elif key == "fail_on_missing":
                changes[key] = bool(value)
            elif key == "normalize":
                if value not in NORMALIZATIONS:
                    raise unknown_choice("normalization", value, NORMALIZATIONS)
                changes[key] = value
            else:
                raise unknown_choice(
                    "gate setting", key, (*GATED, "aggregate", "normalize", "confidence", "fail_on_missing")
                )
        return replace(self, tolerances=tolerances, **changes)


def _positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"tolerance for {name} must be a number, got {value!r}") from None
    if not number > 0:
        raise BadInput(f"tolerance for {name} must be > 0, got {value!r}")
    return number


def load_config(pyproject: Path | None, cli: list[str]) -> GateConfig:
    """Defaults, then [tool.dnnbench.gate] of pyproject.toml, then --tolerance METRIC=VALUE."""
    config = GateConfig()
    if pyproject is not None and pyproject.is_file():
        try:
            table = tomllib.loads(pyproject.read_text()).get("tool", {}).get("dnnbench", {}).get("gate", {})
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


# --- the two sides --------------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    frame: pd.DataFrame
    meta: dict[str, Any]

    def calibration(self, measure: str | None) -> float | None:
        """Mean of the run's start and end calibration `measure`, if it measured it."""
        values = [(self.meta.get(k) or {}).get(measure) for k in ("calibration_start", "calibration_end")]
        values = [v for v in values if v]
        return float(np.mean(values)) if measure and values else None

    @property
    def env(self) -> dict[str, Any]:
        return self.meta.get("env") or {}


def resolve_baseline(text: str) -> Path:
    """A path, or the name of a saved baseline under results/baselines/."""
    path = Path(text)
    if path.exists():
        return path
    if (BASELINES_DIR / text).exists():
        return BASELINES_DIR / text
    saved = sorted(p.name for p in BASELINES_DIR.glob("*") if p.is_dir()) if BASELINES_DIR.is_dir() else []
    raise BadInput(f"no baseline at {text!r}; saved baselines: {', '.join(saved) or 'none'}")


def load_side(path: str | Path) -> Side:
    source = journal_path(path)
    frame = load(path)
    if frame.empty:
        raise BadInput(f"{path} holds no records")
    return Side(source.parent.name, frame, read_run_meta(source.parent))


# --- statistics --------------------------------------------------------------------------------------------


MIN_CALIBRATION_SPREAD = 0.05  # sd of log calibration within a side below which no slope is fitted
MIN_RECORDS_FOR_SLOPE = 8  # both sides together: 3 seeds against 3 are too few to fit a slope on
MAX_SLOPE = 1.5  # a case cannot be more than 1.5x as sensitive to the machine's speed as the reference


def fit_slope(b_ok: pd.DataFrame, c_ok: pd.DataFrame, cal: tuple[str | None, float | None, float | None]) -> float:
    """How closely one case's throughput follows the machine's speed: d log(throughput) / d log(calibration).

    Each record carries the calibration measured just before and after its case (one without uses its
    run's). Cases do not all follow the machine's speed one to one: on the 2-core VM a batch-1 case moves
    1.7x when the reference step moves 1.6x, a batch-100 case 1.35x, the cubic cases not at all. So speed
    is normalized by a covariate adjustment (ANCOVA; CUPED in A/B testing) whose slope is fitted per case
    by least squares on both sides' records (every seed: throughput does not depend on it) after centring
    each side, so that a real regression between the sides does not bias it; clipped to [0, MAX_SLOPE].
    Where the calibration hardly varies within the sides, or they hold fewer than MIN_RECORDS_FOR_SLOPE
    records (one run against one run), the slope is 1: plain division by the calibration."""
    metric, column = "throughput_samples_per_s", cal[0]
    if column is None:
        return 1.0
    b_rows, c_rows = b_ok[b_ok[metric].notna()], c_ok[c_ok[metric].notna()]
    x_b, x_c = (_log_calibration(rows, column, run_value) for rows, run_value in ((b_rows, cal[1]), (c_rows, cal[2])))
    if x_b is None or x_c is None or len(x_b) + len(x_c) < MIN_RECORDS_FOR_SLOPE:
        return 1.0
    y_b, y_c = np.log(b_rows[metric].to_numpy(float)), np.log(c_rows[metric].to_numpy(float))
    dx = np.concatenate([x_b - x_b.mean(), x_c - x_c.mean()])
    dy = np.concatenate([y_b - y_b.mean(), y_c - y_c.mean()])
    if np.sqrt((dx**2).sum() / (len(dx) - 2)) < MIN_CALIBRATION_SPREAD:
        return 1.0
    return float(np.clip((dx * dy).sum() / (dx**2).sum(), 0.0, MAX_SLOPE))


def _calibrated(
    metric: str,
    b_rows: pd.DataFrame,
    c_rows: pd.DataFrame,
    cal: tuple[str | None, float | None, float | None],
    slope: float,
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Both sides' values of `metric`, a speed metric put at the baseline's median machine speed:
    log(metric) shifted by slope × (log calibration − that median); time to target moves against
    throughput (its slope is −slope). Also the signed slope used, None where nothing was adjusted."""
    raw_b, raw_c = b_rows[metric].to_numpy(float), c_rows[metric].to_numpy(float)
    column = cal[0]
    if metric not in SPEED or column is None:
        return raw_b, raw_c, None
    x_b, x_c = (_log_calibration(rows, column, run_value) for rows, run_value in ((b_rows, cal[1]), (c_rows, cal[2])))
    if x_b is None or x_c is None:
        return raw_b, raw_c, None  # compared raw; run_gate warns
    signed = slope if metric == "throughput_samples_per_s" else -slope
    x0 = float(np.median(x_b))
    return raw_b * np.exp(-signed * (x_b - x0)), raw_c * np.exp(-signed * (x_c - x0)), signed


def _log_calibration(rows: pd.DataFrame, column: str, run_value: float | None) -> np.ndarray | None:
    cal = rows[column] if column in rows else pd.Series(np.nan, index=rows.index)
    speed = cal.fillna(run_value if run_value else np.nan).to_numpy(float)
    return None if np.isnan(speed).any() else np.log(speed)


def _worse(metric: str, baseline: np.ndarray, current: np.ndarray) -> np.ndarray:
    """How much worse current is than baseline, per pair of (resampled) medians: log of the slowdown
    factor for relative metrics (> 0 is worse), lost accuracy points for POINTS."""
    if metric in POINTS:
        return (baseline - current) * 100
    return -METRIC_DIRECTION[metric] * np.log(current / baseline)


def _bootstrap_medians(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    if len(values) == 1:
        return np.repeat(values, resamples)
    return np.median(rng.choice(values, size=(resamples, len(values))), axis=1)


@dataclass
class Finding:
    case_id: str
    metric: str
    verdict: str  # ok, regressed, improved, noise (beyond tolerance, within noise), not gated
    baseline: float | None = None
    current: float | None = None
    change_pct: float | None = None  # raw change of the metric: % (points for accuracy)
    normalized_change_pct: float | None = None  # after calibration (speed metrics)
    ci_low: float | None = None  # the normalized change's confidence interval
    ci_high: float | None = None
    slope: float | None = None  # d log(metric) / d log(calibration) used to normalize (±1: plain division)
    n_baseline: int = 0
    n_current: int = 0
    note: str = ""


def _change_from_worse(metric: str, worse: float) -> float:
    """Back from the 'worse' scale to the metric's own change: % (or points for accuracy)."""
    if metric in POINTS:
        return -worse
    return (math.exp(-METRIC_DIRECTION[metric] * worse) - 1) * 100


def _verdict(worse: float, low: float, high: float, threshold: float) -> str:
    if worse > threshold:
        return "regressed" if low > 0 else "noise"
    if worse < -threshold:
        return "improved" if high < 0 else "noise"
    return "ok"


def _interval(metric: str, draws: np.ndarray, config: GateConfig) -> tuple[float, float, float, float]:
    """(low, high) of the 'worse' draws and the same bounds as changes of the metric."""
    alpha = (1 - config.confidence) / 2
    low, high = (float(q) for q in np.quantile(draws, [alpha, 1 - alpha]))
    change_low, change_high = sorted((_change_from_worse(metric, low), _change_from_worse(metric, high)))
    return low, high, change_low, change_high


def _time_budgeted(*sides: pd.DataFrame) -> bool:
    return any(side["reason"].fillna("").str.contains("training-time budget").any() for side in sides)


def judge_case(
    case_id: str,
    metric: str,
    b: pd.DataFrame,
    c: pd.DataFrame,
    cal: tuple[str | None, float | None, float | None],
    config: GateConfig,
    rng: np.random.Generator,
    slope: float = 1.0,
) -> Finding | None:
    """Compare one metric of one case over the seeds of each side; None when neither side has it.
    `cal` is the calibration column and the two runs' own values of it (for records without one);
    `slope` the case's fitted sensitivity to it (fit_slope)."""
    b_ok, c_ok = b[b["status"] == "ok"], c[c["status"] == "ok"]
    shared = set(b_ok["seed"]) & set(c_ok["seed"])
    if shared and metric in SEED_DEPENDENT:  # compare like with like; accuracy is exact for the same seed
        b_ok, c_ok = b_ok[b_ok["seed"].isin(shared)], c_ok[c_ok["seed"].isin(shared)]
    b_rows, c_rows = b_ok[b_ok[metric].notna()], c_ok[c_ok[metric].notna()]
    raw_b, raw_c = b_rows[metric].to_numpy(float), c_rows[metric].to_numpy(float)
    base = {"case_id": case_id, "metric": metric, "n_baseline": len(raw_b), "n_current": len(raw_c)}
    if len(raw_b):
        base["baseline"] = float(np.median(raw_b))
    if len(b_ok) and not len(c_ok):
        if c["status"].iloc[0] == "skipped":
            return None
        note = f"current run: {c['status'].iloc[0]}: {c['reason'].iloc[0]}"
        return Finding(verdict="regressed", note=note, **base)
    if metric == "time_to_target_s" and len(raw_b) and not len(raw_c):
        return Finding(verdict="regressed", note="the target is no longer reached within the budget", **base)
    if not len(raw_b) or not len(raw_c):
        return None
    base["current"] = float(np.median(raw_c))
    if metric in POINTS and _time_budgeted(b_ok, c_ok):
        return Finding(
            verdict="not gated", note="stopped by its time budget, so its accuracy depends on its speed", **base
        )
    nb, nc, signed_slope = _calibrated(metric, b_rows, c_rows, cal, slope)
    point = float(_worse(metric, np.median(nb), np.median(nc)))
    draws = _worse(metric, _bootstrap_medians(nb, config.resamples, rng), _bootstrap_medians(nc, config.resamples, rng))
    low, high, change_low, change_high = _interval(metric, draws, config)
    tol = config.tolerances[metric]
    raw = _change_from_worse(metric, float(_worse(metric, np.median(raw_b), np.median(raw_c))))
    return Finding(
        verdict=_verdict(point, low, high, tol if metric in POINTS else math.log1p(tol)),
        change_pct=raw,
        normalized_change_pct=_change_from_worse(metric, point),
        ci_low=change_low,
        ci_high=change_high,
        slope=signed_slope,
        **base,
    )


def judge_aggregate(findings: list[Finding], metric: str, config: GateConfig, rng: np.random.Generator) -> Finding:
    """Geometric mean of the normalized per-case ratios of a speed metric, bootstrap over cases."""
    changes = [f.normalized_change_pct for f in findings if f.metric == metric and f.normalized_change_pct is not None]
    worse = -METRIC_DIRECTION[metric] * np.log1p(np.array(changes) / 100)
    point = float(worse.mean())
    draws = rng.choice(worse, size=(config.resamples, len(worse))).mean(axis=1)
    low, high, change_low, change_high = _interval(metric, draws, config)
    return Finding(
        case_id=f"ALL {len(worse)} CASES (geometric mean)",
        metric=metric,
        verdict=_verdict(point, low, high, math.log1p(config.aggregate)),
        normalized_change_pct=_change_from_worse(metric, point),
        ci_low=change_low,
        ci_high=change_high,
        n_baseline=len(worse),
        n_current=len(worse),
    )


# --- the gate ------------------------------------------------------------------------------------------------


@dataclass
class GateResult:
    findings: list[Finding]
    warnings: list[str]
    missing: list[str]  # in the baseline, not in the current run
    new: list[str]  # in the current run, not in the baseline
    config: GateConfig
    normalization: str  # how speed metrics were normalized

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "regressed"]

    @property
    def failed(self) -> bool:
        return bool(self.regressions) or (self.config.fail_on_missing and bool(self.missing))

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([f.__dict__ for f in self.findings])


def environment_warnings(baseline: Side, current: Side) -> list[str]:
    out = []
    for key in ENV_KEYS:
        b, c = baseline.env.get(key), current.env.get(key)
        if b != c and (b or c):
            out.append(f"environments differ: {key} is {b!r} in the baseline and {c!r} now")
    for side in (baseline, current):
        start = (side.meta.get("calibration_start") or {}).get("gflops")
        end = (side.meta.get("calibration_end") or {}).get("gflops")
        if start and end and abs(end / start - 1) > 0.15:
            out.append(
                f"{side.name}: the machine's speed changed during the run (matmul {start:.0f} → {end:.0f} "
                "GFLOP/s); its speed figures are less reliable"
            )
    return out


def run_gate(baseline: Side, current: Side, config: GateConfig) -> GateResult:
    warnings = environment_warnings(baseline, current)
    column, measure = NORMALIZATIONS[config.normalize]
    what = {"reference": "the reference training step's rate", "matmul": "the matmul's GFLOP/s"}.get(config.normalize)
    per_case = column is not None and all(
        column in side.frame and side.frame[column].notna().any() for side in (baseline, current)
    )
    if column is None:
        normalization = "none (raw speed figures, as asked)"
    elif per_case:
        normalization = (
            f"per case, by {what} measured before and after each case, with each case's slope fitted where "
            "the calibration varies within a side (column slope; ±1 is plain division)"
        )
    elif baseline.calibration(measure) and current.calibration(measure):
        normalization = f"per run, by {what} at the start and end of each run"
    else:
        normalization = "none"
        warnings.append(f"no calibration ({config.normalize}) in one of the runs: speed metrics are compared raw")
    if column is not None and baseline.frame.groupby(["case_id", "seed"]).size().max() == 1:
        warnings.append(
            f"the baseline {baseline.name} is a single run: speed is divided by the calibration, which over-corrects "
            "cases that follow the machine's speed less than the reference does; save a baseline from several runs "
            "(dnnbench baseline RUN1 RUN2 ...) so each case's slope is fitted (docs/gate.md)"
        )
    b_ids, c_ids = set(baseline.frame["case_id"]), set(current.frame["case_id"])
    common = [i for i in dict.fromkeys(current.frame["case_id"]) if i in b_ids]
    if not common:
        raise BadInput(f"no cases in common between the baseline {baseline.name} and {current.name}")
    rng = np.random.default_rng(0)
    cal = (column, baseline.calibration(measure), current.calibration(measure))
    b_groups = dict(tuple(baseline.frame.groupby("case_id")))
    c_groups = dict(tuple(current.frame.groupby("case_id")))
    findings: list[Finding] = []
    for case_id in common:
        b, c = b_groups[case_id], c_groups[case_id]
        slope = fit_slope(b[b["status"] == "ok"], c[c["status"] == "ok"], cal)
        for metric in GATED:
            finding = judge_case(case_id, metric, b, c, cal, config, rng, slope)
            if finding is not None:
                findings.append(finding)
    for metric in SPEED:
        if sum(f.metric == metric and f.normalized_change_pct is not None for f in findings) >= 3:
            findings.append(judge_aggregate(findings, metric, config, rng))
    return GateResult(findings, warnings, sorted(b_ids - c_ids), sorted(c_ids - b_ids), config, normalization)


# --- output -----------------------------------------------------------------------------------------------------


def _fmt_value(metric: str, v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if metric == "peak_memory_bytes":
        return f"{v / 2**20:,.0f} MiB"
    if metric == "final_test_accuracy":
        return f"{v:.4f}"
    if metric == "time_to_target_s":
        return f"{v:.3g} s"
    return f"{v:,.0f}"


def _fmt_change(metric: str, v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:+.2f} pt" if metric in POINTS else f"{v:+.1f}%"


def display_table(result: GateResult, only_notable: bool = False) -> pd.DataFrame:
    rows = []
    for f in result.findings:
        if only_notable and f.verdict in ("ok", "not gated") and not f.case_id.startswith("ALL "):
            continue  # the brief table: the aggregates, and the rows that need a look
        rows.append(
            {
                "case": f.case_id,
                "metric": f.metric,
                "baseline": _fmt_value(f.metric, f.baseline),
                "current": _fmt_value(f.metric, f.current),
                "Δ raw": _fmt_change(f.metric, f.change_pct),
                "Δ normalized": _fmt_change(f.metric, f.normalized_change_pct),
                f"{result.config.confidence:.0%} CI": (
                    f"[{_fmt_change(f.metric, f.ci_low)}, {_fmt_change(f.metric, f.ci_high)}]"
                    if f.ci_low is not None
                    else "—"
                ),
                "slope": "—" if f.slope is None else f"{f.slope:+.2f}",
                "seeds": f"{f.n_baseline} vs {f.n_current}",
                "verdict": f.verdict.upper() if f.verdict == "regressed" else f.verdict,
                "note": f.note,
            }
        )
    return pd.DataFrame(rows)


def headline(result: GateResult) -> str:
    cases = len({f.case_id for f in result.findings if not f.case_id.startswith("ALL ")})
    if result.failed:
        parts = [f"{len(result.regressions)} regression(s)"]
        if result.config.fail_on_missing and result.missing:
            parts.append(f"{len(result.missing)} missing case(s)")
        return f"gate: FAIL: {', '.join(parts)} in {cases} common cases"
    noisy = sum(f.verdict == "noise" for f in result.findings)
    return f"gate: PASS: {cases} common cases within tolerance" + (
        f" ({noisy} change(s) beyond tolerance but within noise)" if noisy else ""
    )


def tolerance_line(config: GateConfig) -> str:
    parts = [f"{m} {v:g} pt" if m in POINTS else f"{m} {v:.0%}" for m, v in config.tolerances.items()] + [
        f"aggregate {config.aggregate:.0%}"
    ]
    return "tolerances: " + ", ".join(parts) + f"; confidence {config.confidence:.0%}"


def markdown(result: GateResult, baseline: str, current: str) -> str:
    lines = [
        f"## dnnbench gate: {'❌ FAIL' if result.failed else '✅ PASS'}",
        "",
        f"Baseline `{baseline}` vs current `{current}`. {headline(result)}.",
        "",
        tolerance_line(result.config) + f"; speed normalized {result.normalization}.",
        "",
    ]
    lines += [f"> ⚠️ {w}" for w in result.warnings]
    if result.missing:
        lines += ["", f"Cases only in the baseline ({len(result.missing)}): " + ", ".join(result.missing)]
    if result.new:
        lines += ["", f"Cases only in the current run ({len(result.new)}): " + ", ".join(result.new)]
    lines += ["", display_table(result).to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines)
