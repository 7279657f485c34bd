"""Does a case measure the same first in a fresh process and after other cases? (The allocator's part.)

    python -m experiments.allocator_experiment [--pairs 3]

For malloc left at glibc's defaults (the unpinned_malloc fault: dnnbench before the fix) and pinned
(dnnbench now), alternately: a fresh process runs only the target case; another runs four other cases
(the torchvision loader and batch 1 among them: they free mid-sized blocks) and then the target. The
target is the synthetic workload at batch 100 (no data file, so nothing else differs). Prints each
pair's throughputs and the median ratio after/first per setting; docs/performance.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = "Case(workload='synthetic', epochs=3)"
OTHERS = [
    "Case(loader='torchvision', train_samples=5000, epochs=1)",
    "Case(batch_size=1, train_samples=2000, epochs=1, max_seconds=2)",
    "Case(batch_size='full', train_samples=20000, epochs=2)",
    "Case(regularization='batchnorm', train_samples=5000, epochs=1)",
]
CODE = """
import json
from dnnbench.definitions.cases import Case
from dnnbench.measurement.engine import run
for case in [{others}]:
    run(case, seed=1)
record = run({target}, seed=1)
print(json.dumps({{"throughput": record.metrics["throughput_samples_per_s"], "allocator": record.env["allocator"]}}))
"""


def measure(after_others: bool, pinned: bool) -> dict:
    env = dict(os.environ)
    if not pinned:
        env["PYTHONPATH"] = f"{ROOT / 'tests' / 'faults'}{os.pathsep}{env.get('PYTHONPATH', '')}"
        env["DNNBENCH_FAULT"] = "unpinned_malloc"
    code = CODE.format(others=", ".join(OTHERS) if after_others else "", target=TARGET)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


REPEATS = """
import json
from dnnbench.definitions.cases import Case
from dnnbench.measurement.engine import run
print(json.dumps([run({target}, seed=1).metrics["throughput_samples_per_s"] for _ in range({n})]))
"""


def repeats_in_one_process(pinned: bool, n: int) -> list[float]:
    """The same case `n` times in one process: what the process did before is the case itself."""
    env = dict(os.environ)
    if not pinned:
        env["PYTHONPATH"] = f"{ROOT / 'tests' / 'faults'}{os.pathsep}{env.get('PYTHONPATH', '')}"
        env["DNNBENCH_FAULT"] = "unpinned_malloc"
    code = REPEATS.format(target="Case(workload='synthetic', batch_size=1, max_seconds=1.5)", n=n)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=8, help="runs of one case in one process (second table)")
    args = parser.parse_args()
    print("| malloc | the synthetic case at batch 1, 8 times in one process (samples/s) | max / min |")
    print("|---|---|---|")
    for pinned in (False, True, False, True):
        values = repeats_in_one_process(pinned, args.repeats)
        label = "pinned (dnnbench now)" if pinned else "glibc defaults (before)"
        print(f"| {label} | {', '.join(f'{v:,.0f}' for v in values)} | {max(values) / min(values):.2f} |", flush=True)
    print()
    print("| malloc | pair | first in a fresh process | after four other cases | after / first |")
    print("|---|---|---|---|---|")
    for pinned in (False, True):
        ratios = []
        for pair in range(1, args.pairs + 1):
            order = (False, True) if pair % 2 else (True, False)  # alternate which side goes first
            got = {after: measure(after, pinned) for after in order}
            first, after = got[False]["throughput"], got[True]["throughput"]
            ratios.append(after / first)
            label = "pinned (dnnbench now)" if pinned else "glibc defaults (before)"
            print(f"| {label} | {pair} | {first:,.0f} | {after:,.0f} | {after / first:.3f} |", flush=True)
        print(f"| | median | | | {statistics.median(ratios):.3f} |")


if __name__ == "__main__":
    main()
