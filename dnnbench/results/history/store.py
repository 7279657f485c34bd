"""The history: every run added joins one folder of append-only JSON lines, keyed by commit, commit
time and machine, that a CI job can keep on a branch of its own.

    history.json    which matrix and device the history holds (set by its first run)
    runs.jsonl      one line per run added (or per commit that could not be measured: status failed)
    points.jsonl    one line per run x case: its seeds' status and the median of each metric

A run's points are written before its line in runs.jsonl, and both carry the add's own id, so a
process killed mid-add leaves points that no run line claims, which readers ignore (also when the same
run is added again), and perhaps a torn last line, which readers skip with a warning and the next add
cuts: adding never rewrites a whole line already there. `rebuild` is the one writer that replaces the files, each
atomically (points first, then runs: a crash between leaves runs without points, never wrong ones).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dnnbench.core.errors import BadInput
from dnnbench.core.machine import machine_id
from dnnbench.core.metrics import gated
from dnnbench.results.analysis import case_summary
from dnnbench.results.frames import load
from dnnbench.results.journal import read_records, read_run_meta, write_atomically
from dnnbench.results.lock import FolderLock

SCHEMA = 1
META, RUNS, POINTS = "history.json", "runs.jsonl", "points.jsonl"
# The figures a history keeps per case: what the gate judges (throughput, time to target, accuracy, memory)
# and the step time beside them.
METRIC_NAMES = [*gated(), "step_time_ms_median"]
RUN_COLUMNS = ["run", "add", "commit", "commit_time", "machine", "matrix", "device", "status", "reason", "calibration"]

CommitTime = Callable[[str], str | None]  # commit → its ISO commit time, None when git does not know it


@dataclass
class History:
    """The history's runs and points, read whole (a failed commit is a run with status 'failed')."""

    folder: Path
    matrix: str | None
    device: str | None
    runs: pd.DataFrame  # RUN_COLUMNS, plus fingerprint, source, started_at, added_at
    points: pd.DataFrame  # run, case, seeds, ok, and one column per metric of METRIC_NAMES

    @property
    def machines(self) -> list[str]:
        return sorted(self.runs["machine"].dropna().unique()) if len(self.runs) else []

    def measured(self, machine: str) -> set[str]:
        """Commits with a finished run of this machine, or measured by a range run from it (a commit with an
        environment of its own has another fingerprint), which a range does not measure again."""
        runs = self.runs
        by = runs["range_machine"] if "range_machine" in runs else pd.Series(None, index=runs.index, dtype=object)
        ok = runs[((runs["machine"] == machine) | (by == machine)) & (runs["status"] == "ok")]
        return set(ok["commit"])


def git_output(repo: str | os.PathLike, *args: str) -> str | None:
    """What `git -C repo ARGS` prints, stripped; None when it fails or prints nothing."""
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def commit_time_in(repo: Path) -> CommitTime:
    """commit → its committer date (ISO 8601) as git in `repo` knows it; None when it does not."""
    return lambda commit: git_output(repo, "show", "-s", "--format=%cI", commit)


def ancestors_in(repo: Path) -> Callable[[str], int | None]:
    """commit → how many commits it descends from (git rev-list --count), None when git does not know it.
    Along a branch it grows with every commit, so it orders commits that share a committer second."""

    def count(commit: str) -> int | None:
        out = git_output(repo, "rev-list", "--count", commit)
        return int(out) if out and out.isdigit() else None

    return count


# Each line's required keys and their types: a line that parses but lacks one is as corrupt as one that does not.
REQUIRED = {
    RUNS: {"run": str, "add": str, "commit": str, "commit_time": str, "machine": str, "status": str},
    POINTS: {"run": str, "add": str, "case": str},
}


def _corrupt(path: Path, n: int, why: str) -> BadInput:
    return BadInput(
        f"{path}:{n} is not a history line ({why}); the history is left as it is: remove that line, or make "
        "it again with `dnnbench history --rebuild RUN_FOLDER...`"
    )


def _lines(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            if n == len(lines):  # no newline after it: an add killed mid-line, skipped (the next add closes it)
                print(f"dnnbench: warning: ignoring a torn last line in {path}", file=sys.stderr)
                continue
            raise _corrupt(path, n, exc.msg) from None
        if not isinstance(item, dict):
            raise _corrupt(path, n, "not an object")
        for key, kind in REQUIRED[path.name].items():
            if not isinstance(item.get(key), kind):
                raise _corrupt(path, n, f"no {kind.__name__} {key!r}")
        if path.name == RUNS:
            try:
                datetime.fromisoformat(item["commit_time"])
            except ValueError:
                raise _corrupt(path, n, f"commit_time {item['commit_time']!r} is not an ISO 8601 time") from None
        yield n, item


def read(folder: str | os.PathLike) -> History:
    """The history in `folder` (an empty one when the folder holds none yet). BadInput on a corrupt line."""
    folder = Path(folder)
    meta = _meta(folder)
    runs = pd.DataFrame([item for _, item in _lines(folder / RUNS)], columns=None)
    if runs.empty:
        runs = pd.DataFrame(columns=RUN_COLUMNS)
    runs = runs.drop_duplicates("run", keep="first")
    points = pd.DataFrame([item for _, item in _lines(folder / POINTS)])
    if points.empty:
        points = pd.DataFrame(columns=["run", "add", "case", "seeds", "ok", *METRIC_NAMES])
    points = points[points["add"].isin(set(runs["add"]))]  # points of an add that did not finish: ignored
    for m in METRIC_NAMES:
        if m not in points:
            points[m] = float("nan")
        points[m] = pd.to_numeric(points[m], errors="coerce")
    return History(folder, meta.get("matrix"), meta.get("device"), runs.reset_index(drop=True), points)


def _meta(folder: Path) -> dict[str, Any]:
    path = folder / META
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path} is not readable JSON ({exc.msg}); the history is left as it is") from None
    if not isinstance(meta, dict):
        raise BadInput(f"{path} is not a history's description; the history is left as it is")
    return meta


