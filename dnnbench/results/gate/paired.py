"""The A/B judgement: base and head measured alternately on one machine, judged on paired differences.

Each case ran in an even number of rounds, base and head back to back, each side first in half of
them (ABBA: `dnnbench ab`), so whatever the machine was doing hit both sides of a pair alike; no
calibration is needed. Per case and metric the change is the median over rounds of the paired change
(log ratio, or accuracy points), and the interval a bootstrap of their mean over the rounds; over all
cases, the mean of the per-case medians with a two-stage bootstrap (cases, then rounds). A regression
needs both: worse than the tolerance and an interval wholly on the worse side, as for the baseline
gate (docs/gate.md). Why the two: with four rounds the bootstrap interval of a median excludes "no
change" only when every round is worse, so one quiet round hid a slowdown, while the median keeps one
loud round (another job ran then) from carrying the point past the tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dnnbench.core.errors import BadInput
from dnnbench.core.metrics import METRICS, gated
from dnnbench.results.frames import load
from dnnbench.results.gate import statistics as st
from dnnbench.results.gate.config import GateConfig
from dnnbench.results.gate.groups import MIN_GROUP_CASES, case_groups
from dnnbench.results.gate.judge import (
    Finding,
    FindingFields,
    GateResult,
    fewer_reached,
    mean_label,
    more_failures,
    now_skipped,
)

PAIRING = "none needed: base and head ran alternately on this machine, each case paired round by round"
KEYS = ["case_id", "seed", "run"]


def load_rounds(folder: Path, side: str) -> pd.DataFrame:
    """Every round of one side of an A/B run (folder/side/r1, r2, …) as one frame; `run` is the round."""
    rounds = sorted((folder / side).glob("r[0-9]*"), key=lambda p: int(p.name[1:]))
    rounds = [r for r in rounds if (r / "records.jsonl").is_file()]
    if not rounds:
        raise BadInput(f"no A/B rounds under {folder / side} (expected {side}/r1/records.jsonl, …)")
    return load(rounds)


def _pairs(b: pd.DataFrame, c: pd.DataFrame, metric: str) -> pd.DataFrame:
    both = b[[*KEYS, "status", metric]].merge(c[[*KEYS, "status", metric]], on=KEYS, suffixes=("_b", "_c"))
    ok = both[(both["status_b"] == "ok") & (both["status_c"] == "ok")]
    return ok[ok[f"{metric}_b"].notna() & ok[f"{metric}_c"].notna()]


def _bootstrap_mean(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    if len(values) == 1:
        return np.repeat(values, resamples)
    return np.mean(rng.choice(values, size=(resamples, len(values))), axis=1)


def judge_pairs(
    case_id: str, metric: str, b: pd.DataFrame, c: pd.DataFrame, config: GateConfig, rng: np.random.Generator
) -> tuple[Finding | None, np.ndarray | None]:
    """One metric of one case; also the per-round changes on the 'worse' scale (for the aggregate)."""
    b_ok, c_ok = b[b["status"] == "ok"], c[c["status"] == "ok"]
    base: FindingFields = {"case_id": case_id, "metric": metric}
    if len(b_ok) and not len(c_ok):
        if c["status"].iloc[0] == "skipped":
            return None, None
        note = f"head: {c['status'].iloc[0]}: {c['reason'].iloc[0]}"
        base["n_baseline"] = len(b_ok)
        return Finding(verdict="regressed", note=note, **base), None
    if metric == "time_to_target_s" and b_ok[metric].notna().any() and not c_ok[metric].notna().any():
        return Finding(verdict="regressed", note="the target is no longer reached within the budget", **base), None
    missed = fewer_reached(b_ok, c_ok, "rounds") if metric == "time_to_target_s" else None
    if missed:
        return Finding(verdict="regressed", note=missed, **base), None
    pairs = _pairs(b, c, metric)
    if pairs.empty:
        return None, None
    vb, vc = pairs[f"{metric}_b"].to_numpy(float), pairs[f"{metric}_c"].to_numpy(float)
    base.update(
        {"baseline": float(np.median(vb)), "current": float(np.median(vc)), "n_baseline": len(vb), "n_current": len(vc)}
    )
    if METRICS[metric].in_points and b_ok["reason"].fillna("").str.contains("training-time budget").any():
        return Finding(
            verdict="not gated", note="stopped by its time budget, so its accuracy depends on its speed", **base
        ), None
    worse = st.worse(metric, vb, vc)
    point = float(np.median(worse))
    ci = st.interval(metric, _bootstrap_mean(worse, config.resamples, rng), config.confidence)
    finding = Finding(
        verdict=st.verdict(point, ci, st.threshold(metric, config.tolerances[metric])),
        tolerance=config.tolerances[metric],
        change_pct=st.change_from_worse(metric, float(st.worse(metric, np.median(vb), np.median(vc)))),
        normalized_change_pct=st.change_from_worse(metric, point),
        ci_low=ci.change_low,
        ci_high=ci.change_high,
        **base,
    )
    return finding, worse


def _two_stage_draws(per_case: list[np.ndarray], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap draws of the mean over cases of each case's median over rounds: cases resampled, then
    each chosen case's rounds (all at once: cases × rounds padded with NaN)."""
    rounds = np.array([len(w) for w in per_case])
    table = np.full((len(per_case), rounds.max()), np.nan)
    for j, w in enumerate(per_case):
        table[j, : len(w)] = w
    chosen = rng.integers(0, len(per_case), (resamples, len(per_case)))
    n = rounds[chosen][..., None]  # rounds of each chosen case
    picks = (rng.random((resamples, len(per_case), rounds.max())) * n).astype(int)
    values = table[chosen[..., None], picks]
    values[np.arange(rounds.max()) >= n] = np.nan  # a case with fewer rounds draws only that many
    return np.nanmedian(values, axis=2).mean(axis=1)


