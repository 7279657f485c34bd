"""A fault campaign against results folders, from outside the product (signals, files, mounts).

Each scenario runs a small real benchmark (`pytest bench --matrix smoke -k "synthetic or cubic"`), hurts
it — SIGKILL or SIGTERM at a chosen moment (tests/faults: a step, an evaluation, half-way through a
journal write, before benchmark.json is renamed into place, between two charts of a report), a
read-only folder, a full disk, corrupt run.json / benchmark.json / baselines, a data file truncated,
two runs on one folder, a lock left by a dead process — and then checks what a user relies on:

- no finished record lost (every whole line written before the fault is still there, unchanged),
- none duplicated (one record per case x seed after `--resume`),
- the folder readable by `dnnbench report` and `dnnbench gate`, and `--resume` finishing the run,
- no process of the run left behind, and no traceback shown: the user saw one line.

tests/test_faults.py runs every scenario once; experiments/fault_campaign.py repeats them all and prints
the table docs/faults.md quotes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAULTS_DIR = ROOT / "tests" / "faults"
SELECT = "synthetic or cubic"


@dataclass
class Outcome:
    scenario: str
    lost: int = 0  # whole records written before the fault and missing (or changed) after
    duplicated: int = 0  # case x seed pairs with more than one record
    unreadable: int = 0  # folders report or gate refused
    tracebacks: int = 0  # outputs that showed a Python traceback
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.unreadable or self.tracebacks)


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    if "DNNBENCH_FAULT" in extra:
        env["PYTHONPATH"] = f"{FAULTS_DIR}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    return env


def bench(results: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider", "--matrix", "smoke",
            "-k", SELECT, "--results", str(results), *args]  # fmt: skip


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dnnbench", *args]


def run(cmd: list[str], env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env or _env(), timeout=timeout)


def whole_lines(journal: Path) -> list[str]:
    if not journal.exists():
        return []
    data = journal.read_text(encoding="utf-8", errors="replace")
    return data.split("\n")[:-1]  # the last piece is a torn line or empty


def leftovers(results: Path) -> list[int]:
    """Processes whose command line names the results folder (the run and its DataLoader workers)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if str(results).encode() in (proc / "cmdline").read_bytes() and int(proc.name) != os.getpid():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def check(outcome: Outcome, results: Path, before: list[str], outputs: list[str], expected_keys: set) -> Outcome:
    """The invariants, after the fault and a --resume."""
    after = whole_lines(results / "records.jsonl")
    outcome.lost += sum(1 for line in before if line not in after)
    keys = [(r["case_id"], r["seed"]) for r in map(json.loads, after)]
    outcome.duplicated += len(keys) - len(set(keys))
    if set(keys) != expected_keys:
        outcome.notes.append(f"records for {len(set(keys))} of {len(expected_keys)} case x seed pairs")
        outcome.lost += len(expected_keys - set(keys))
    for cmd in (cli("report", str(results)), cli("gate", "--baseline", str(results), "--current", str(results))):
        done = run(cmd)
        outputs.append(done.stdout + done.stderr)
        if done.returncode != 0:
            outcome.unreadable += 1
            outcome.notes.append(f"{cmd[3]} exit {done.returncode}: {done.stderr.strip()[-200:]}")
    outcome.tracebacks += sum("Traceback" in text for text in outputs)
    stray = leftovers(results)
    if stray:
        outcome.notes.append(f"processes left behind: {stray}")
        outcome.unreadable += 1
        for pid in stray:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return outcome


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def signal_at(moment: str, sig: signal.Signals, work: Path, expected: set, rng: random.Random) -> Outcome:
    """Signal a run (or a report) at a moment reached through tests/faults, then resume it."""
    results, marker = work / "run", work / "marker"
    after = {"step": rng.randint(1, 60), "eval": rng.randint(1, 6), "journal": rng.randint(1, 6)}.get(moment, 1)
    outcome = Outcome(f"{sig.name} during {moment}")
    env = _env(DNNBENCH_FAULT=f"pause_{moment}", DNNBENCH_FAULT_MARKER=str(marker), DNNBENCH_FAULT_AFTER=str(after))
    if moment == "report":  # the run finishes; the report is what is killed
        outputs = [run(bench(results)).stdout]
        cmd = cli("report", str(results))
    else:
        outputs, cmd = [], bench(results)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reached = _wait_for(marker, proc)
    if reached:
        os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=300)
    outputs.append(out + err)
    if not reached:
        outcome.notes.append(f"the moment was not reached (exit {proc.returncode})")
    if sig == signal.SIGTERM and moment != "report" and "dnnbench: terminated (SIGTERM)" not in out + err:
        outcome.notes.append("no one-line notice of the termination")
        outcome.tracebacks += 1
    before = whole_lines(results / "records.jsonl")
    resumed = run(bench(results, "--resume"))
    outputs.append(resumed.stdout + resumed.stderr)
    if resumed.returncode != 0:
        outcome.notes.append(f"--resume exit {resumed.returncode}")
        outcome.unreadable += 1
    return check(outcome, results, before, outputs, expected)


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def read_only_folder(work: Path, expected: set, rng: random.Random) -> Outcome:
    """A results folder on a read-only file system: one line, exit 2, nothing else touched."""
    outcome = Outcome("read-only results folder")
    mount = work / "ro"
    if not _mount(mount, "ro,size=1m"):
        mount.mkdir(exist_ok=True)
        mount.chmod(0o555)  # without mount rights: permissions (not for root)
    done = run(bench(mount / "run"))
    lines = (done.stdout + done.stderr).strip().splitlines()
    if done.returncode != 2 or not any("dnnbench: error: cannot" in line for line in lines):
        outcome.notes.append(f"exit {done.returncode}: {lines[-1:] if lines else ''}")
        outcome.unreadable += 1
    outcome.tracebacks += "Traceback" in done.stdout + done.stderr
    _umount(mount)
    return outcome


