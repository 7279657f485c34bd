"""Profiles of one case: where its time goes.

- py-spy samples the case's timed steps in a child process (`python -m dnnbench.measurement.profile`),
  subprocesses included so that DataLoader workers show: an SVG flame graph and a speedscope JSON. The
  child holds at the edges of its steps (Hooks.steps_begin / steps_end) while the parent attaches
  py-spy and stops it, so that the child's imports, matrix expansion and set-up (most of a small case's
  run) stay out of the profile; profile.json says which window each file covers.
- torch.profiler profiles a short window of the same case after its warm-up: the top operators by
  self time (CSV and a terminal table) and a Chrome/Perfetto trace, with the engine's phases
  (data_wait, copy, forward, backward, optimizer) as named ranges.
The phase split itself is measured in every benchmark run (records' phase_fractions); this module
is for the detail behind it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from torch.autograd.profiler import record_function

from dnnbench.core.errors import BadInput, unknown_choice
from dnnbench.core.record import Record
from dnnbench.definitions.cases import Case
from dnnbench.measurement import engine
from dnnbench.measurement.clocks import PHASES
from dnnbench.measurement.hooks import NO_HOOKS, Hooks

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # keep libkineto's GPU probing errors off a CPU machine's terminal

TOOLS = ("py-spy", "torch", "all")
PROFILE_STEPS = 20  # steps in the torch.profiler window
PTRACE_HINT = (
    "py-spy could not attach to the benchmark process: ptrace is not permitted here. Run as root, "
    "or allow it with `sysctl kernel.yama.ptrace_scope=0`, or start the container with "
    "--cap-add SYS_PTRACE; the other profiles are still written"
)
HOLD_S = 5.0  # the longest the child holds at an edge of its steps for the parent (then it goes on alone)
ATTACH_S = 30.0  # the longest the parent waits for py-spy to say it samples
STOP_S = 120.0  # the longest py-spy may take to write its file after SIGINT
POLL_S = 0.005


@dataclass
class ProfileFiles:
    written: dict[str, Path] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    top_ops: str = ""
    record: Record | None = None
    windows: dict[str, dict[str, Any]] = field(default_factory=dict)  # per py-spy file: what it covers


# --- py-spy: the child ------------------------------------------------------------------------------------------


def _wait_for(done: Callable[[], bool], seconds: float | None, poll: float = POLL_S) -> bool:
    """Poll `done` until it holds (True) or `seconds` pass (False; None: no limit)."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while not done():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


class StepWindow(Hooks):
    """In the profiled child: announces the edges of the timed steps as files in `folder` (begin, end) and
    holds at each until the parent has started py-spy (go) or stopped it (stopped), at most `hold_s`, so
    that the profile holds the steps and not the imports and set-up before them."""

    def __init__(self, folder: Path, hold_s: float = HOLD_S) -> None:
        self.folder, self.hold_s = folder, hold_s
        self.began: float | None = None
        self.ended: float | None = None
        self.held_s = 0.0
        self.missed: list[str] = []  # the signals that did not come in time

    def _hold(self, announce: str, signal_name: str) -> None:
        held = time.perf_counter()
        (self.folder / announce).touch()
        if not _wait_for((self.folder / signal_name).exists, self.hold_s):
            self.missed.append(signal_name)
        self.held_s += time.perf_counter() - held

    def steps_begin(self) -> None:
        self._hold("begin", "go")
        self.began = time.perf_counter()

    def steps_end(self) -> None:
        self.ended = time.perf_counter()
        self._hold("end", "stopped")

    def summary(self, record: Record) -> dict[str, Any]:
        """The window as profile.json records it (the parent adds the child's run time)."""
        window_s = self.ended - self.began if self.began is not None and self.ended is not None else None
        steps = int(record.metrics.get("steps") or 0)
        return {
            "covers": "steps",
            "first_step": 1 if steps else None,
            "last_step": steps or None,
            "warmup_steps": (record.resolved or {}).get("warmup_steps"),
            "window_s": window_s,
            "train_time_s": record.metrics.get("train_time_s"),
            "held_s": self.held_s,
            "missed": self.missed,
            "status": record.status,
            "reason": record.reason,
        }