def judge_aggregate_pairs(
    per_case: list[np.ndarray],
    metric: str,
    config: GateConfig,
    rng: np.random.Generator,
    group: str | None = None,
) -> Finding:
    """Mean over cases of the per-case median paired change; two-stage bootstrap (cases, then rounds).
    Over every case (config.aggregate) or, with `group`, over one group's cases (config.group)."""
    points = np.array([np.median(w) for w in per_case])
    draws = _two_stage_draws(per_case, config.resamples, rng)
    ci = st.interval(metric, draws, config.confidence)
    point = float(points.mean())
    tolerance = config.group if group else config.aggregate
    return Finding(
        case_id=mean_label(len(per_case), group),
        metric=metric,
        scope="group" if group else "aggregate",
        verdict=st.verdict(point, ci, np.log1p(tolerance)),
        tolerance=tolerance,
        normalized_change_pct=st.change_from_worse(metric, point),
        ci_low=ci.change_low,
        ci_high=ci.change_high,
        n_baseline=len(per_case),
        n_current=len(per_case),
    )


def run_paired_gate(base: pd.DataFrame, head: pd.DataFrame, config: GateConfig) -> GateResult:
    """Judge an A/B run's two sides (frames of load_rounds)."""
    b_ids, c_ids = set(base["case_id"]), set(head["case_id"])
    common = [i for i in dict.fromkeys(head["case_id"]) if i in b_ids]
    if not common:
        raise BadInput("base and head have no case in common")
    rng = np.random.default_rng(0)
    b_groups, c_groups = dict(tuple(base.groupby("case_id"))), dict(tuple(head.groupby("case_id")))
    findings: list[Finding] = []
    speed: dict[str, dict[str, np.ndarray]] = {}
    lost = []
    for case_id in common:
        skipped = now_skipped(b_groups[case_id], c_groups[case_id])
        if skipped:
            lost.append(f"{case_id}: measured by the base, skipped by the head: {skipped}")
        failing = more_failures(case_id, b_groups[case_id], c_groups[case_id], "run", "head")
        if failing:
            findings.append(failing)
        for metric in gated():
            finding, worse = judge_pairs(case_id, metric, b_groups[case_id], c_groups[case_id], config, rng)
            if finding is not None:
                findings.append(finding)
            if worse is not None and METRICS[metric].speed:
                speed.setdefault(metric, {})[case_id] = worse
    groups = case_groups(head, common)
    for metric, per_case in speed.items():
        if len(per_case) < MIN_GROUP_CASES:
            continue
        findings.append(judge_aggregate_pairs(list(per_case.values()), metric, config, rng))
        for label, ids in groups.items():
            members = [per_case[i] for i in ids if i in per_case]
            if MIN_GROUP_CASES <= len(members) < len(per_case):  # every judged case: that is the aggregate
                findings.append(judge_aggregate_pairs(members, metric, config, rng, label))
    warnings = []
    for name, frame in (("base", base), ("head", head)):
        envs = frame.get("env_torch")
        if envs is not None and envs.nunique() > 1:
            warnings.append(f"{name}: several torch versions in its records")
    tb, tc = base.get("env_torch"), head.get("env_torch")
    if tb is not None and tc is not None and set(tb.dropna()) != set(tc.dropna()):
        warnings.append(f"torch differs: base {sorted(set(tb.dropna()))}, head {sorted(set(tc.dropna()))}")
    return GateResult(findings, warnings, sorted(b_ids - c_ids), sorted(c_ids - b_ids), config, PAIRING, lost=lost)
