"""Measure the gate's error rates on this machine (issue: A/A false alarms, detection of a ~25%
slower training step, detection of an accuracy drop). Not a unit test: it runs tens of smoke
benchmarks and takes about half an hour on 2 cores.

    python -m tests.gate_evidence run   --out /tmp/gate-evidence --pairs 10 --repeats 3
    python -m tests.gate_evidence judge --out /tmp/gate-evidence [--tolerance METRIC=VALUE ...]

`run` makes 2 x pairs independent A/A smoke runs, `slow` runs with tests/plugins/slow_step.py and
`broken` runs with tests/plugins/broken_lr.py (the faults are injected from the test side). `judge`
gates A/A pairs (run 2k-1 as baseline, run 2k as current), each slow and broken run against an
A/A run, and prints the rates, the widest A/A changes, and a leave-one-pair-out check of the
tolerances. Its Markdown output is what docs/gate.md quotes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from dnnbench import gate

ROOT = Path(__file__).resolve().parents[1]


def smoke(folder: Path, repeats: int, plugin: str | None = None) -> float:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "bench",
        "-q",
        "-p",
        "no:cacheprovider",
        "--matrix",
        "smoke",
        "--repeats",
        str(repeats),
        "--results",
        str(folder),
    ]
    if plugin:
        cmd += ["-p", plugin]
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"smoke run {folder} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return time.perf_counter() - start


def cmd_run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    plan = [(f"aa-{i:02d}", None) for i in range(1, 2 * args.pairs + 1)]
    plan += [(f"slow-{i:02d}", "tests.plugins.slow_step") for i in range(1, args.slow + 1)]
    plan += [(f"broken-{i:02d}", "tests.plugins.broken_lr") for i in range(1, args.broken + 1)]
    # Interleave the kinds so that a drift of the machine over the half hour hits all of them alike.
    plan.sort(key=lambda item: int(item[0].split("-")[1]))
    for name, plugin in plan:
        if (out / name / "run.json").exists() and "finished_at" in json.loads((out / name / "run.json").read_text()):
            continue
        seconds = smoke(out / name, args.repeats, plugin)
        print(f"{name}: {seconds:.0f} s", flush=True)


def _gate(baseline: Path, current: Path, config: gate.GateConfig) -> gate.GateResult:
    return gate.run_gate(gate.load_side(baseline), gate.load_side(current), config)


def _aa_pairs(out: Path) -> list[tuple[Path, Path]]:
    runs = sorted(out.glob("aa-*"))
    return list(zip(runs[0::2], runs[1::2], strict=False))


def cmd_judge(args: argparse.Namespace) -> None:
    out = Path(args.out)
    config = gate.load_config(ROOT / "pyproject.toml", args.tolerance)
    pairs = _aa_pairs(out)
    aa = [_gate(b, c, config) for b, c in pairs]
    slow = [(_gate(pairs[i % len(pairs)][0], s, config)) for i, s in enumerate(sorted(out.glob("slow-*")))]
    broken = [(_gate(pairs[i % len(pairs)][0], s, config)) for i, s in enumerate(sorted(out.glob("broken-*")))]

    lines = [f"# Gate error rates ({len(pairs)} A/A pairs, smoke matrix)", "", gate.tolerance_line(config), ""]
    lines.append(f"- A/A false alarms: {sum(r.failed for r in aa)} of {len(aa)} pairs failed")
    for r, (b, c) in zip(aa, pairs, strict=True):
        for f in r.regressions:
            lines.append(f"  - {b.name} → {c.name}: {f.case_id} {f.metric} {f.normalized_change_pct:+.1f}%")
    lines.append(f"- 25% slower step caught: {sum(r.failed for r in slow)} of {len(slow)} runs")
    lines.append(f"- broken learning rate caught: {sum(r.failed for r in broken)} of {len(broken)} runs")

    for metric in ("throughput_samples_per_s", "time_to_target_s", "peak_memory_bytes"):
        case_changes = [
            f.normalized_change_pct
            for r in aa
            for f in r.findings
            if f.metric == metric and not f.case_id.startswith("ALL") and f.normalized_change_pct is not None
        ]
        if case_changes:
            worst = max(case_changes, key=abs)
            q = np.percentile(np.abs(case_changes), [50, 95, 99])
            lines.append(
                f"- A/A per-case {metric}: |change| median {q[0]:.1f}%, p95 {q[1]:.1f}%, p99 {q[2]:.1f}%, "
                f"widest {worst:+.1f}% ({len(case_changes)} case comparisons)"
            )
    for metric in gate.SPEED:
        agg = [f for r in aa for f in r.findings if f.metric == metric and f.case_id.startswith("ALL")]
        slow_agg = [f for r in slow for f in r.findings if f.metric == metric and f.case_id.startswith("ALL")]
        if agg:
            lines.append(f"- A/A aggregate {metric}: " + ", ".join(f"{f.normalized_change_pct:+.1f}%" for f in agg))
        if slow_agg:
            lines.append(
                f"- slow aggregate {metric}: " + ", ".join(f"{f.normalized_change_pct:+.1f}%" for f in slow_agg)
            )
    accuracy = [f for r in aa for f in r.findings if f.metric == "final_test_accuracy" and f.verdict != "not gated"]
    if accuracy:
        lines.append(
            f"- A/A accuracy changes: max |Δ| {max(abs(f.normalized_change_pct) for f in accuracy):.2f} points "
            f"over {len(accuracy)} case comparisons"
        )
    broken_acc = [f for r in broken for f in r.regressions if f.metric == "final_test_accuracy"]
    lines.append(f"- broken learning rate: {len(broken_acc)} accuracy regressions flagged across {len(broken)} runs")
    lines += leave_one_pair_out(pairs, aa)
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")


def _needed(results: list[gate.GateResult], config: gate.GateConfig) -> gate.GateConfig:
    """The smallest tolerances (at the current ones' floor) that no A/A finding in `results` would
    exceed with an interval wholly on the worse side: what these pairs alone would justify."""
    tolerances = dict(config.tolerances)
    aggregate = 0.0
    for r in results:
        for f in r.findings:
            if f.normalized_change_pct is None or f.ci_low is None or f.metric not in gate.SPEED:
                continue
            worse_side = f.ci_high < 0 if f.metric == "throughput_samples_per_s" else f.ci_low > 0
            if not worse_side:
                continue
            ratio = 1 + f.normalized_change_pct / 100
            slowdown = 1 / ratio - 1 if f.metric == "throughput_samples_per_s" else ratio - 1
            if f.case_id.startswith("ALL"):
                aggregate = max(aggregate, slowdown)
            else:
                tolerances[f.metric] = max(tolerances[f.metric], slowdown)
    return gate.GateConfig(tolerances=tolerances, aggregate=max(aggregate, 0.01), confidence=config.confidence)


def leave_one_pair_out(pairs: list[tuple[Path, Path]], aa: list[gate.GateResult]) -> list[str]:
    """Tolerances fitted on all pairs but one, then that pair gated with them: an out-of-sample
    estimate of the false-alarm rate (the in-sample one flatters tolerances chosen from the same runs)."""
    floor = gate.GateConfig(
        tolerances=dict.fromkeys(gate.GATED, 1e-6) | {"final_test_accuracy": 2.0, "peak_memory_bytes": 0.15}
    )
    alarms = 0
    for k, (b, c) in enumerate(pairs):
        fitted = _needed([r for j, r in enumerate(aa) if j != k], floor)
        alarms += _gate(b, c, fitted).failed
    fitted_all = _needed(aa, floor)
    return [
        f"- leave-one-pair-out: {alarms} of {len(pairs)} held-out pairs would fail with tolerances fitted "
        "on the other pairs",
        f"- fitted on all pairs: {gate.tolerance_line(fitted_all)}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--out", required=True)
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--slow", type=int, default=10)
    p.add_argument("--broken", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("judge")
    p.add_argument("--out", required=True)
    p.add_argument("--tolerance", action="append", default=[])
    p.add_argument("--markdown", default=None)
    p.set_defaults(func=cmd_judge)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
