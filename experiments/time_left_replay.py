"""Replay a finished run folder through the time-left estimate (results.time_left, as `make bench`
uses it): after each share of the pairs, the estimated end against the last pair's actual end.

    .venv/bin/python experiments/time_left_replay.py results/quick-cpu-<time> [more runs]

A run made since the estimate exists also logged it live (time_left.jsonl): those figures are printed too.

Each pair's seconds are the gaps between the records' finished_at stamps (1 s resolution), from
run.json's started_at, in journal order; the records of pairs skipped by rule carry no stamp and
cost nothing here.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from dnnbench.definitions.cases import Case
from dnnbench.definitions.shards import expected_cost
from dnnbench.results.time_left import TimeLeft

SHARES = (0.1, 0.2, 0.3, 0.5, 0.75)


def replay(folder: Path) -> list[tuple[float, float, float]]:
    """(share done, estimated total s, actual total s) at each of SHARES."""
    started = datetime.fromisoformat(json.loads((folder / "run.json").read_text())["started_at"])
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines() if line.strip()]
    records = [r for r in records if r.get("finished_at")]
    ends = [(datetime.fromisoformat(r["finished_at"]) - started).total_seconds() for r in records]
    items = [((r["case_id"], r["seed"]), expected_cost(Case(**r["case"]), r["status"] == "skipped")) for r in records]
    estimate = TimeLeft.of(items, group_of=lambda key: key[0], clock=lambda: 0.0)  # type: ignore[index]
    out, previous = [], 0.0
    checkpoints = {max(1, round(share * len(records))): share for share in SHARES}
    for n, ((key, _), end) in enumerate(zip(items, ends, strict=True), start=1):
        estimate.finished(key, end - previous)
        previous = end
        if n in checkpoints:
            out.append((checkpoints[n], end + estimate.left(), ends[-1]))
    return out


def live(folder: Path) -> list[tuple[float, float, float]]:
    """The same figures from the estimates the run itself logged (time_left.jsonl), where it has them."""
    log = folder / "time_left.jsonl"
    if not log.is_file():
        return []
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    actual = entries[-1]["elapsed_s"]
    checkpoints = {max(1, round(share * len(entries))): share for share in SHARES}
    return [
        (checkpoints[n], e["elapsed_s"] + e["left_s"], actual)
        for n, e in enumerate(entries, start=1)
        if n in checkpoints
    ]


def main(folders: list[str]) -> None:
    for folder in folders:
        for kind, rows in (("replayed", replay(Path(folder))), ("logged live", live(Path(folder)))):
            if rows:
                print(f"{folder} ({kind})")
            for share, estimated, actual in rows:
                print(f"  after {share:4.0%} of the pairs: estimated end {estimated:5.0f} s, "
                      f"actual {actual:5.0f} s, error {estimated / actual - 1:+5.0%}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
