"""Profiles of one case: where its time goes.

- py-spy records the case in a child process (`python -m dnnbench run --case …`), subprocesses
  included so that DataLoader workers show: an SVG flame graph and a speedscope JSON.
- torch.profiler profiles a short window of the same case after its warm-up: the top operators by
  self time (CSV and a terminal table) and a Chrome/Perfetto trace, with the engine's phases
  (data_wait, copy, forward, backward, optimizer) as named ranges.
The phase split itself is measured in every benchmark run (records' phase_fractions); this module
is for the detail behind it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.autograd.profiler import record_function

from dnnbench.core.errors import BadInput, unknown_choice
from dnnbench.core.record import Record
from dnnbench.definitions.cases import Case
from dnnbench.measurement import engine
from dnnbench.measurement.clocks import PHASES
from dnnbench.measurement.hooks import Hooks

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # keep libkineto's GPU probing errors off a CPU machine's terminal

TOOLS = ("py-spy", "torch", "all")
PROFILE_STEPS = 20  # steps in the torch.profiler window
PTRACE_HINT = (
    "py-spy could not attach to the benchmark process: ptrace is not permitted here. Run as root, "
    "or allow it with `sysctl kernel.yama.ptrace_scope=0`, or start the container with "
    "--cap-add SYS_PTRACE; the other profiles are still written"
)


@dataclass
class ProfileFiles:
    written: dict[str, Path] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    top_ops: str = ""
    record: Record | None = None


# --- py-spy ---------------------------------------------------------------------------------------------------


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise BadInput("py-spy is not installed in this environment (pip install py-spy)")
    return found


def _ptrace_refused(stderr: str) -> bool:
    text = stderr.lower()
    return "permission denied" in text or "operation not permitted" in text or "ptrace" in text


def py_spy_record(
    case_id: str,
    matrix: str,
    device: str,
    overrides: list[str],
    data_dir: str | None,
    out: Path,
    native: bool,
    rate: int = 250,
    workload: str | None = None,
) -> tuple[dict[str, Path], list[str]]:
    """Run the case under py-spy twice (flame graph, then speedscope), each time in a fresh child."""
    target = [
        sys.executable,
        "-m",
        "dnnbench",
        "run",
        "--matrix",
        matrix,
        "--device",
        device,
        "--case",
        case_id,
        "--seeds",
        "1",
        "--no-results",  # the profile is the output; the record stays with the profiled run, if any
    ]
    for item in overrides:
        target += ["--set", item]
    if data_dir:
        target += ["--data-dir", data_dir]
    if workload:  # the case's id exists only in the matrix trained on that workload
        target += ["--workload", workload]
    written: dict[str, Path] = {}
    messages: list[str] = []
    for fmt, name in (("flamegraph", "flame.svg"), ("speedscope", "speedscope.json")):
        # --nonblocking: pausing the child for each sample (py-spy's default) costs a ptrace stop per sample,
        # which on 2 cores doubled the child's run and inflated its start-up share (imports) over the step
        cmd = [_py_spy(), "record", "--rate", str(rate), "--subprocesses", "--nonblocking", "--format", fmt]
        cmd += ["-o", str(out / name)]
        if native:
            cmd.append("--native")
        proc = subprocess.run([*cmd, "--", *target], capture_output=True, text=True)
        refused = [line for line in proc.stderr.splitlines() if line.startswith("dnnbench: error:")]
        if refused:  # py-spy exits 0 whatever its child did: a profile of a refusal is no profile
            (out / name).unlink(missing_ok=True)
            messages.append(f"the profiled run failed ({fmt}): {refused[0]}")
            continue
        if proc.returncode != 0 or not (out / name).exists():
            if _ptrace_refused(proc.stderr):
                return written, [PTRACE_HINT]
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            messages.append(f"py-spy failed ({fmt}): {tail}")
            continue
        written[name] = out / name
    return written, messages


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
    case: Case,
    matrix: str,
    tool: str,
    out: Path,
    overrides: list[str],
    data_dir: str | None = None,
    native: bool = False,
    workload: str | None = None,
) -> ProfileFiles:
    if tool not in TOOLS:
        raise unknown_choice("tool", tool, TOOLS)
    out.mkdir(parents=True, exist_ok=True)
    files = ProfileFiles()
    if tool in ("py-spy", "all"):
        written, messages = py_spy_record(
            case.id, matrix, case.device, overrides, data_dir, out, native, workload=workload
        )
        files.written.update(written)
        files.messages += messages
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
            },
            indent=2,
        )
    )
    return files
