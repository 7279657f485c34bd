"""A/B runs: the base and the head measured alternately on this machine, in one job.

    dnnbench ab --base main                      # the working tree against main
    dnnbench ab --base v1 --head v2              # two git refs
    dnnbench ab --base-python envA/bin/python --head-python envB/bin/python   # two environments

Each side is a long-lived worker process (its own interpreter, its own dnnbench: a git worktree of
the ref, or this checkout) that runs `dnnbench run` commands one at a time; both workers live for
the whole job, so each side keeps its process history as in a real run, and only one works at a
time. Per case the runner makes R rounds of base, head (then head, base: the order alternates, so
neither side always goes first), and writes each side's records under OUT/base/rN and OUT/head/rN.
Machine drift then hits both sides of a pair alike, which is what `asv continuous`, pyperf's
compare and PyTorch's benchmark harness rely on; results/gate/paired.py judges the pairs.

A git ref runs with this environment's interpreter and packages when its pyproject.toml asks for
the same dependencies as this checkout's, or for ones this environment meets; otherwise it gets a
virtual environment of its own
(`--install venv` forces that, `--install shared` forbids it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from dnnbench.core.errors import BadInput
from dnnbench.results.time_left import TimeLeft
from dnnbench.views.progress import show_time_left

# The worker: imports the dnnbench found first on its path (its side's), then runs CLI commands read
# as JSON lines from stdin, answering each with one JSON line. Works with every dnnbench that has
# the `run` and `list` commands, so older refs can be measured too.
WORKER = r"""
import contextlib, io, json, sys, time, traceback
real = sys.stdout
import dnnbench, os
# A side from before the front-ends had a folder of their own has dnnbench/cli.py. Decided by the side's
# own files: trying the import would find the other side's module through an editable install's finder.
if os.path.exists(os.path.join(os.path.dirname(dnnbench.__file__), "frontends", "cli.py")):
    from dnnbench.frontends.cli import main
else:
    from dnnbench.cli import main
real.write(json.dumps({"ready": True, "dnnbench": dnnbench.__file__, "python": sys.executable}) + "\n")
real.flush()
for line in sys.stdin:
    args = json.loads(line)
    out, err = io.StringIO(), io.StringIO()
    started, crashed = time.perf_counter(), None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(args)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # a crash, not a failed case: it says so in its reply
            rc = 1
            crashed = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"[:300]
            traceback.print_exc()
    reply = {"rc": rc, "out": out.getvalue(), "err": err.getvalue(), "seconds": time.perf_counter() - started}
    if crashed:
        reply["crashed"] = crashed
    real.write(json.dumps(reply) + "\n")
    real.flush()
"""

INSTALLS = ("auto", "shared", "venv")


@dataclass
class Checkout:
    """Where one side's code and interpreter come from."""

    name: str  # "base" or "head"
    root: Path  # the code: a worktree of the ref, or this checkout
    python: str
    ref: str | None = None  # None: the working tree as it is (uncommitted changes included)
    commit: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # PYTHONPATH for a shared interpreter

    def describe(self) -> str:
        code = f"{self.ref} ({(self.commit or '')[:12]})" if self.ref else f"working tree {self.root}"
        return f"{self.name}: {code}, python {self.python}"


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise BadInput(f"git {' '.join(args)}: {(out.stderr.strip().splitlines() or ['failed'])[-1]}")
    return out.stdout.strip()


def _dependencies(root: Path) -> list[str] | None:
    try:
        return tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return None


def _satisfied_here(requirements: list[str] | None) -> bool:
    """Whether this environment already meets every requirement of a side's pyproject.toml (a side whose
    list differs only by a package it does not use, one added since, can share this interpreter)."""
    if requirements is None:
        return False
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            return False
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            return False
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            return False
    return True


def _own_venv(root: Path, where: Path) -> str:
    """A virtual environment with the side's own install (pip install ROOT)."""
    python, done = where / "bin" / "python", where / ".installed"
    if not done.exists():  # a half-built environment (an install that failed) is built again, not reused
        base = getattr(sys, "_base_executable", sys.executable)
        for step, cmd in (
            ("create a virtual environment at", [base, "-m", "venv", "--clear", str(where)]),
            ("install the side into", [str(python), "-m", "pip", "install", "-q", str(root)]),
        ):
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                raise BadInput(f"could not {step} {where}: {(out.stderr.strip().splitlines() or [''])[-1]}")
        done.touch()
    return str(python)


