"""Judgement: per case and metric, and over all cases, did the current run regress?

A change is a regression when both hold: it is worse than the metric's tolerance, and the bootstrap
confidence interval of the change lies wholly on the worse side of "no change" (docs/gate.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NotRequired, TypedDict

import numpy as np
import pandas as pd

from dnnbench.core import machine
from dnnbench.core.errors import BadInput
from dnnbench.core.metrics import METRICS, gated
from dnnbench.core.probes import BY_NORMALIZE
from dnnbench.results.frames import PROBE_COLUMNS
from dnnbench.results.gate import statistics as st
from dnnbench.results.gate.config import INDEPENDENT, NORMALIZATIONS, GateConfig
from dnnbench.results.gate.groups import MIN_GROUP_CASES, case_groups
from dnnbench.results.gate.sides import Side, environment_warnings

WHAT = {name: probe.described for name, probe in BY_NORMALIZE.items()}
# Between two runs the torch reference step and the independent probe may drift apart by this much
# before the gate stops normalizing by either: above the widest gap seen between A/A runs of unchanged
# code on the 2-core VMs (11.4%; docs/gate.md); a baseline of several runs widens it to
# DISAGREEMENT_SPREADS times the spread its own runs showed.
CALIBRATION_DISAGREEMENT = 0.12
DISAGREEMENT_SPREADS = 3.0
MIN_RUNS_FOR_SPREAD = 3


@dataclass
class Finding:
    case_id: str  # for an aggregate: a label such as "ALL 32 CASES (geometric mean)"
    metric: str
    verdict: str  # ok, regressed, improved, noise (beyond tolerance, within noise), not gated
    scope: str = "case"  # "case", "aggregate" (geometric mean over cases) or "group" (over one group's)
    baseline: float | None = None
    current: float | None = None
    change_pct: float | None = None  # raw change of the metric: % (points for accuracy)
    normalized_change_pct: float | None = None  # after calibration (speed metrics)
    ci_low: float | None = None  # the normalized change's confidence interval
    ci_high: float | None = None
    slope: float | None = None  # d log(metric) / d log(calibration) used to normalize (±1: plain division)
    tolerance: float | None = None  # the tolerance this finding was judged by (points or a fraction)
    tolerance_source: str = ""  # "default", or the baseline runs whose spread set it
    n_baseline: int = 0
    n_current: int = 0
    note: str = ""


class FindingFields(TypedDict):
    """The fields of a Finding that judge_case and paired.judge_pairs gather before the verdict."""

    case_id: str
    metric: str
    baseline: NotRequired[float]
    current: NotRequired[float]
    n_baseline: NotRequired[int]
    n_current: NotRequired[int]


@dataclass
class GateResult:
    findings: list[Finding]
    warnings: list[str]
    missing: list[str]  # in the baseline, not in the current run
    new: list[str]  # in the current run, not in the baseline
    config: GateConfig
    normalization: str  # how speed metrics were normalized, in words
    calibration_note: str | None = None  # the calibration disagreed with an independent probe
    machine_note: str | None = None  # the runs were measured on different machines: no speed verdict
    lost: list[str] = field(default_factory=list)  # cases run (or measured before) and not recorded now, why

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "regressed"]

    @property
    def unrecorded(self) -> set[str]:
        """Every case the verdict counts as not recorded: only in the baseline, or run and lost (each
        `lost` line starts with its case id)."""
        return set(self.missing) | {line.split()[0].rstrip(":") for line in self.lost}

    @property
    def failed(self) -> bool:
        return bool(self.regressions) or (self.config.fail_on_missing and bool(self.missing or self.lost))

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    @property
    def case_count(self) -> int:
        return len({f.case_id for f in self.findings if f.scope == "case"})


FAILED = ("error", "oom", "diverged")


def more_failures(case_id: str, b: pd.DataFrame, c: pd.DataFrame, key: str, side: str) -> Finding | None:
    """A case that now fails (error, out of memory, diverged) on seeds (or rounds: `key`) where the
    baseline did not is a regression, even while its other seeds still give figures; a case failing on
    every seed is judged per metric already."""
    if not len(c) or c["status"].isin(FAILED).all():
        return None
    b_failed, c_failed = set(b.loc[b["status"].isin(FAILED), key]), set(c.loc[c["status"].isin(FAILED), key])
    shared = set(b[key]) & set(c[key])
    new = (
        sorted(c_failed & shared - b_failed) if shared else (sorted(c_failed) if len(c_failed) > len(b_failed) else [])
    )
    if not new:
        return None
    first = c[c[key] == new[0]].iloc[0]
    where = ", ".join(str(k) for k in new)
    note = f"{side}: {first['status']} in {key} {where} of {len(c)}: {first['reason']}"
    metric = next(m for m in gated() if METRICS[m].speed)
    return Finding(case_id, metric, "regressed", note=note, n_baseline=len(b), n_current=len(c))


def fewer_reached(b_ok: pd.DataFrame, c_ok: pd.DataFrame, unit: str) -> str | None:
    """Why it is a regression when a smaller share of the finished seeds (or rounds) reached the target
    than in the baseline: a missed target counts as not reached, not as a value left out of the median."""
    b_n, c_n = len(b_ok), len(c_ok)
    b_r, c_r = int(b_ok["time_to_target_s"].notna().sum()), int(c_ok["time_to_target_s"].notna().sum())
    if not b_n or not c_n or c_r * b_n >= b_r * c_n:
        return None
    return f"the target was reached in {c_r} of {c_n} {unit} (baseline: {b_r} of {b_n})"


def now_skipped(b: pd.DataFrame, c: pd.DataFrame) -> str | None:
    """Why the current run skipped a case the baseline measured (None when it did not)."""
    if len(c) and (c["status"] == "skipped").all() and (b["status"] == "ok").any():
        return str(c["reason"].iloc[0])
    return None


def _time_budgeted(*sides: pd.DataFrame) -> bool:
    return any(side["reason"].fillna("").str.contains("training-time budget").any() for side in sides)


def judge_case(
    case_id: str,
    metric: str,
    b: pd.DataFrame,
    c: pd.DataFrame,
    ref: st.SpeedReference,
    config: GateConfig,
    rng: np.random.Generator,
    slope: float = 1.0,
) -> Finding | None:
    """Compare one metric of one case over the seeds of each side; None when neither side has it.
    `slope` is the case's fitted sensitivity to the machine's speed (statistics.fit_slope)."""
    b_ok, c_ok = b[b["status"] == "ok"], c[c["status"] == "ok"]
    shared = set(b_ok["seed"]) & set(c_ok["seed"])
    if shared and METRICS[metric].per_seed:  # compare like with like; accuracy is exact for the same seed
        b_ok, c_ok = b_ok[b_ok["seed"].isin(shared)], c_ok[c_ok["seed"].isin(shared)]
    b_rows, c_rows = b_ok[b_ok[metric].notna()], c_ok[c_ok[metric].notna()]
    raw_b, raw_c = b_rows[metric].to_numpy(float), c_rows[metric].to_numpy(float)
    base: FindingFields = {"case_id": case_id, "metric": metric, "n_baseline": len(raw_b), "n_current": len(raw_c)}
    if len(raw_b):
        base["baseline"] = float(np.median(raw_b))
    if len(b_ok) and not len(c_ok):
        if c["status"].iloc[0] == "skipped":
            return None
        note = f"current run: {c['status'].iloc[0]}: {c['reason'].iloc[0]}"
        return Finding(verdict="regressed", note=note, **base)
    if metric == "time_to_target_s" and len(raw_b) and not len(raw_c):
        return Finding(verdict="regressed", note="the target is no longer reached within the budget", **base)
    missed = fewer_reached(b_ok, c_ok, "seeds") if metric == "time_to_target_s" else None
    if missed:
        return Finding(verdict="regressed", note=missed, **base)
    if not len(raw_b) or not len(raw_c):
        return None
    base["current"] = float(np.median(raw_c))
    if METRICS[metric].in_points and _time_budgeted(b_ok, c_ok):
        return Finding(
            verdict="not gated", note="stopped by its time budget, so its accuracy depends on its speed", **base
        )
    nb, nc, signed_slope = st.adjusted(metric, b_rows, c_rows, ref, slope)
    tolerance = st.CaseTolerance(config.tolerances[metric])
    if METRICS[metric].speed and config.spread_multiplier and "source_run" in b_rows:
        tolerance = st.case_tolerance(
            nb, b_rows["source_run"].to_numpy(), tolerance.value, config.spread_multiplier, config.tolerance_floor
        )
    point = float(st.worse(metric, np.median(nb), np.median(nc)))
    draws = st.worse(
        metric,
        st.bootstrap_medians(nb, config.resamples, rng),
        st.bootstrap_medians(nc, config.resamples, rng),
    )
    ci = st.interval(metric, draws, config.confidence)
    raw = st.change_from_worse(metric, float(st.worse(metric, np.median(raw_b), np.median(raw_c))))
    return Finding(
        verdict=st.verdict(point, ci, st.threshold(metric, tolerance.value)),
        change_pct=raw,
        normalized_change_pct=st.change_from_worse(metric, point),
        ci_low=ci.change_low,
        ci_high=ci.change_high,
        slope=signed_slope,
        tolerance=tolerance.value,
        tolerance_source=tolerance.source,
        **base,
    )


def judge_aggregate(
    findings: list[Finding],
    metric: str,
    config: GateConfig,
    rng: np.random.Generator,
    group: tuple[str, list[str]] | None = None,
) -> Finding:
    """Geometric mean of the normalized per-case ratios of a speed metric, bootstrap over cases, over
    every case (scope "aggregate", config.aggregate); or (scope "group", config.group) the geometric
    mean over one group's cases against the mean over the other cases. Between two runs measured apart,
    the whole machine drifts (A/A runs moved −14% … +14% as a whole on the 2-core VMs): that is the
    aggregate's to judge, and the group's question is whether its cases slowed more than the rest. A
    difference cannot say which side moved, so a group also needs its own change to go the same way by
    at least half the tolerance: the other cases getting faster does not convict a group that did not
    change (judge_means leaves out groups whose rest has fewer than MIN_GROUP_CASES cases)."""
    cases = [f for f in findings if f.scope == "case" and f.metric == metric and f.normalized_change_pct is not None]
    worse = -METRICS[metric].direction * np.log1p(np.array([f.normalized_change_pct for f in cases]) / 100)
    inside = np.array([group is None or f.case_id in group[1] for f in cases])
    own = float(worse[inside].mean())
    draws = rng.choice(worse[inside], size=(config.resamples, int(inside.sum()))).mean(axis=1)
    tolerance = config.group if group else config.aggregate
    point, note = own, ""
    if group is not None:
        rest = worse[~inside]
        point = own - float(rest.mean())
        draws = draws - rng.choice(rest, size=(config.resamples, len(rest))).mean(axis=1)
        note = (
            f"against the other {len(rest)} cases, which moved {st.change_from_worse(metric, rest.mean()):+.1f}%; "
            f"its own change {st.change_from_worse(metric, own):+.1f}%"
        )
    ci = st.interval(metric, draws, config.confidence)
    verdict = st.verdict(point, ci, np.log1p(tolerance))
    moved_itself = abs(own) >= np.log1p(tolerance) / 2 and np.sign(own) == np.sign(point)
    if group is not None and verdict in ("regressed", "improved") and not moved_itself:
        verdict = "ok"
        note += " (under half the tolerance: the other cases moved, not this group)"
    return Finding(
        case_id=mean_label(int(inside.sum()), group[0] if group else None),
        metric=metric,
        scope="group" if group else "aggregate",
        verdict=verdict,
        normalized_change_pct=st.change_from_worse(metric, point),
        ci_low=ci.change_low,
        ci_high=ci.change_high,
        tolerance=tolerance,
        n_baseline=int(inside.sum()),
        n_current=int(inside.sum()),
        note=note,
    )


def mean_label(cases: int, group: str | None) -> str:
    """How a geometric mean is named in the findings: 'ALL 55 CASES …' or 'GROUP batch 1 (7 CASES …)'."""
    if group is None:
        return f"ALL {cases} CASES (geometric mean)"
    return f"GROUP {group} ({cases} cases, geometric mean)"


def judge_means(
    findings: list[Finding], metric: str, groups: dict[str, list[str]], config: GateConfig, rng: np.random.Generator
) -> list[Finding]:
    """The aggregate over every case, then one finding per group with MIN_GROUP_CASES judged cases and at
    least as many judged cases outside it (a rest of one or two cases would pass its own noise off as
    the group's, with an interval that leaves that noise out)."""
    judged = {
        f.case_id for f in findings if f.scope == "case" and f.metric == metric and f.normalized_change_pct is not None
    }
    if len(judged) < MIN_GROUP_CASES:
        return []
    means = [judge_aggregate(findings, metric, config, rng)]
    for label, ids in groups.items():
        if min(len(judged & set(ids)), len(judged - set(ids))) >= MIN_GROUP_CASES:
            means.append(judge_aggregate(findings, metric, config, rng, (label, ids)))
    return means


def _normalization(baseline: Side, current: Side, config: GateConfig) -> tuple[st.SpeedReference, str, list[str]]:
    """What speed is adjusted by, that choice in words, and warnings about it."""
    probe = NORMALIZATIONS[config.normalize]
    column = PROBE_COLUMNS.get(probe) if probe else None
    warnings = []
    what = WHAT.get(config.normalize)
    per_case = column is not None and all(
        column in side.frame and side.frame[column].notna().any() for side in (baseline, current)
    )
    on_gpu = any("device" in side.frame and (side.frame["device"] == "cuda").any() for side in (baseline, current))
    if column is not None and on_gpu:  # the probes run on the CPU: they say nothing of a GPU's speed
        column, per_case = None, False
        words = "none: CUDA cases, and the calibration probes measure the CPU, not the GPU"
    elif column is None:
        words = "none (raw speed figures, as asked)"
    elif per_case:
        words = (
            f"per case, by {what} measured before and after each case, with each case's slope fitted where "
            "the calibration varies within a side (column slope; ±1 is plain division)"
        )
    elif baseline.calibration(probe) and current.calibration(probe):
        words = f"per run, by {what} at the start and end of each run"
    else:
        column = None
        words = "none"
        warnings.append(f"no calibration ({config.normalize}) in one of the runs: speed metrics are compared raw")
    if column is not None and baseline.is_single_run:
        warnings.append(
            f"the baseline {baseline.name} is a single run: speed is divided by the calibration, which over-corrects "
            "cases that follow the machine's speed less than the probe does; save a baseline from several runs "
            "(dnnbench baseline RUN1 RUN2 ...) so each case's slope is fitted (docs/gate.md)"
        )
    if config.normalize not in INDEPENDENT:
        warnings.append(
            f"speed is normalized by {what}, which runs torch as the cases do: a regression in torch (or in "
            "anything the probe shares with the cases) slows it too and is divided away"
        )
    ref = st.SpeedReference(column, baseline.calibration(probe), current.calibration(probe))
    return ref, words, warnings


def _log_gaps(side: Side) -> pd.Series:
    """Per run of a side: the median over its records of log(torch reference step) − log(NumPy probe);
    run.json's start and end values where the records carry none."""
    shared, independent = (PROBE_COLUMNS[BY_NORMALIZE[n].key] for n in ("reference", "numpy"))
    frame = side.frame
    if shared in frame and independent in frame:
        both = frame[frame[shared].notna() & frame[independent].notna()]
        if len(both):
            gaps = np.log(both[shared].astype(float)) - np.log(both[independent].astype(float))
            return gaps.groupby(both["source_run" if "source_run" in both else "run"]).median()
    shared_run, independent_run = (side.calibration(BY_NORMALIZE[n].key) for n in ("reference", "numpy"))
    if not shared_run or not independent_run:
        return pd.Series(dtype=float)
    return pd.Series([float(np.log(shared_run / independent_run))])


def disagreement_limit(baseline: Side, floor: float = CALIBRATION_DISAGREEMENT) -> float:
    """How far the two probes may move apart before the gate calls it a disagreement: the floor, or
    DISAGREEMENT_SPREADS standard deviations of the gap between the baseline's own runs (when it holds
    MIN_RUNS_FOR_SPREAD or more), whichever is wider."""
    gaps = _log_gaps(baseline)
    if len(gaps) < MIN_RUNS_FOR_SPREAD:
        return floor
    spread = DISAGREEMENT_SPREADS * gaps.std(ddof=1) * np.sqrt(1 + 1 / len(gaps))  # the new run's own noise too
    return max(floor, float(np.expm1(spread)))


def calibration_agreement(baseline: Side, current: Side, limit: float | None = None) -> str | None:
    """One line when the torch reference step moved between the runs unlike the independent probe,
    beyond the spread the baseline's own runs show: then one of them changed on its own (torch or its
    BLAS, or NumPy's BLAS, threads) and neither can be trusted to say how fast the machine was, so the
    gate does not normalize at all; None when they agree or one is missing."""
    b_gaps, c_gaps = _log_gaps(baseline), _log_gaps(current)
    if not len(b_gaps) or not len(c_gaps):
        return None
    limit = disagreement_limit(baseline) if limit is None else limit
    gap = float(c_gaps.median() - b_gaps.median())
    if abs(gap) <= np.log1p(limit):
        return None
    shared = _probe_change(baseline, current, BY_NORMALIZE["reference"].key)
    independent = _probe_change(baseline, current, BY_NORMALIZE["numpy"].key)
    moved = (
        f"the reference training step (torch) moved {shared - 1:+.0%} between the runs while the independent "
        f"probe (NumPy GEMM) moved {independent - 1:+.0%}"
        if shared is not None and independent is not None
        else f"the reference training step (torch) and the NumPy probe moved {np.expm1(gap):+.0%} apart"
    )
    return (
        f"the calibration disagrees: {moved}, beyond the {limit:.0%} the probes may drift apart: one of them "
        "changed on its own (torch, its BLAS, NumPy's BLAS, threads)"
    )


def _probe_change(baseline: Side, current: Side, probe: str) -> float | None:
    """current / baseline of a probe's median over the records (run.json where records have none)."""
    column = PROBE_COLUMNS[probe]
    values = []
    for side in (baseline, current):
        series = side.frame[column].dropna() if column in side.frame else pd.Series(dtype=float)
        value = float(series.median()) if len(series) else side.calibration(probe)
        if not value:
            return None
        values.append(value)
    return values[1] / values[0]


def machine_mismatch(baseline: Side, current: Side) -> str | None:
    """One line when the two runs were not measured on one machine fingerprint (core/machine.py): then
    no probe can bridge the difference, and speed is not judged."""
    differs = machine.differences(baseline.fingerprint, current.fingerprint)
    if not differs:
        return None
    return (
        f"no speed verdict: the baseline was measured on another machine ({'; '.join(differs)}); "
        "accuracy and memory are judged. Save a baseline on this machine "
        f"({machine.machine_id(current.fingerprint) if current.fingerprint else 'unknown'}) or compare by A/B "
        "(dnnbench ab), docs/gate.md"
    )


def run_gate(baseline: Side, current: Side, config: GateConfig) -> GateResult:
    mismatch = None if config.assume_same_machine else machine_mismatch(baseline, current)
    warnings = environment_warnings(baseline, current)
    disagreement = None if mismatch else calibration_agreement(baseline, current)
    if disagreement:
        # Neither probe can say how fast the machine was: normalizing by the one that moved with the
        # cases divides a regression away, by the other scales the cases by a drift they did not share.
        disagreement += "; speed is compared raw, not normalized by either probe"
        config_raw = replace(config, normalize="none")
        ref, _, more = _normalization(baseline, current, config_raw)
        asked = "" if config.normalize == "none" else f" (normalize = {config.normalize} was not applied)"
        words = f"none: the calibration probes disagree{asked}"
        more.append(disagreement)
    else:
        ref, words, more = _normalization(baseline, current, config)
    warnings += [] if mismatch else more  # speed is not judged: how it would be normalized does not matter
    b_ids, c_ids = set(baseline.frame["case_id"]), set(current.frame["case_id"])
    common = [i for i in dict.fromkeys(current.frame["case_id"]) if i in b_ids]
    if not common:
        raise BadInput(f"no cases in common between the baseline {baseline.name} and {current.name}")
    rng = np.random.default_rng(0)
    b_groups = dict(tuple(baseline.frame.groupby("case_id")))
    c_groups = dict(tuple(current.frame.groupby("case_id")))
    findings: list[Finding] = []
    lost = []
    for case_id in common:
        b, c = b_groups[case_id], c_groups[case_id]
        skipped = now_skipped(b, c)
        if skipped:
            lost.append(f"{case_id}: measured in the baseline, skipped now: {skipped}")
        failing = more_failures(case_id, b, c, "seed", "current run")
        if failing:
            findings.append(failing)
        slope = st.fit_slope(b[b["status"] == "ok"], ref)
        for metric in gated():
            if mismatch and METRICS[metric].speed:
                continue
            finding = judge_case(case_id, metric, b, c, ref, config, rng, slope)
            if finding is not None:
                findings.append(finding)
    groups = case_groups(current.frame, common)
    for metric in (m for m in gated() if METRICS[m].speed):
        findings += judge_means(findings, metric, groups, config, rng)
    if mismatch:
        words = "— not applicable: no speed verdict across machines"
    return GateResult(
        findings, warnings, sorted(b_ids - c_ids), sorted(c_ids - b_ids), config, words, disagreement, mismatch, lost
    )