def child_main(argv: list[str] | None = None) -> int:
    """The profiled process: train the case once; with --window, hold at the edges of its steps for the
    parent and write the window to WINDOW/window.json."""
    from dnnbench.measurement.distributed import case_from

    parser = argparse.ArgumentParser(prog="python -m dnnbench.measurement.profile")
    parser.add_argument("--case", required=True, help="the Case as JSON")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--window", default=None, help="the folder of the handshake with the parent")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    window = StepWindow(Path(args.window)) if args.window else None
    try:
        case = case_from(json.loads(args.case))
        record = engine.run(case, args.seed, hooks=window or NO_HOOKS, data_dir=args.data_dir)
    except BadInput as exc:
        print(f"dnnbench: error: {exc}", file=sys.stderr)
        return 2
    print(f"{case.id}-s{args.seed}: {record.status} {record.reason}".strip())
    if window:
        (window.folder / "window.json").write_text(json.dumps(window.summary(record)))
    return 0


# --- py-spy: the parent -----------------------------------------------------------------------------------------


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise BadInput("py-spy is not installed in this environment (pip install py-spy)")
    return found


def _ptrace_refused(stderr: str) -> bool:
    text = stderr.lower()
    return "permission denied" in text or "operation not permitted" in text or "ptrace" in text


class _Lines:
    """py-spy's output, read on a thread: whether it has started sampling (`attached`), and stopped."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.attached = False
        self.ready = threading.Event()  # attached, or its output ended without
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip())
            if "Sampling process" in line:  # py-spy's first line once it can read the process
                self.attached = True
                self.ready.set()
            if "Stopped sampling" in line:
                self.stopped.set()
        self.ready.set()
        self.stopped.set()

    def text(self) -> str:
        self._thread.join(timeout=5)
        return "\n".join(self.lines)


def _tail(text: str) -> str:
    return (text.strip().splitlines() or ["no output"])[-1]


def _refusal(stderr: str) -> str | None:
    """The line a child's dnnbench refusal (bad input) ends with: a profile of a refusal is no profile."""
    return next((line for line in stderr.splitlines() if line.startswith("dnnbench: error:")), None)


@dataclass
class _Outcome:
    ok: bool = False
    message: str | None = None
    refused: bool = False  # ptrace refused: record the whole run instead
    window: dict[str, Any] | None = None


def _spy_command(fmt: str, path: Path, native: bool, rate: int) -> list[str]:
    cmd = [_py_spy(), "record", "--rate", str(rate), "--subprocesses", "--format", fmt, "-o", str(path)]
    if native:  # py-spy unwinds native stacks only in a stopped process: it refuses --native with --nonblocking
        return [*cmd, "--native"]
    # --nonblocking: pausing the child for each sample (py-spy's default) costs a ptrace stop per sample,
    # which on 2 cores doubled the child's run and inflated its start-up share (imports) over the step
    return [*cmd, "--nonblocking"]


def _record_steps(target: list[str], fmt: str, path: Path, native: bool, rate: int) -> _Outcome:
    """Start the child, attach py-spy when its steps begin, stop it when they end; the window as the child
    measured it, with the child's whole run time."""
    with tempfile.TemporaryDirectory(prefix="dnnbench-profile-") as tmp:
        folder = Path(tmp)
        with (folder / "child.err").open("w+") as err:
            started = time.perf_counter()
            cmd = [*target, "--window", str(folder)]
            child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
            outcome, stopped_it = _Outcome(), False
            try:
                _wait_for(lambda: (folder / "begin").exists() or child.poll() is not None, None, poll=0.02)
                if child.poll() is None:
                    outcome = _spy_steps(child, folder, fmt, path, native, rate)
                if outcome.refused or (outcome.message and child.poll() is None):
                    child.terminate()  # no profile of this run will come: do not wait for its training
                    stopped_it = True
            finally:
                for release in ("go", "stopped"):  # whatever happened, the child need not wait for us
                    (folder / release).touch()
                child.wait()
            child_s = time.perf_counter() - started
            err.seek(0)
            stderr = err.read()
        if child.returncode != 0 and not stopped_it:
            path.unlink(missing_ok=True)
            return _Outcome(message=f"the profiled run failed ({fmt}): {_refusal(stderr) or _tail(stderr)}")
        if outcome.refused or outcome.message:
            return outcome
        summary = folder / "window.json"
        window = {**json.loads(summary.read_text()), "child_s": child_s} if summary.exists() else None
        outcome.window = window
        if window is None or window["missed"]:
            outcome.message = f"the step window of {path.name} is not exact: the child went on without the parent"
        elif window["status"] != "ok":
            outcome.message = f"the profiled run ended {window['status']} ({fmt}): {window['reason']}"
        return outcome