def full_disk(work: Path, expected: set, rng: random.Random) -> Outcome:
    """The results folder's file system fills up mid-run: one line, exit 2, the records before it kept;
    moved to a roomy disk, --resume finishes it."""
    outcome = Outcome("full disk mid-run")
    mount = work / "small"
    if not _mount(mount, f"size={rng.choice((24, 40, 56))}k"):
        outcome.notes.append("no tmpfs mount here: used RLIMIT_FSIZE instead")
        return _full_disk_by_rlimit(work, expected, outcome)
    results = mount / "run"
    done = run(bench(results))
    outputs = [done.stdout + done.stderr]
    if done.returncode != 2 or "No space left on device" not in done.stdout + done.stderr:
        outcome.notes.append(f"exit {done.returncode}, no one-line 'No space left' error")
        outcome.unreadable += 1
    before = whole_lines(results / "records.jsonl")
    moved = work / "run"
    shutil.copytree(results, moved)
    _umount(mount)
    resumed = run(bench(moved, "--resume"))
    outputs.append(resumed.stdout + resumed.stderr)
    if resumed.returncode != 0:
        outcome.unreadable += 1
        outcome.notes.append(f"--resume exit {resumed.returncode}")
    return check(outcome, moved, before, outputs, expected)


def _full_disk_by_rlimit(work: Path, expected: set, outcome: Outcome) -> Outcome:
    import resource

    results = work / "run"

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    done = subprocess.run(bench(results), cwd=ROOT, capture_output=True, text=True, env=_env(), preexec_fn=limit)
    outputs = [done.stdout + done.stderr]
    if done.returncode != 2:
        outcome.unreadable += 1
    before = whole_lines(results / "records.jsonl")
    resumed = run(bench(results, "--resume"))
    outputs.append(resumed.stdout + resumed.stderr)
    return check(outcome, results, before, outputs, expected)


def corrupt_files(work: Path, expected: set, rng: random.Random) -> Outcome:
    """run.json and benchmark.json truncated or garbled after a run; a baseline with a torn journal and
    one with a garbled benchmark.json: report and gate still read the run; bad inputs are one line."""
    outcome = Outcome("corrupt run.json / benchmark.json / baseline")
    results = work / "run"
    outputs = [run(bench(results)).stdout]
    for name in ("run.json", "benchmark.json"):
        text = (results / name).read_text()
        (results / name).write_text(text[: rng.randint(1, len(text) - 2)] if rng.random() < 0.5 else "{garbage")
    before = whole_lines(results / "records.jsonl")
    resumed = run(bench(results, "--resume"))  # nothing left to run; run.json is rewritten
    outputs.append(resumed.stdout + resumed.stderr)
    baseline = work / "baseline"
    shutil.copytree(results, baseline)
    with open(baseline / "records.jsonl", "a") as f:
        f.write('{"schema_version": 2, "case_id": "torn')
    gate = run(cli("gate", "--baseline", str(baseline), "--current", str(results)))
    outputs.append(gate.stdout + gate.stderr)
    if gate.returncode != 0:
        outcome.unreadable += 1
        outcome.notes.append(f"gate against a baseline with a torn line: exit {gate.returncode}")
    only_json = work / "only-json"
    only_json.mkdir()
    (only_json / "benchmark.json").write_text('{"benchmarks": [')
    bad = run(cli("gate", "--baseline", str(only_json), "--current", str(results)))
    outputs.append(bad.stdout + bad.stderr)
    if bad.returncode != 2 or bad.stderr.count("\n") != 1:
        outcome.notes.append(
            f"garbled benchmark.json baseline: exit {bad.returncode}, {bad.stderr.count(chr(10))} lines"
        )
        outcome.unreadable += 1
    return check(outcome, results, before, outputs, expected)


