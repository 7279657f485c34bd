"""Synthetic histories for docs/history.md: how well change points are found, and how fast a big history is.

    python -m experiments.history_synthetic detect --aa /tmp/ev/runs [--commits 200 --series 200]
    python -m experiments.history_synthetic scale --like results/smoke-cpu-… [--runs 1000 --cases 50]

`detect` reads the per-case spread of throughput between A/A run folders (unchanged code, one machine),
then builds series with a known step (5%, 10%, 25% slower) at a random commit in that noise, and series
with none, and counts the steps found (within 2 commits, the right sign) and the change points that
are not there. `scale` writes a history of RUNS runs x CASES cases with the case ids of a real run
folder (`--like`), then times what a CI job does with it: add that real run, and render the page.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dnnbench.results.analysis import case_summary
from dnnbench.results.frames import load
from dnnbench.results.history import changes, store


def aa_spread(folders: list[Path]) -> np.ndarray:
    """Per case, the standard deviation of log throughput over the A/A runs (each run's median over seeds)."""
    summary = case_summary(load(folders), ["throughput_samples_per_s"])
    wide = summary.pivot(index="case_id", columns="run", values="throughput_samples_per_s")
    return np.log(wide).std(axis=1).dropna().to_numpy()


def _history(rows: dict[str, np.ndarray], folder: Path) -> store.History:
    """A history whose case `name` has throughput `rows[name]`, one run per commit."""
    n = len(next(iter(rows.values())))
    entries = []
    for i in range(n):
        commit = f"{i:040x}"
        line = {
            "run": commit,
            "add": commit,
            "commit": commit,
            "status": "ok",
            "machine": "m",
            "matrix": "x",
            "device": "cpu",
            "commit_time": (pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=i)).isoformat(),
        }
        points = [
            {
                "run": commit,
                "add": commit,
                "case": case,
                "seeds": 1,
                "ok": 1,
                "throughput_samples_per_s": float(values[i]),
            }
            for case, values in rows.items()
        ]
        entries.append(store.RunEntry(line, points))
    store.rebuild(folder, entries)
    return store.read(folder)


def detect(args: argparse.Namespace) -> None:
    """Each row: `--series` cases in one history (their false discovery rate is held over all of them, as
    in a real history), through the same series → changes → regression rule as `dnnbench history`."""
    folders = store.run_folders(args.aa)
    spread = aa_spread(folders)
    q = np.quantile(spread, [0.1, 0.5, 0.9])
    print(
        f"A/A spread of log throughput per case, {len(spread)} cases over {len(folders)} runs: "
        f"p10 {q[0]:.3f}, median {q[1]:.3f}, p90 {q[2]:.3f}"
    )
    rng = np.random.default_rng(args.seed)
    quiet = spread[spread <= q[1]]
    table = []
    for noise_name, pool in (("as measured", spread), ("quiet half", quiet)):
        for size in (0.0, 0.05, 0.10, 0.25):
            rows, at = {}, {}
            for k in range(args.series):
                values = np.exp(float(rng.choice(pool)) * rng.standard_normal(args.commits))
                at[f"c{k}"] = int(rng.integers(int(0.2 * args.commits), int(0.8 * args.commits)))
                if size:
                    values[at[f"c{k}"] :] *= 1 - size
                rows[f"c{k}"] = values
            with tempfile.TemporaryDirectory() as tmp:
                history = _history(rows, Path(tmp) / "h")
            found = changes.changes(changes.series(history, ["throughput_samples_per_s"]))
            found = found[found["case"] != changes.ALL_CASES]
            index = {f"{i:040x}": i for i in range(args.commits)}
            hits = [r for r in found.itertuples() if size and r.regression and abs(index[r.commit] - at[r.case]) <= 2]
            hit_cases = {r.case for r in hits}
            table.append(
                {
                    "noise": noise_name,
                    "step": f"{size:.0%} slower" if size else "none",
                    "found": f"{len(hit_cases) / args.series:.0%}" if size else "—",
                    "other change points per series": round((len(found) - len(hit_cases)) / args.series, 3),
                    "regressions where there is none": int(
                        sum(r.regression for r in found.itertuples() if r.case not in hit_cases)
                    )
                    if not size
                    else "—",
                }
            )
    print(f"{args.series} series of {args.commits} commits per row (one history each), one run per commit")
    print(pd.DataFrame(table).to_markdown(index=False))