def _spy_steps(child: subprocess.Popen, folder: Path, fmt: str, path: Path, native: bool, rate: int) -> _Outcome:
    """py-spy on the child from `begin` (its steps are about to start) to `end`; the child gets its go
    only once py-spy says it samples, and goes on after the steps once py-spy has stopped."""
    spy = subprocess.Popen(
        [*_spy_command(fmt, path, native, rate), "--pid", str(child.pid)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert spy.stdout is not None
    lines = _Lines(spy.stdout)
    lines.ready.wait(ATTACH_S)
    if not lines.attached:
        if spy.poll() is None:
            spy.kill()
        spy.wait()
        text = lines.text()
        path.unlink(missing_ok=True)
        if _ptrace_refused(text):
            return _Outcome(refused=True)
        return _Outcome(message=f"py-spy failed to attach ({fmt}): {_tail(text)}")
    (folder / "go").touch()
    _wait_for(lambda: (folder / "end").exists() or child.poll() is not None, None, poll=0.01)
    spy.send_signal(signal.SIGINT)  # on Control-C py-spy stops sampling and writes its file
    lines.stopped.wait(STOP_S)
    (folder / "stopped").touch()
    try:
        spy.wait(STOP_S)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()
    if spy.returncode != 0 or not path.exists():
        return _Outcome(message=f"py-spy failed ({fmt}): {_tail(lines.text())}")
    return _Outcome(ok=True)


def _record_whole(target: list[str], fmt: str, path: Path, native: bool, rate: int) -> _Outcome:
    """py-spy starting the child itself: the whole run, start-up included (a child of py-spy may be
    traced where a sibling may not)."""
    started = time.perf_counter()
    proc = subprocess.run([*_spy_command(fmt, path, native, rate), "--", *target], capture_output=True, text=True)
    child_s = time.perf_counter() - started
    refused = _refusal(proc.stderr)
    if refused:  # py-spy exits 0 whatever its child did
        path.unlink(missing_ok=True)
        return _Outcome(message=f"the profiled run failed ({fmt}): {refused}")
    if proc.returncode != 0 or not path.exists():
        if _ptrace_refused(proc.stderr):
            return _Outcome(refused=True)
        return _Outcome(message=f"py-spy failed ({fmt}): {_tail(proc.stderr)}")
    return _Outcome(ok=True, window={"covers": "whole run", "child_s": child_s})


def py_spy_record(
    case: Case,
    data_dir: str | None,
    out: Path,
    native: bool,
    rate: int = 250,
) -> tuple[dict[str, Path], list[str], dict[str, dict[str, Any]]]:
    """Profile the case's timed steps under py-spy twice (flame graph, then speedscope), each time in a
    fresh child; returns the files, messages and per file the window it covers. A data-parallel case
    (its steps run in its ranks' processes) and a refused attach are recorded whole, start-up included."""
    target = [sys.executable, "-m", "dnnbench.measurement.profile", "--case", json.dumps(case.to_dict())]
    if data_dir:
        target += ["--data-dir", data_dir]
    written: dict[str, Path] = {}
    messages: list[str] = []
    windows: dict[str, dict[str, Any]] = {}
    whole = case.world_size > 1
    if whole:
        messages.append(
            "py-spy records a data-parallel case whole, start-up included: its ranks are processes of their own"
        )
    for fmt, name in (("flamegraph", "flame.svg"), ("speedscope", "speedscope.json")):
        path = out / name
        outcome = (_record_whole if whole else _record_steps)(target, fmt, path, native, rate)
        if outcome.refused and not whole:
            whole = True
            messages.append(
                "py-spy may not attach to the running case here (ptrace refused): it records the whole run, "
                "start-up included"
            )
            outcome = _record_whole(target, fmt, path, native, rate)
        if outcome.refused:
            return written, [*messages, PTRACE_HINT], windows
        if outcome.message:
            messages.append(outcome.message)
        if outcome.ok:
            written[name] = path
            if outcome.window:
                windows[name] = outcome.window
    return written, messages, windows


def describe_window(window: dict[str, Any]) -> str:
    """One line: what a py-spy file covers, against the child's whole run."""
    if window.get("covers") != "steps":
        return f"the whole run, start-up included, {window['child_s']:.1f} s"
    seconds = f"{window['window_s']:.1f} s" if window.get("window_s") is not None else "? s"
    steps = f"steps {window['first_step']}–{window['last_step']}" if window.get("last_step") else "no steps"
    warm = f"{window['warmup_steps']} of them warm-up, " if window.get("warmup_steps") else ""
    return (
        f"{steps} ({warm}with the evaluations between them), {seconds} of the child's "
        f"{window['child_s']:.1f} s run; imports and set-up left out"
    )


# --- torch.profiler -------------------------------------------------------------------------------------------


class PhaseRanges(Hooks):
    """Turns each phase of the engine's step into a named torch.profiler range while `active`."""

    def __init__(self) -> None:
        self.active = False
        self.open: record_function | None = None

    def _enter(self, phase: str) -> None:
        self.open = record_function(f"dnnbench::{phase}")
        self.open.__enter__()

    def _exit(self) -> None:
        if self.open is not None:
            self.open.__exit__(None, None, None)
            self.open = None

    def step_begin(self) -> None:
        if self.active:
            self._enter(PHASES[0])

    def phase_end(self, phase: str) -> None:
        self._exit()
        following = PHASES.index(phase) + 1
        if self.active and following < len(PHASES):
            self._enter(PHASES[following])


def torch_profile(case: Case, seed: int, out: Path, data_dir: str | None, steps: int = PROFILE_STEPS):
    """Profile `steps` training steps after the case's warm-up; return (files, top-ops table, record)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if case.device == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    sort_key = "self_cuda_time_total" if case.device == "cuda" else "self_cpu_time_total"
    captured: dict[str, torch.profiler.profile] = {}
    ranges = PhaseRanges()

    def drive(step, between, warmup: int, planned: int) -> None:
        warmup = max(warmup, min(3, planned - 1))
        for _ in range(warmup):
            between()
            step()
        ranges.active = True
        with torch.profiler.profile(activities=activities, record_shapes=True) as prof:
            for _ in range(min(steps, planned - warmup)):
                between()
                step()
            if case.device == "cuda":
                torch.cuda.synchronize()
        ranges.active = False
        captured["prof"] = prof

    record = engine.run(case, seed, drive=drive, hooks=ranges, data_dir=data_dir)
    if "prof" not in captured:
        raise BadInput(f"case {case.id} ended before its profiled window ({record.status}: {record.reason})")
    prof = captured["prof"]
    averages = prof.key_averages()
    rows = [
        {
            "operator": a.key,
            "calls": a.count,
            "self_cpu_us": a.self_cpu_time_total,
            "cpu_total_us": a.cpu_time_total,
            "self_device_us": getattr(a, "self_device_time_total", 0.0),
        }
        for a in averages
    ]
    rows.sort(key=lambda r: r["self_device_us" if case.device == "cuda" else "self_cpu_us"], reverse=True)
    import pandas as pd

    ops_path = out / "ops.csv"
    pd.DataFrame(rows).to_csv(ops_path, index=False)
    trace_path = out / "trace.json"
    prof.export_chrome_trace(str(trace_path))
    table = averages.table(sort_by=sort_key, row_limit=15)
    return {"ops.csv": ops_path, "trace.json": trace_path}, table, record


# --- both -------------------------------------------------------------------------------------------------------


def profile_case(
    case: Case, matrix: str, tool: str, out: Path, data_dir: str | None = None, native: bool = False
) -> ProfileFiles:
    """Write the tool's profiles of `case` to `out` with profile.json (what the report links). `case` carries
    the matrix's --set overrides and workload already."""
    if tool not in TOOLS:
        raise unknown_choice("tool", tool, TOOLS)
    out.mkdir(parents=True, exist_ok=True)
    files = ProfileFiles()
    if tool in ("py-spy", "all"):
        written, messages, windows = py_spy_record(case, data_dir, out, native)
        files.written.update(written)
        files.messages += messages
        # each file says in words which window it covers (the CLI prints it, the report shows it)
        files.windows.update({name: {**w, "says": describe_window(w)} for name, w in windows.items()})
    if tool in ("torch", "all"):
        written, table, record = torch_profile(case, 1, out, data_dir)
        files.written.update(written)
        files.top_ops = table
        files.record = record
    (out / "profile.json").write_text(
        json.dumps(
            {
                "case_id": case.id,
                "matrix": matrix,
                "tool": tool,
                "files": {k: p.name for k, p in files.written.items()},
                "messages": files.messages,
                "phase_fractions": dict(files.record.phase_fractions or {}) if files.record else None,
                "py_spy_windows": files.windows,
            },
            indent=2,
        )
    )
    return files


if __name__ == "__main__":
    sys.exit(child_main())