def prepare_side(
    name: str, ref: str | None, python: str | None, repo: Path, workdir: Path, install: str = "auto"
) -> Checkout:
    """A side from a git ref (checked out as a worktree) and/or an interpreter."""
    if install not in INSTALLS:
        raise BadInput(f"unknown install {install!r}; choose from: {', '.join(INSTALLS)}")
    if python is not None and not Path(python).exists():
        raise BadInput(f"no Python interpreter at {python!r}")
    if ref is None:
        return Checkout(name, repo, python or sys.executable, env={"PYTHONPATH": str(repo)})
    commit = _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    root = workdir / "worktrees" / name
    if root.exists():
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(root)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    _git(repo, "worktree", "add", "--detach", str(root), commit)
    if python is None:
        same = _dependencies(root) == _dependencies(repo) or _satisfied_here(_dependencies(root))
        if install == "venv" or (install == "auto" and not same):
            python = _own_venv(root, workdir / "envs" / name)
            return Checkout(name, root, python, ref, commit)
        python = sys.executable
    return Checkout(name, root, python, ref, commit, env={"PYTHONPATH": str(root)})


class Worker:
    """One side's long-lived process."""

    def __init__(self, side: Checkout, extra_env: dict[str, str] | None = None) -> None:
        env = {**os.environ, **(extra_env or {}), **side.env}
        if "PYTHONPATH" in side.env and os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = f"{side.env['PYTHONPATH']}{os.pathsep}{os.environ['PYTHONPATH']}"
        self.side = side
        self.proc = subprocess.Popen(
            [side.python, "-c", WORKER],
            cwd=side.root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        self.module = hello.get("dnnbench")

    def _read(self) -> dict[str, Any]:
        line = cast(IO[str], self.proc.stdout).readline()  # PIPE: Popen made it
        if not line:
            err = cast(IO[str], self.proc.stderr).read().strip().splitlines()
            raise BadInput(f"{self.side.name} worker ({self.side.python}) died: {err[-1] if err else 'no output'}")
        return json.loads(line)

    def call(self, args: list[str]) -> dict[str, Any]:
        stdin = cast(IO[str], self.proc.stdin)  # PIPE: Popen made it
        stdin.write(json.dumps(args) + "\n")
        stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            cast(IO[str], self.proc.stdin).close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def parse_list(text: str) -> dict[str, bool]:
    """`dnnbench list` output → case id → runnable here (False when listed as skipped)."""
    return {case: reason is None for case, reason in skip_reasons(text).items()}


def skip_reasons(text: str) -> dict[str, str | None]:
    """`dnnbench list` output → case id → why it is skipped here (None: runnable)."""
    cases: dict[str, str | None] = {}
    for line in text.splitlines()[2:]:
        parts = line.split()
        if parts:
            _, sep, reason = line.partition("[skipped: ")
            cases[parts[0]] = reason.rstrip().removesuffix("]") if sep else None
    return cases


@dataclass
class ABPlan:
    matrix: str
    device: str
    seeds: str
    rounds: int
    overrides: list[str]
    data_dir: str | None
    select: list[str]  # substrings of case ids to keep (none: all)
    workload: str | None = None  # --workload: a name or a plug-in spec (a file path made absolute)


def _plan_args(plan: ABPlan) -> list[str]:
    args = ["--matrix", plan.matrix, "--device", plan.device, "--seeds", plan.seeds]
    for item in plan.overrides:
        args += ["--set", item]
    if plan.data_dir:
        args += ["--data-dir", plan.data_dir]
    if plan.workload:  # a file is named from the worker's own checkout, which is elsewhere
        spec = plan.workload
        where, colon, attribute = spec.rpartition(":") if ".py:" in spec else (spec, "", "")
        if where.endswith(".py"):
            spec = str(Path(where).resolve()) + colon + attribute
        args += ["--workload", spec]
    return args


def check_rounds(rounds: int) -> None:
    """An even number of rounds, at least 2: each side goes first in half of them (ABBA), so a side
    that gains from going first (a warm cache, the other's leftovers) gains on both alike."""
    if rounds < 2 or rounds % 2:
        raise BadInput(
            f"--rounds must be an even number of at least 2 (each side goes first in half of them: ABBA), got {rounds}"
        )


def run_ab(base: Checkout, head: Checkout, plan: ABPlan, out: Path, log=print) -> dict[str, Any]:
    """Run every common case of the plan in alternating rounds; return what ab.json records."""
    check_rounds(plan.rounds)
    started = time.perf_counter()
    # Pairs need no calibration: the workers skip the probes around each case (DNNBENCH_CALIBRATION=off).
    workers = {s.name: Worker(s, {"DNNBENCH_CALIBRATION": "off"}) for s in (base, head)}
    try:
        listed, heads_list = {}, ""
        for name, worker in workers.items():
            reply = worker.call(["list", *_plan_args(plan)])
            if reply["rc"] != 0:
                raise BadInput(f"{name}: {(reply['err'].strip().splitlines() or ['list failed'])[-1]}")
            listed[name] = parse_list(reply["out"])
            if name == "head":
                heads_list = reply["out"]
        runnable = [c for c, ok in listed["head"].items() if ok and listed["base"].get(c)]
        # a case the base runs and the head skips is not compared, and not dropped in silence either
        head_reasons = skip_reasons(heads_list)
        head_skips = {c: head_reasons[c] or "" for c, ok in listed["head"].items() if not ok and listed["base"].get(c)}
        if plan.select:
            from dnnbench.definitions.plan import selected  # the runner's only use of the plan: -k

            runnable = [c for c in runnable if selected(c, plan.select)]
            head_skips = {c: why for c, why in head_skips.items() if selected(c, plan.select)}
        if not runnable:
            raise BadInput("base and head have no runnable case in common for this selection")
        only = {
            "base": sorted(set(listed["base"]) - set(listed["head"])),
            "head": sorted(set(listed["head"]) - set(listed["base"])),
        }
        out.mkdir(parents=True, exist_ok=True)  # only once both sides planned: a refusal leaves no folder
        log(f"ab: {len(runnable)} cases x {plan.rounds} rounds x 2 sides; results -> {out}")
        failures, unrecorded = [], []
        estimate = TimeLeft.of(  # every run alike until a case's first has run; its others then take as long
            [((c, r, s), 1.0) for c in runnable for r in range(1, plan.rounds + 1) for s in ("base", "head")],
            group_of=lambda key: key[0],  # type: ignore[index]
        )
        for i, case_id in enumerate(runnable, 1):
            for r in range(1, plan.rounds + 1):
                order = ("base", "head") if r % 2 else ("head", "base")
                for name in order:
                    folder = out / name / f"r{r}"
                    args = ["run", *_plan_args(plan), "--case", case_id, "--results", str(folder)]
                    reply = workers[name].call(args)
                    last = (reply["err"].strip().splitlines() or [f"exit {reply['rc']}"])[-1]
                    why = f"crashed: {reply['crashed']}" if "crashed" in reply else last
                    if "crashed" in reply or reply["rc"] not in (0, 1):
                        failures.append(f"{name} {case_id} r{r}: {why}")
                    if not _recorded(folder, case_id):  # listed and run, yet nothing kept: never silent
                        unrecorded.append({"side": name, "case": case_id, "round": r, "why": why})
                    estimate.finished((case_id, r, name))
            log(f"ab: [{i}/{len(runnable)}] {case_id}")
            show_time_left(estimate, log)
    finally:
        for worker in workers.values():
            worker.close()
    meta = {
        "base": base.describe(),
        "head": head.describe(),
        "base_module": workers["base"].module,
        "head_module": workers["head"].module,
        "matrix": plan.matrix,
        "device": plan.device,
        "seeds": plan.seeds,
        "rounds": plan.rounds,
        "overrides": plan.overrides,
        "cases": runnable,
        "only_in": only,
        "head_skips": head_skips,
        "failures": failures,
        "unrecorded": unrecorded,
        "wall_time_s": time.perf_counter() - started,
    }
    (out / "ab.json").write_text(json.dumps(meta, indent=2))
    return meta


def unrecorded_lines(unrecorded: list[dict[str, Any]]) -> dict[str, list[str]]:
    """ab.json's unrecorded entries → per side, one line per case: 'CASE (rounds 1, 3): why'."""
    by_case: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in unrecorded:
        by_case.setdefault((entry["side"], entry["case"]), []).append(entry)
    out: dict[str, list[str]] = {}
    for (side, case), entries in by_case.items():
        rounds = ", ".join(str(e["round"]) for e in entries)
        out.setdefault(side, []).append(f"{case} (round {rounds}): {entries[0]['why']}")
    return out


def _recorded(folder: Path, case_id: str) -> bool:
    """Whether a side's round folder holds a record of the case (any status: a failed case is recorded)."""
    journal = folder / "records.jsonl"
    if not journal.is_file():
        return False
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("case_id") == case_id:
                return True
        except ValueError:
            continue
    return False


def remove_worktrees(repo: Path, sides: list[Checkout]) -> None:
    for side in sides:
        if side.ref is not None:
            subprocess.run(
                ["git", "-C", str(repo), "worktree", "remove", "--force", str(side.root)], capture_output=True
            )
