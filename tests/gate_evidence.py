"""Measure the gate's error rates on this machine (issue: A/A false alarms, detection of a ~25%
slower training step, detection of an accuracy drop). Not a unit test: it runs tens of smoke
benchmarks and takes about half an hour on 2 cores.

    python -m tests.gate_evidence run   --out /tmp/gate-evidence --pairs 10 --repeats 3
    python -m tests.gate_evidence judge --out /tmp/gate-evidence [--baseline results/baselines/ci-cpu]
                                        [--tolerance METRIC=VALUE ...] [--plain-division]

`run` makes 2 x pairs independent A/A smoke runs, `slow` runs with tests/plugins/slow_step.py and
`broken` runs with tests/plugins/broken_lr.py (the faults are injected from the test side). `judge`
gates A/A pairs (run 2k-1 as baseline, run 2k as current) and every other pairing, each slow and
broken run against A/A runs, and the CI configuration (a baseline merged from several runs, a
failure confirmed by a second run), and prints the rates and the A/A spread behind the tolerances.
Its Markdown output is what docs/gate.md quotes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dnnbench.views import gate
from dnnbench.views.gate import statistics  # noqa: F401  (gate.statistics below)
from tests.conftest import bench_command

ROOT = Path(__file__).resolve().parents[1]


def smoke(folder: Path, repeats: int, plugin: str | None = None) -> float:
    cmd = bench_command("--matrix", "smoke", "--repeats", str(repeats), "--results", str(folder))
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


def _gate(baseline: gate.Side, current: gate.Side, config: gate.GateConfig) -> gate.GateResult:
    return gate.run_gate(baseline, current, config)


def _merged(sides: list[gate.Side]) -> gate.Side:
    """A baseline made of several runs, as `dnnbench baseline RUN1 RUN2 …` saves it."""
    frame = pd.concat([s.frame for s in sides], ignore_index=True)
    return gate.Side("+".join(s.name for s in sides), frame, sides[0].meta)


def _rate(results: list[bool]) -> str:
    return f"{sum(results)} of {len(results)} ({sum(results) / max(1, len(results)):.1%})"


def _aggregate(result: gate.GateResult) -> float | None:
    return next(
        (
            f.normalized_change_pct
            for f in result.findings
            if f.scope == "aggregate" and f.metric == "throughput_samples_per_s"
        ),
        None,
    )


def cmd_judge(args: argparse.Namespace) -> None:
    out = Path(args.out)
    config = gate.load_config(ROOT / "pyproject.toml", args.tolerance)
    if args.normalize:
        config = config.with_overrides({"normalize": args.normalize})
    if args.plain_division:  # never fit a case's slope: divide by the calibration (what the gate did before)
        gate.statistics.MIN_CALIBRATION_SPREAD = float("inf")
    load = {p.name: gate.load_side(p) for p in sorted(out.glob("*-[0-9][0-9]")) if (p / "records.jsonl").exists()}
    aa = [s for n, s in load.items() if n.startswith("aa-")]
    slow = [s for n, s in load.items() if n.startswith("slow-")]
    broken = [s for n, s in load.items() if n.startswith("broken-")]
    pairs = list(zip(aa[0::2], aa[1::2], strict=False))
    lines = [
        f"# Gate error rates on the smoke matrix ({len(aa)} A/A runs, {len(slow)} with a ~25% slower "
        f"step, {len(broken)} with a broken learning rate; 3 seeds per case)",
        "",
        gate.tolerance_line(config)
        + f"; normalized by: {config.normalize}{' (plain division)' if args.plain_division else ''}",
        "",
    ]

    # 1. The literal protocol: pairs of independent runs, one run as the baseline.
    aa_pairs = [_gate(b, c, config) for b, c in pairs]
    slow_pairs = [_gate(pairs[i % len(pairs)][0], s, config) for i, s in enumerate(slow)]
    broken_pairs = [_gate(pairs[i % len(pairs)][0], s, config) for i, s in enumerate(broken)]
    lines += [
        "## One run against one run",
        "",
        f"- A/A pairs (run 2k-1 as baseline, run 2k as current): false alarms {_rate([r.failed for r in aa_pairs])}",
    ]
    for r, (b, c) in zip(aa_pairs, pairs, strict=True):
        lines += [
            f"  - {b.name} → {c.name}: {f.case_id} {f.metric} {f.normalized_change_pct:+.1f}%" for f in r.regressions
        ]
    lines.append(f"- slower step (slow-i against aa-(2i-1)): caught {_rate([r.failed for r in slow_pairs])}")
    lines.append(f"- broken learning rate: caught {_rate([r.failed for r in broken_pairs])}")
    every_aa = [_gate(b, c, config) for b, c in itertools.combinations(aa, 2)]
    every_slow = [_gate(b, s, config) for b in aa for s in slow]
    lines.append(f"- every A/A pair ({len(every_aa)}): false alarms {_rate([r.failed for r in every_aa])}")
    lines.append(
        f"- every A/A run as baseline for every slower run ({len(every_slow)}): caught "
        f"{_rate([r.failed for r in every_slow])}"
    )
    agg_aa = np.array([_aggregate(r) for r in every_aa])
    agg_slow = np.array([_aggregate(r) for r in every_slow])
    spread = lambda a: f"p5 {np.percentile(a, 5):+.1f}%, median {np.median(a):+.1f}%, p95 {np.percentile(a, 95):+.1f}%"  # noqa: E731
    lines.append(f"- aggregate throughput change, A/A: {spread(agg_aa)}; slower step: {spread(agg_slow)}")
    for metric in ("throughput_samples_per_s", "time_to_target_s", "peak_memory_bytes"):
        changes = [
            f.normalized_change_pct
            for r in every_aa
            for f in r.findings
            if f.metric == metric and f.scope == "case" and f.normalized_change_pct is not None
        ]
        if changes:
            q = np.percentile(np.abs(changes), [50, 95, 99])
            lines.append(
                f"- A/A per-case {metric}: |change| median {q[0]:.1f}%, p95 {q[1]:.1f}%, p99 {q[2]:.1f}%, "
                f"widest slowdown {min(changes) if metric == 'throughput_samples_per_s' else max(changes):+.1f}%"
            )
    accuracy = [
        f.normalized_change_pct
        for r in every_aa
        for f in r.findings
        if f.metric == "final_test_accuracy" and f.verdict != "not gated"
    ]
    lines.append(
        f"- A/A accuracy: largest change {max(map(abs, accuracy)):.2f} points over {len(accuracy)} comparisons"
    )

    # 2. The CI configuration: a baseline of several runs; a failure is confirmed by a second run.
    rng = random.Random(0)
    k = args.baseline_runs
    fa, fa_confirmed, det, det_confirmed = [], [], [], []
    for _ in range(args.draws):
        chosen = rng.sample(range(len(aa)), k + 2)
        base = _merged([aa[i] for i in chosen[:k]])
        first, second = (aa[i] for i in chosen[k:])
        r1 = _gate(base, first, config).failed
        fa.append(r1)
        fa_confirmed.append(r1 and _gate(base, second, config).failed)
        s1, s2 = rng.sample(slow, 2)
        d1 = _gate(base, s1, config).failed
        det.append(d1)
        det_confirmed.append(d1 and _gate(base, s2, config).failed)
    lines += [
        "",
        f"## CI configuration: a baseline of {k} runs ({args.draws} random draws)",
        "",
        f"- A/A false alarms: {_rate(fa)}; confirmed by a second run: {_rate(fa_confirmed)}",
        f"- slower step caught: {_rate(det)}; confirmed by a second run: {_rate(det_confirmed)}",
    ]
    if args.baseline:
        lines += ["", *_against_saved_baseline(gate.load_side(args.baseline), aa, slow, broken, config)]
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")


def _against_saved_baseline(
    base: gate.Side, aa: list[gate.Side], slow: list[gate.Side], broken: list[gate.Side], config: gate.GateConfig
) -> list[str]:
    """What our own CI does: every run against a baseline recorded earlier (another session, or another
    machine), a failure confirmed by the next run of the same kind."""
    results = {name: [_gate(base, s, config) for s in runs] for name, runs in (("aa", aa), ("slow", slow))}
    confirmed = {
        name: [r.failed and rs[(i + 1) % len(rs)].failed for i, r in enumerate(rs)] for name, rs in results.items()
    }
    aggregates = ", ".join(f"{_aggregate(r):+.1f}%" for r in results["aa"])
    return [
        f"## Against the saved baseline {base.name} (recorded at another time)",
        "",
        f"- A/A runs: false alarms {_rate([r.failed for r in results['aa']])}; confirmed by the next run: "
        f"{_rate(confirmed['aa'])}",
        f"- slower step: caught {_rate([r.failed for r in results['slow']])}; confirmed by the next run: "
        f"{_rate(confirmed['slow'])}",
        f"- broken learning rate: caught {_rate([_gate(base, s, config).failed for s in broken])}",
        f"- A/A aggregate throughput changes: {aggregates}",
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
    p.add_argument("--baseline-runs", type=int, default=5)
    p.add_argument("--normalize", default=None, help="reference, matmul or none (default: pyproject's)")
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--baseline", default=None, help="a saved baseline to gate every run against, as CI does")
    p.add_argument("--plain-division", action="store_true", help="do not fit slopes (for comparison)")
    p.set_defaults(func=cmd_judge)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