def truncated_data(work: Path, expected: set, rng: random.Random) -> Outcome:
    """A staged Fashion-MNIST file truncated while a run uses it, then its source truncated too."""
    from dnnbench.definitions.data import locate

    outcome = Outcome("data file truncated mid-run")
    source = work / "data"
    source.mkdir()
    raw = locate("fashion-mnist") / "FashionMNIST" / "raw"
    for f in raw.glob("*-ubyte"):
        shutil.copy(f, source / f.name)
    cache = work / "cache"
    env = _env(DNNBENCH_DATA=str(source), DNNBENCH_CACHE=str(cache))
    results = work / "run"
    cmd = [*bench(results)[:-4], "-k", "fashion-mnist_b100_adam_tensor_e2 or synthetic", "--results", str(results)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staged = None
    deadline = time.time() + 120
    while staged is None and time.time() < deadline and proc.poll() is None:
        hits = list(cache.rglob("train-images-idx3-ubyte"))
        staged = hits[0] if hits else None
        time.sleep(0.05)
    if staged is not None:
        with open(staged, "r+b") as f:  # the staged copy loses its second half
            f.truncate(staged.stat().st_size // 2)
    out, err = proc.communicate(timeout=300)
    outputs = [out + err]
    again = subprocess.run(
        [*cmd[:-2], "--results", str(work / "again")], cwd=ROOT, env=env, capture_output=True, text=True
    )
    outputs.append(again.stdout + again.stderr)
    if again.returncode != 0:  # the damaged staged copy is staged again from the source
        outcome.unreadable += 1
        outcome.notes.append(f"a run after the staged copy was truncated: exit {again.returncode}")
    with open(source / "train-images-idx3-ubyte", "r+b") as f:
        f.truncate(1000)
    shutil.rmtree(cache)
    broken = subprocess.run(
        [*cmd[:-2], "--results", str(work / "broken")], cwd=ROOT, env=env, capture_output=True, text=True
    )
    outputs.append(broken.stdout + broken.stderr)
    lines = [line for line in (broken.stdout + broken.stderr).splitlines() if "dnnbench: error:" in line]
    if broken.returncode != 2 or not any("not whole" in line for line in lines):
        outcome.notes.append(f"a truncated source: exit {broken.returncode}, {lines[-1:]}")
        outcome.unreadable += 1
    outcome.tracebacks += sum("Traceback" in text for text in outputs)
    return outcome


def concurrent_runs(work: Path, expected: set, rng: random.Random) -> Outcome:
    """A second run (with --resume) on a folder whose first run is still going: one line, exit 2."""
    outcome = Outcome("two runs on one folder")
    results, marker = work / "run", work / "marker"
    env = _env(DNNBENCH_FAULT="pause_step", DNNBENCH_FAULT_MARKER=str(marker), DNNBENCH_FAULT_AFTER="5",
               DNNBENCH_FAULT_PAUSE="8")  # fmt: skip
    first = subprocess.Popen(
        bench(results), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(marker, first)
    second = run(bench(results, "--resume"))
    lines = [line for line in (second.stdout + second.stderr).splitlines() if "dnnbench: error:" in line]
    if second.returncode != 2 or not lines or "is in use by process" not in lines[0]:
        outcome.notes.append(f"second run: exit {second.returncode}")
        outcome.unreadable += 1
    out, err = first.communicate(timeout=300)
    if first.returncode != 0:
        outcome.notes.append(f"first run: exit {first.returncode}")
        outcome.unreadable += 1
    return check(outcome, results, [], [out + err, second.stdout + second.stderr], expected)


def stale_lock(work: Path, expected: set, rng: random.Random) -> Outcome:
    """A lock file naming a process that is gone (killed, machine rebooted): taken over with a notice."""
    outcome = Outcome("stale lock of a dead process")
    results = work / "run"
    results.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    record = {"pid": int(dead.stdout), "purpose": "pytest bench", "started_at": "2026-01-01T00:00:00+00:00"}
    (results / ".lock").write_text(json.dumps(record))
    done = run(bench(results))
    shown = "taking over the lock" in done.stdout + done.stderr
    if done.returncode != 0 or not shown:
        outcome.notes.append(f"exit {done.returncode}; notice shown: {shown}")
        outcome.unreadable += 1
    return check(outcome, results, [], [done.stdout + done.stderr], expected)


SCENARIOS = {
    **{f"kill-{m}": functools.partial(signal_at, m, signal.SIGKILL)
       for m in ("step", "eval", "journal", "benchmark_json", "report")},
    **{f"term-{m}": functools.partial(signal_at, m, signal.SIGTERM)
       for m in ("step", "eval", "journal", "benchmark_json")},
    "read-only": read_only_folder,
    "full-disk": full_disk,
    "corrupt": corrupt_files,
    "truncated-data": truncated_data,
    "concurrent": concurrent_runs,
    "stale-lock": stale_lock,
}  # fmt: skip


def expected_keys(work: Path) -> set:
    """The case x seed pairs of an undisturbed run of the same selection."""
    run(bench(work / "reference"))
    return {(r["case_id"], r["seed"]) for r in map(json.loads, whole_lines(work / "reference" / "records.jsonl"))}
