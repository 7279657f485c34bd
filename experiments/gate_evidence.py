"""Measure both comparison modes' error rates on this machine (docs/gate.md quotes the output).

Not a unit test: it runs dozens of smoke benchmarks (about an hour and a half on 2 cores).

    python -m experiments.gate_evidence runs  --out /tmp/ev --aa 16 --faulty 6     # baseline mode: smoke runs, 3 seeds
    python -m experiments.gate_evidence ab    --out /tmp/ev --aa 8 --faulty 6      # A/B mode: `dnnbench ab` runs
    python -m experiments.gate_evidence judge --out /tmp/ev [--baseline results/baselines/ci-cpu] [--markdown F]
    python -m experiments.gate_evidence goals --out /tmp/ev [--baseline-runs 4]   # issue 22's goals, A/A runs only

Faults come from tests/faults (a sitecustomize loaded through PYTHONPATH, outside the product):
slow_step (the engine's step only; no calibration probe runs it), slow_backward (torch's backward
for every call, the torch probes' too) and slow_fetch (the DataLoader's batch fetch). Kinds are
interleaved so that a drift of the machine over the hour hits all of them alike. `judge` gates:
baseline mode one run against one run (every pairing) and as the CI recipe (a baseline of several
A/A runs, a failure confirmed by a second run), under each normalization; A/B mode per ab run; and
for each mode the smallest slowdown of one kind of case it catches 95% of the time, found by
slowing those cases in the measured A/A comparisons by a known factor.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from dnnbench.results import gate
from dnnbench.results.gate import paired
from dnnbench.results.journal import read_run_meta
from dnnbench.views import gate as gate_view
from tests.conftest import bench_command

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ("slow_step", "slow_backward", "slow_fetch")
FAULT_ENV = {"PYTHONPATH": f"{ROOT / 'tests' / 'faults'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
NORMALIZATIONS = ("numpy", "python", "none", "reference", "matmul")
SPEED = ("throughput_samples_per_s", "time_to_target_s")
KINDS = {  # the case kinds of the smallest-detectable-slowdown table
    "batch 1": lambda f: f["case_id"].str.contains("_b1_"),
    "batch 100": lambda f: f["case_id"].str.contains("_b100_") & ~f["suites"].map(lambda suites: "loaders" in suites),
    "full batch": lambda f: f["case_id"].str.contains("_bfull_"),
    "loaders": lambda f: f["suites"].map(lambda suites: "loaders" in suites),
    "every case": lambda f: f["case_id"].notna(),
}
# The goals' sizes (issue 22): a 25% slowdown confined to one kind of case; 10% over the whole run (A/B).
GOAL_SHIFTS = {"every case": 1.10}
DEFAULT_GOAL_SHIFT = 1.25
SHIFTS = (0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


def _plan(kinds: list[tuple[str, int]]) -> list[tuple[str, str | None]]:
    """(name, fault) in an interleaved order: aa-01, slow_step-01, aa-02, …"""
    names = [(f"{kind}-{i:02d}", None if kind == "aa" else kind) for kind, n in kinds for i in range(1, n + 1)]
    return sorted(names, key=lambda item: (int(item[0].rsplit("-", 1)[1]), item[0]))


def _done(folder: Path, marker: str) -> bool:
    return (folder / marker).exists()


def cmd_runs(args: argparse.Namespace) -> None:
    out = Path(args.out) / "runs"
    for name, fault in _plan([("aa", args.aa), *[(f, args.faulty) for f in FAULTS]]):
        folder = out / name
        if (folder / "run.json").exists() and "finished_at" in json.loads((folder / "run.json").read_text()):
            continue
        env = {**os.environ, **(({"DNNBENCH_FAULT": fault} | FAULT_ENV) if fault else {})}
        cmd = bench_command("--matrix", "smoke", "--repeats", str(args.repeats), "--results", str(folder))
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)


def cmd_ab(args: argparse.Namespace) -> None:
    out = Path(args.out) / "ab"
    for name, fault in _plan([("aa", args.aa), *[(f, args.faulty) for f in FAULTS]]):
        folder = out / name
        if _done(folder, "ab.json"):
            continue
        cmd = [sys.executable, "-m", "dnnbench", "ab", "--base-python", sys.executable, "--matrix", "smoke"]
        cmd += ["--rounds", str(args.rounds), "--out", str(folder)]
        env = dict(os.environ)
        if fault:  # the head is a second environment: the same code under a faulty interpreter
            cmd += ["--head-python", str(ROOT / "tests" / "faults" / "python")]
            env["DNNBENCH_FAULT"] = fault
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        print(f"{name}: {time.perf_counter() - start:.0f} s, exit {done.returncode}", flush=True)


# --- judging ---------------------------------------------------------------------------------------------


def _rate(flags: list[bool]) -> str:
    if not flags:
        return "—"
    return f"{sum(flags)}/{len(flags)} ({sum(flags) / max(1, len(flags)):.0%})"


def _merged(sides: list[gate.Side]) -> gate.Side:
    frame = pd.concat([s.frame for s in sides], ignore_index=True)
    return gate.Side("+".join(s.name for s in sides), frame, sides[0].meta, sides[0].fingerprint)


def _aggregate(result: gate.GateResult, metric: str = "throughput_samples_per_s") -> float | None:
    return next(
        (f.normalized_change_pct for f in result.findings if f.scope == "aggregate" and f.metric == metric), None
    )


def _raw_slowdown(base: list[gate.Side], runs: list[gate.Side]) -> float:
    """Geometric mean over cases of current / baseline median throughput, all runs pooled: the size of a fault."""
    b = (
        pd.concat([s.frame for s in base])
        .query("status == 'ok'")
        .groupby("case_id")["throughput_samples_per_s"]
        .median()
    )
    c = (
        pd.concat([s.frame for s in runs])
        .query("status == 'ok'")
        .groupby("case_id")["throughput_samples_per_s"]
        .median()
    )
    common = b.index.intersection(c.index)
    return float(np.exp(np.log(c[common] / b[common]).mean()) - 1) * 100


def _sources(saved: str) -> set[str]:
    """The runs a saved baseline was made of (its run.json's sources)."""
    return {entry["run"] for entry in read_run_meta(saved).get("sources") or []}


def _shifted(side: gate.Side, kind: str, factor: float) -> gate.Side:
    """The side with the cases of `kind` made `factor` times slower (throughput / factor, time × factor)."""
    frame = side.frame.copy()
    mask = KINDS[kind](frame)
    frame.loc[mask, "throughput_samples_per_s"] /= factor
    frame.loc[mask, "time_to_target_s"] *= factor
    return gate.Side(side.name, frame, side.meta, side.fingerprint)


def _relabelings(base: pd.DataFrame, head: pd.DataFrame) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Every way to call the two sides of an A/A run's rounds base and head (2^rounds, the run itself
    first): both ran the same code, so each is as much an A/A comparison as the run, with its own signs."""
    rounds = sorted(base["run"].unique())
    out = []
    for flips in itertools.product((False, True), repeat=len(rounds)):
        swapped = {r for r, flip in zip(rounds, flips, strict=True) if flip}
        b_keep, h_keep = ~base["run"].isin(swapped), ~head["run"].isin(swapped)
        out.append(
            (
                pd.concat([base[b_keep], head[~h_keep]], ignore_index=True),
                pd.concat([head[h_keep], base[~b_keep]], ignore_index=True),
            )
        )
    return out


def _at_goal(detect, kind: str, trials: list) -> str:
    """The share of trials caught at the goal's size for this kind (GOAL_SHIFTS, else +25% step time),
    and by what: one of the kind's own cases, a group (batch class or suite), or only the aggregate
    over every case. detect(trial, kind, factor) → the GateResult."""
    factor = GOAL_SHIFTS.get(kind, DEFAULT_GOAL_SHIFT)
    results = [detect(t, kind, factor) for t in trials]
    by = {scope: [any(f.scope == scope for f in r.regressions) for r in results] for scope in ("case", "group")}
    only_aggregate = [r.failed and not (c or g) for r, c, g in zip(results, by["case"], by["group"], strict=True)]
    return (
        f"+{factor - 1:.0%} step time: {_rate([r.failed for r in results])} (a case flagged in "
        f"{sum(by['case'])}, a group in {sum(by['group'])}, only the aggregate in {sum(only_aggregate)})"
    )


def _smallest(detect, kind: str, trials: list) -> str:
    """The smallest shift in SHIFTS detected in ≥ 95% of the trials (detect(trial, kind, factor) → bool)."""
    for shift in SHIFTS:
        hits = [detect(t, kind, 1 + shift) for t in trials]
        if sum(hits) >= 0.95 * len(hits):
            return f"{shift:.0%} (+{shift:.0%} step time, {sum(hits)}/{len(hits)})"
    return f"> {SHIFTS[-1]:.0%}"


def judge_baseline_mode(
    out: Path, saved: str | None, draws: int, k: int, normalizations: tuple[str, ...] = NORMALIZATIONS
) -> list[str]:
    runs = {p.name: gate.load_side(p) for p in sorted((out / "runs").glob("*-[0-9][0-9]"))}
    runs = {n: s for n, s in runs.items() if (out / "runs" / n / "benchmark.json").exists()}
    aa = [s for n, s in runs.items() if n.startswith("aa-")]
    faulty = {f: [s for n, s in runs.items() if n.startswith(f + "-")] for f in FAULTS}
    base_config = gate.load_config(ROOT / "pyproject.toml", [])
    lines = [
        f"## Baseline mode: {len(aa)} A/A smoke runs, " + ", ".join(f"{len(v)} {f}" for f, v in faulty.items()),
        "",
        "Fault sizes (geometric mean over cases of the throughput change against the pooled A/A runs): "
        + ", ".join(f"{f} {_raw_slowdown(aa, v):+.1f}%" for f, v in faulty.items() if v),
        "",
        "| normalization | protocol | A/A false alarms | " + " | ".join(f"{f} caught" for f in FAULTS) + " |",
        "|---|---|---|" + "---|" * len(FAULTS),
    ]
    rng = random.Random(0)
    draws_idx = [rng.sample(range(len(aa)), min(len(aa), k + 2)) for _ in range(draws)]
    for normalize in normalizations:
        config = base_config.with_overrides({"normalize": normalize})
        one = [gate.run_gate(b, c, config).failed for b, c in itertools.combinations(aa, 2)]
        one_f = {f: [gate.run_gate(b, s, config).failed for b in aa for s in v] for f, v in faulty.items()}
        lines.append(
            f"| {normalize} | one run vs one run (every pairing) | {_rate(one)} | "
            + " | ".join(_rate(one_f[f]) for f in FAULTS)
            + " |"
        )
        fa, det = [], {f: [] for f in FAULTS}
        for i, chosen in enumerate(draws_idx):
            base = _merged([aa[j] for j in chosen[:k]])
            first, second = (aa[j] for j in chosen[k : k + 2])
            fa.append(gate.run_gate(base, first, config).failed and gate.run_gate(base, second, config).failed)
            for f, v in faulty.items():
                if len(v) >= 2:
                    s1, s2 = v[i % len(v)], v[(i + 1) % len(v)]
                    det[f].append(gate.run_gate(base, s1, config).failed and gate.run_gate(base, s2, config).failed)
        lines.append(
            f"| {normalize} | CI recipe: {k}-run baseline, confirmed ({draws} draws) | {_rate(fa)} | "
            + " | ".join(_rate(det[f]) for f in FAULTS)
            + " |"
        )
        if saved:
            saved = str(gate.resolve_baseline(saved, aa[0].fingerprint).path)  # this machine's, under a name
            base = gate.load_side(saved)
            held_out = [s for s in aa if s.name not in _sources(saved)]  # A/A runs the baseline was not made of
            s_fa = [gate.run_gate(base, s, config).failed for s in held_out]
            s_fa_c = [a and b for a, b in zip(s_fa, s_fa[1:] + s_fa[:1], strict=True)]
            s_det = {f: [gate.run_gate(base, s, config).failed for s in v] for f, v in faulty.items()}
            lines.append(
                f"| {normalize} | against {Path(saved).name} (single run / confirmed) | "
                f"{_rate(s_fa)} / {_rate(s_fa_c)} | " + " | ".join(_rate(s_det[f]) for f in FAULTS) + " |"
            )
    # The scenario on the default normalization: aggregate margins of slow_backward.
    config = base_config
    lines += ["", f"Default normalization ({config.normalize}); aggregate throughput change per comparison:"]
    for f, v in faulty.items():
        one = [_aggregate(gate.run_gate(b, s, config)) for b in aa[:4] for s in v]
        lines.append(f"- {f} against single A/A runs: " + ", ".join(f"{x:+.1f}%" for x in one if x is not None))
    aa_changes = [_aggregate(gate.run_gate(b, c, config)) for b, c in itertools.combinations(aa[:8], 2)]
    lines.append("- A/A pairs: " + ", ".join(f"{x:+.1f}%" for x in aa_changes if x is not None))
    if saved:
        base = gate.load_side(saved)
        held_out = [s for s in aa if s.name not in _sources(saved)]
        for f, v in faulty.items():
            results = [gate.run_gate(base, s, config) for s in v]
            lines.append(
                f"- {f} against {Path(saved).name}: "
                + ", ".join(f"{_aggregate(r):+.1f}% (exit {r.exit_code})" for r in results)
            )
            notes = {r.calibration_note is not None for r in results}
            lines.append(f"  - calibration disagreement reported: {notes}")
        lines.append(
            f"- held-out A/A runs against it ({len(held_out)}): "
            + ", ".join(f"{_aggregate(gate.run_gate(base, s, config)):+.1f}%" for s in held_out)
        )
    # Smallest slowdown of one kind of case caught 95% of the time (CI recipe, default normalization).
    quick = replace(base_config, resamples=400)
    trials = []
    for chosen in draws_idx[:20]:
        trials.append((_merged([aa[j] for j in chosen[:k]]), aa[chosen[k]]))

    def detect(trial, kind, factor):
        base, current = trial
        return gate.run_gate(base, _shifted(current, kind, factor), quick).failed

    lines += [
        "",
        f"Smallest slowdown caught in ≥ 95% of {len(trials)} CI-recipe comparisons (one run, no confirmation):",
    ]
    lines += [f"- {kind}: {_smallest(detect, kind, trials)}; at {_at_goal(detect, kind, trials)}" for kind in KINDS]
    return lines


def judge_ab_mode(out: Path) -> list[str]:
    folders = sorted(p for p in (out / "ab").glob("*-[0-9][0-9]") if (p / "ab.json").exists())
    config = gate.load_config(ROOT / "pyproject.toml", [], section="ab")
    results, walls, sides = {}, [], {}
    for folder in folders:
        base, head = paired.load_rounds(folder, "base"), paired.load_rounds(folder, "head")
        sides[folder.name] = (base, head)
        results[folder.name] = paired.run_paired_gate(base, head, config)
        walls.append(json.loads((folder / "ab.json").read_text())["wall_time_s"])
    kinds = {"aa": [], **{f: [] for f in FAULTS}}
    for name, r in results.items():
        kinds[name.rsplit("-", 1)[0]].append(r)
    lines = [
        f"## A/B mode: {len(folders)} `dnnbench ab` runs of the smoke matrix "
        f"({json.loads((folders[0] / 'ab.json').read_text())['rounds'] if folders else '?'} rounds, seed 1); wall time "
        f"{np.median(walls):.0f} s median ({min(walls):.0f}-{max(walls):.0f} s)"
        if walls
        else "## A/B mode: no runs",
        "",
        gate_view.tolerance_line(config),
        "",
        "| | runs | flagged (exit 1) | aggregate throughput change per run |",
        "|---|---|---|---|",
    ]
    for kind, rs in kinds.items():
        changes = ", ".join(f"{_aggregate(r):+.1f}%" for r in rs if _aggregate(r) is not None)
        lines.append(f"| {kind} | {len(rs)} | {_rate([r.failed for r in rs])} | {changes} |")
    per_case = [
        f.normalized_change_pct
        for r in kinds["aa"]
        for f in r.findings
        if f.scope == "case" and f.metric == "throughput_samples_per_s" and f.normalized_change_pct is not None
    ]
    if per_case:
        q = np.percentile(np.abs(per_case), [50, 95, 99])
        lines.append(
            f"\nA/A per-case throughput change: |median| {q[0]:.1f}%, p95 {q[1]:.1f}%, p99 {q[2]:.1f}%, "
            f"widest slowdown {min(per_case):+.1f}% ({len(per_case)} case comparisons)"
        )
    quick = replace(config, resamples=400)
    trials = [sides[name] for name in sides if name.startswith("aa-")]

    def detect(trial, kind, factor):
        base, head = trial
        side = _shifted(gate.Side("head", head, {}), kind, factor)
        return paired.run_paired_gate(base, side.frame, quick).failed

    if trials:
        lines += ["", f"Smallest slowdown caught in ≥ 95% of {len(trials)} A/A ab runs slowed artificially:"]
        lines += [f"- {kind}: {_smallest(detect, kind, trials)}; at {_at_goal(detect, kind, trials)}" for kind in KINDS]
    return lines


def cmd_goals(args: argparse.Namespace) -> None:
    """Issue 22's goals on A/A runs alone, judged quickly: baseline mode with per-case tolerances (every
    k-run baseline drawn from the A/A runs against each held-out run), A/B mode per A/A ab run; false
    alarms as they are, detection with the cases of one kind slowed by the goal's size (+25% step time;
    +10% for every case at once)."""
    out = Path(args.out)
    lines = [f"# Gate goals ({out})", ""]
    runs = [gate.load_side(p) for p in sorted((out / "runs").glob("aa-[0-9][0-9]")) if p.name not in args.skip]
    overrides = [f"spread_multiplier={args.spread_multiplier}"] if args.spread_multiplier else []
    config = replace(gate.load_config(ROOT / "pyproject.toml", overrides + args.tolerance), resamples=args.resamples)
    trials = []
    for chosen in itertools.combinations(range(len(runs)), args.baseline_runs):
        base = _merged([runs[j] for j in chosen])
        trials += [(base, runs[j]) for j in range(len(runs)) if j not in chosen]
    if trials:
        results = [gate.run_gate(b, c, config) for b, c in trials]
        tolerances = [
            f.tolerance
            for f in results[0].findings
            if f.scope == "case" and f.metric == "throughput_samples_per_s" and f.tolerance is not None
        ]
        lines += [
            f"## Baseline mode: {len(runs)} A/A smoke runs; every {args.baseline_runs}-run baseline against each "
            f"held-out run ({len(trials)} comparisons, one run, no confirmation)",
            "",
            f"- A/A false alarms: {_rate([r.failed for r in results])}; aggregate throughput change "
            f"{min(_aggregate(r) or 0 for r in results):+.1f}% … {max(_aggregate(r) or 0 for r in results):+.1f}%",
            f"- per-case throughput tolerances (first comparison, {len(tolerances)} cases): median "
            f"{np.median(tolerances):.0%}, range {min(tolerances):.0%}–{max(tolerances):.0%}",
            f"- calibration disagreement (compared raw): {_rate([r.calibration_note is not None for r in results])}",
        ]

        def detect(trial, kind, factor):
            base, current = trial
            return gate.run_gate(base, _shifted(current, kind, factor), config)

        lines += [f"- {kind}: caught at {_at_goal(detect, kind, trials)}" for kind in KINDS]
    folders = sorted(p for p in (out / "ab").glob("aa-[0-9][0-9]") if (p / "ab.json").exists())
    if folders:
        ab_config = replace(
            gate.load_config(ROOT / "pyproject.toml", args.ab_tolerance, section="ab"), resamples=args.resamples
        )
        sides = [(paired.load_rounds(f, "base"), paired.load_rounds(f, "head")) for f in folders]
        walls = [json.loads((f / "ab.json").read_text())["wall_time_s"] for f in folders]
        results = [paired.run_paired_gate(b, h, ab_config) for b, h in sides]
        flipped = [flip for b, h in sides for flip in _relabelings(b, h)]
        flipped_results = [paired.run_paired_gate(b, h, ab_config) for b, h in flipped]
        per_case = [
            f.normalized_change_pct
            for r in results
            for f in r.findings
            if f.scope == "case" and f.metric == "throughput_samples_per_s" and f.normalized_change_pct is not None
        ]
        lines += [
            "",
            f"## A/B mode: {len(folders)} A/A `dnnbench ab` runs of the smoke matrix, "
            f"{json.loads((folders[0] / 'ab.json').read_text())['rounds']} rounds; wall time "
            + ", ".join(f"{w:.0f} s" for w in walls),
            "",
            gate_view.tolerance_line(ab_config),
            f"- A/A false alarms: {_rate([r.failed for r in results])}; aggregate "
            + ", ".join(f"{_aggregate(r):+.1f}%" for r in results if _aggregate(r) is not None),
            f"- A/A false alarms over every relabeling of those runs' rounds ({len(flipped)}: in an A/A run either "
            f"side of a round may be called the head): {_rate([r.failed for r in flipped_results])}",
            f"- A/A per-case throughput change: widest {min(per_case):+.1f}%, p95 |change| "
            f"{np.percentile(np.abs(per_case), 95):.1f}% ({len(per_case)} case comparisons)",
        ]

        def detect_ab(trial, kind, factor):
            base, head = trial
            return paired.run_paired_gate(base, _shifted(gate.Side("head", head, {}), kind, factor).frame, ab_config)

        lines += [f"- {kind}: caught at {_at_goal(detect_ab, kind, flipped)}" for kind in KINDS]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


def cmd_judge(args: argparse.Namespace) -> None:
    out = Path(args.out)
    lines = [f"# Gate evidence ({out})", ""]
    if (out / "runs").is_dir():
        lines += [
            *judge_baseline_mode(
                out, args.baseline, args.draws, args.baseline_runs, tuple(args.normalizations.split(","))
            ),
            "",
        ]
    if (out / "ab").is_dir():
        lines += judge_ab_mode(out)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("runs")
    p.add_argument("--out", required=True)
    p.add_argument("--aa", type=int, default=16)
    p.add_argument("--faulty", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(func=cmd_runs)
    p = sub.add_parser("ab")
    p.add_argument("--out", required=True)
    p.add_argument("--aa", type=int, default=8)
    p.add_argument("--faulty", type=int, default=6)
    p.add_argument("--rounds", type=int, default=4)
    p.set_defaults(func=cmd_ab)
    p = sub.add_parser("goals")
    p.add_argument("--out", required=True)
    p.add_argument("--baseline-runs", type=int, default=4)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--skip", action="append", default=[], help="an A/A run to leave out (e.g. one measured under load)")
    p.add_argument("--spread-multiplier", type=float, default=None, help="override the gate's per-case multiplier")
    p.add_argument("--tolerance", action="append", default=[], help="KEY=VALUE for the baseline gate")
    p.add_argument("--ab-tolerance", action="append", default=[], help="KEY=VALUE for the A/B gate")
    p.add_argument("--markdown", default=None)
    p.set_defaults(func=cmd_goals)
    p = sub.add_parser("judge")
    p.add_argument("--out", required=True)
    p.add_argument("--baseline", default=None, help="a saved baseline to gate every run against, as CI does")
    p.add_argument("--baseline-runs", type=int, default=5)
    p.add_argument("--draws", type=int, default=100)
    p.add_argument("--normalizations", default=",".join(NORMALIZATIONS), help="which to judge, comma-separated")
    p.add_argument("--markdown", default=None)
    p.set_defaults(func=cmd_judge)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
