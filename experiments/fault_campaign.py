"""Every fault scenario of tests/fault_campaign.py, repeated, as the table docs/faults.md quotes.

Not a test: about 18 minutes on 2 cores for three repeats.

    python -m experiments.fault_campaign [--repeats 3] [--out /tmp/faults] [--only stale-lock]
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

from tests.fault_campaign import SCENARIOS, expected_keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="/tmp/dnnbench-faults")
    parser.add_argument("--only", action="append", default=[], help="scenario names (default: all)")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    expected = expected_keys(out)
    rng = random.Random(0)
    rows = []
    for name, scenario in SCENARIOS.items():
        if args.only and name not in args.only:
            continue
        outcomes = []
        for i in range(args.repeats):
            work = out / f"{name}-{i}"
            work.mkdir()
            outcomes.append(scenario(work, expected, rng))
            print(f"{name} #{i + 1}: {'clean' if outcomes[-1].clean else 'PROBLEM'} {outcomes[-1].notes}", flush=True)
        rows.append((outcomes[0].scenario, outcomes))
    print("\n| fault | tried | records lost | duplicated | folders unreadable | tracebacks shown |")
    print("|---|---|---|---|---|---|")
    for scenario, outcomes in rows:
        sums = [sum(getattr(o, k) for o in outcomes) for k in ("lost", "duplicated", "unreadable", "tracebacks")]
        print(f"| {scenario} | {len(outcomes)} | " + " | ".join(map(str, sums)) + " |")


if __name__ == "__main__":
    main()