def synthetic_history(folder: Path, like: Path, runs: int, cases: int, seed: int = 0) -> None:
    """A history of `runs` runs x `cases` cases (case ids from the run folder `like`), written at once."""
    template = store.entry_of(like, lambda commit: None)
    case_ids = [p["case"] for p in template.points][:cases]
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(runs):
        commit = f"{i:040x}"
        line = {
            **template.line,
            "run": f"{commit[:12]}@{template.line['machine']}@{i}",
            "add": f"add{i}",
            "commit": commit,
            "commit_time": (pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=i)).isoformat(),
            "source": None,
            "cases": len(case_ids),
        }
        points = []
        for case in case_ids:
            points.append(
                {
                    "run": line["run"],
                    "add": line["add"],
                    "case": case,
                    "seeds": 2,
                    "ok": 2,
                    "throughput_samples_per_s": float(20000 * np.exp(0.15 * rng.standard_normal())),
                    "time_to_target_s": float(3.0 * np.exp(0.15 * rng.standard_normal())),
                    "final_test_accuracy": float(0.8 + 0.005 * rng.standard_normal()),
                    "peak_memory_bytes": 6.4e6,
                    "step_time_ms_median": float(2.0 * np.exp(0.15 * rng.standard_normal())),
                }
            )
        entries.append(store.RunEntry(line, points))
    store.rebuild(folder, entries)


def scale(args: argparse.Namespace) -> None:
    out = Path(args.out)
    started = time.perf_counter()
    synthetic_history(out, Path(args.like), args.runs, args.cases)
    print(
        f"wrote {args.runs} runs x {args.cases} cases in {time.perf_counter() - started:.1f} s "
        f"({(out / store.POINTS).stat().st_size / 2**20:.1f} MiB of points)"
    )
    cli = [sys.executable, "-m", "dnnbench", "history", "--dir", str(out)]
    for label, extra in (("add one real run", ["--add", args.like]), ("read, find change points, render the page", [])):
        t = time.perf_counter()
        done = subprocess.run(cli + extra, capture_output=True, text=True)
        print(
            f"{label}: {time.perf_counter() - t:.2f} s (exit {done.returncode}); "
            f"{done.stdout.strip().splitlines()[-2:]}"
        )
    history = store.read(out)
    t = time.perf_counter()
    frame = changes.series(history, ["throughput_samples_per_s", "time_to_target_s", "final_test_accuracy"])
    t_series = time.perf_counter() - t
    t = time.perf_counter()
    found = changes.changes(frame)
    print(
        f"change points on {frame.groupby(['case', 'metric']).ngroups} series x ~{args.runs} points: "
        f"{time.perf_counter() - t:.2f} s (series built in {t_series:.2f} s); {len(found)} found"
    )
    page = out / "index.html"
    print(json.dumps({"page_mib": round(page.stat().st_size / 2**20, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("detect")
    p.add_argument("--aa", nargs="+", required=True, help="A/A run folders (or a folder of them)")
    p.add_argument("--commits", type=int, default=200)
    p.add_argument("--series", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=detect)
    p = sub.add_parser("scale")
    p.add_argument("--like", required=True, help="a real run folder: its case ids, and the run added")
    p.add_argument("--out", default=tempfile.mkdtemp(prefix="history-scale-"))
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--cases", type=int, default=50)
    p.set_defaults(handler=scale)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