# --- one run → one line of runs.jsonl and its points ------------------------------------------------------


@dataclass
class RunEntry:
    line: dict[str, Any]
    points: list[dict[str, Any]]


def _json_number(value: Any) -> float | None:
    """A median as JSON holds it: None for a missing or censored (never reached) value."""
    if value is None or isinstance(value, str):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _calibration(meta: dict[str, Any]) -> float | None:
    """The run's reference-step speed (mean of the probes at its start and end): what speed is normalized by."""
    found = [(meta.get(key) or {}).get("reference_steps_per_s") for key in ("calibration_start", "calibration_end")]
    values = [float(v) for v in found if isinstance(v, int | float) and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _machine(fingerprint: dict[str, Any] | None) -> str:
    """A fingerprint's id (computed for one recorded without it); 'unknown' for a record that has none."""
    if not fingerprint:
        return "unknown"
    return fingerprint.get("id") or machine_id(fingerprint)


def entry_of(
    run_folder: str | os.PathLike, commit_time: CommitTime, ancestors: Callable[[str], int | None] | None = None
) -> RunEntry:
    """A run folder → its history line and points. BadInput when it cannot be a history point: no records,
    no run.json (its matrix is unknown), no commit, uncommitted changes, or records of more than one
    machine or commit."""
    folder = Path(run_folder)
    journal = folder / "records.jsonl"
    if not journal.is_file():
        raise BadInput(f"no dnnbench run at {folder} (expected a run folder holding records.jsonl)")
    meta = read_run_meta(folder)
    if not meta.get("matrix"):
        raise BadInput(f"{folder} has no run.json naming its matrix; a history holds one matrix, so it cannot tell")
    records = read_records(journal)
    if not records:
        raise BadInput(f"{folder} holds no records yet; add it once its run has measured something")
    machines = sorted({_machine(r.env.get("fingerprint")) for r in records})
    if len(machines) > 1:
        raise BadInput(
            f"{folder} holds records of {len(machines)} machines ({', '.join(machines)}); a history point is "
            "one machine's: add each machine's run (or shard) folder on its own"
        )
    env = meta.get("env") or records[0].env
    commits = sorted({r.env.get("git_commit") or env.get("git_commit") or "" for r in records})
    if len(commits) > 1:
        raise BadInput(f"{folder} holds records of {len(commits)} commits ({', '.join(commits)}); add each on its own")
    commit = commits[0]
    if not commit:
        raise BadInput(f"{folder} names no git commit (it was not run from a git checkout); a history is keyed by it")
    if commit.endswith("-dirty"):
        raise BadInput(
            f"{folder} was measured from a checkout with uncommitted changes ({commit}); a history point is a "
            "commit: commit them and measure again"
        )
    started = meta.get("started_at") or ""
    machine = machines[0]
    frame = load([folder])
    summary = case_summary(frame, [m for m in METRIC_NAMES if m in frame])
    run_id = f"{commit[:12]}@{machine}@{started or '-'}@{folder.resolve().name}"
    add = uuid.uuid4().hex
    points = []
    for _, row in summary.iterrows():
        point: dict[str, Any] = {"run": run_id, "add": add, "case": row["case_id"], "seeds": int(row["seeds"])}
        point["ok"] = int(row["ok_seeds"])
        for m in METRIC_NAMES:
            if m in row:
                point[m] = _json_number(row[m])
        if "time_to_target_s" in row and row["time_to_target_s"] == math.inf:
            point["time_to_target_missed"] = True
        points.append(point)
    when = commit_time(commit)
    line = {
        "schema": SCHEMA,
        "run": run_id,
        "add": add,
        "commit": commit,
        "commit_time": when or started,
        "commit_time_from": "git" if when else "the run's start (git here does not know the commit)",
        "ancestors": ancestors(commit) if ancestors else None,
        "machine": machine,
        "fingerprint": env.get("fingerprint") or records[0].env.get("fingerprint"),
        "matrix": meta["matrix"],
        "device": meta.get("device") or env.get("device") or "unknown",
        "status": "ok",
        "reason": "",
        "calibration": _calibration(meta),
        "cases": len(points),
        "source": str(folder.resolve()),
        "started_at": started,
        "added_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return RunEntry(line, points)


def failure_entry(commit: str, commit_time: str | None, machine: str, matrix: str, device: str, why: str) -> RunEntry:
    """A commit that could not be measured (it did not build, or its run refused): recorded, not a point."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    add = uuid.uuid4().hex
    line = {
        "schema": SCHEMA,
        "run": f"{commit[:12]}@{machine}@failed-{now}-{add[:8]}",
        "add": add,
        "commit": commit,
        "commit_time": commit_time or now,
        "machine": machine,
        "matrix": matrix,
        "device": device,
        "status": "failed",
        "reason": why,
        "calibration": None,
        "cases": 0,
        "added_at": now,
    }
    return RunEntry(line, [])


# --- writing ----------------------------------------------------------------------------------------------


class Writer:
    """`with Writer(folder) as w: w.add(entry)` — the one writer of a history folder at a time."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.lock = FolderLock(self.folder, "history")

    def __enter__(self) -> Writer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        try:
            self.current = read(self.folder)  # also refuses a corrupt history before anything is appended
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()

    def check(self, *entries: RunEntry) -> None:
        """BadInput when an entry cannot join this history (another matrix or device than the history's, or,
        for a history still empty, than the first entry's)."""
        h = self.current
        matrix, device = (h.matrix, h.device) if h.matrix is not None else (None, None)
        for entry in entries:
            line = entry.line
            if matrix is None:
                matrix, device = line["matrix"], line["device"]
            if (line["matrix"], line["device"]) != (matrix, device):
                holds = f"the history in {self.folder} holds" if h.matrix is not None else "the first run added is"
                raise BadInput(
                    f"{line.get('source', line['commit'])} is the {line['matrix']} matrix on {line['device']}; "
                    f"{holds} the {matrix} matrix on {device} (keep one history per matrix)"
                )

    def add(self, entry: RunEntry) -> bool:
        """Append a run (its points first, then its line). False when the history holds it already."""
        self.check(entry)
        if entry.line["run"] in set(self.current.runs["run"]):
            return False
        if self.current.matrix is None:
            meta = {"schema": SCHEMA, "matrix": entry.line["matrix"], "device": entry.line["device"]}
            write_atomically(self.folder / META, json.dumps(meta, indent=2) + "\n")
            self.current.matrix, self.current.device = entry.line["matrix"], entry.line["device"]
        if entry.points:
            _append(self.folder / POINTS, entry.points)
        _append(self.folder / RUNS, [entry.line])
        self.current.runs = pd.concat([self.current.runs, pd.DataFrame([entry.line])], ignore_index=True)
        return True


def _append(path: Path, items: list[dict[str, Any]]) -> None:
    data = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in items).encode("utf-8")
    if path.exists() and path.stat().st_size:
        with path.open("r+b") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a torn last line (a killed add): never a whole line, cut it
                f.seek(0)
                content = f.read()
                f.truncate(content.rfind(b"\n") + 1)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:  # os.write may write less than asked (a full disk raises on the next call)
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def rebuild(folder: str | os.PathLike, entries: list[RunEntry]) -> None:
    """Replace the history with these runs (from their folders). Each file is written beside the old one
    and renamed over it, points first: a refusal leaves the old history whole, and a crash between the
    renames leaves the old runs without points (nothing wrong is shown; rebuild again)."""
    folder = Path(folder)
    if not entries:
        raise BadInput("--rebuild needs at least one run folder")
    kinds = {(e.line["matrix"], e.line["device"]) for e in entries}
    if len(kinds) > 1:
        described = ", ".join(f"{m} on {d}" for m, d in sorted(kinds))
        raise BadInput(f"these runs are of {len(kinds)} matrices ({described}); a history holds one")
    folder.mkdir(parents=True, exist_ok=True)
    matrix, device = kinds.pop()
    unique = list({e.line["run"]: e for e in reversed(entries)}.values())[::-1]  # the first of each run
    with FolderLock(folder, "history"):
        points = "".join(json.dumps(p, separators=(",", ":")) + "\n" for e in unique for p in e.points)
        runs = "".join(json.dumps(e.line, separators=(",", ":")) + "\n" for e in unique)
        write_atomically(folder / POINTS, points)
        write_atomically(folder / RUNS, runs)
        write_atomically(folder / META, json.dumps({"schema": SCHEMA, "matrix": matrix, "device": device}) + "\n")


def run_folders(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Run folders named, or found one level below a folder that is not a run itself (results/). BadInput
    for a path that is neither."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "records.jsonl").is_file():
            out.append(p)
            continue
        found = sorted(q for q in p.iterdir() if (q / "records.jsonl").is_file()) if p.is_dir() else []
        if not found:
            raise BadInput(
                f"no dnnbench run at {p} (a run folder holds records.jsonl; a folder of runs, one level down)"
            )
        out += found
    return out


def metric_exists(name: str) -> str:
    if name not in METRIC_NAMES:
        raise BadInput(f"unknown history metric {name!r}; choose from: {', '.join(METRIC_NAMES)}")
    return name
