"""`dnnbench history --range A..B`: measure a matrix at each commit of a range and add each run to the
history, through the worktree machinery of `ab` (tools/ab.py): each commit is checked out as a git
worktree and run by its own worker process with its own dnnbench.

Resumable: a commit this machine has a finished run of in the history is not measured again, and each
commit's run joins the history as soon as it ends, so an interrupted range goes on where it stopped. A
commit that cannot be measured (it does not build, its dnnbench refuses the matrix, its worker dies) is
recorded as a failure for that commit, and the range goes on.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dnnbench.core.errors import BadInput
from dnnbench.definitions.plan import selected
from dnnbench.measurement import fingerprint
from dnnbench.results.history import store
from dnnbench.results.time_left import TimeLeft
from dnnbench.tools import ab
from dnnbench.views.progress import show_time_left


@dataclass
class RangePlan:
    matrix: str
    device: str
    seeds: str | None = None  # "1,2" or None for the matrix's own
    overrides: list[str] = field(default_factory=list)
    select: list[str] = field(default_factory=list)  # -k: substrings of case ids
    data_dir: str | None = None
    install: str = "auto"

    def run_args(self) -> list[str]:
        args = ["--matrix", self.matrix, "--device", self.device]
        if self.seeds:
            args += ["--seeds", self.seeds]
        for item in self.overrides:
            args += ["--set", item]
        if self.data_dir:
            args += ["--data-dir", str(Path(self.data_dir).resolve())]
        return args


def commits_of(repo: Path, spec: str) -> list[str]:
    """The commits of A..B, oldest first (git rev-list's meaning: reachable from B, not from A)."""
    if ".." not in spec or spec.startswith("..") or spec.endswith(".."):
        raise BadInput(f"--range needs A..B (two git refs), got {spec!r}")
    for ref in spec.replace("...", "..").split(".."):
        if store.git_output(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}") is None:
            raise BadInput(f"--range {spec}: git in {repo} knows no commit {ref!r}")
    out = subprocess.run(["git", "-C", str(repo), "rev-list", "--reverse", spec], capture_output=True, text=True)
    if out.returncode != 0:
        raise BadInput(f"--range {spec}: {(out.stderr.strip().splitlines() or ['git rev-list failed'])[-1]}")
    commits = out.stdout.split()
    if not commits:
        raise BadInput(f"--range {spec} holds no commits")
    return commits


def _selected_cases(worker: ab.Worker, plan: RangePlan) -> list[str] | None:
    """With -k: the runnable case ids of this commit's matrix that match; None runs the whole matrix."""
    if not plan.select:
        return None
    reply = worker.call(["list", *plan.run_args()])
    if reply["rc"] != 0:
        raise BadInput((reply["err"].strip().splitlines() or ["list failed"])[-1])
    runnable = [c for c, ok in ab.parse_list(reply["out"]).items() if ok]
    return [c for c in runnable if selected(c, plan.select)]


def _measure(commit: str, repo: Path, plan: RangePlan, runs_dir: Path) -> Path:
    """Run the plan at `commit` in a worktree; the run folder. BadInput says why the commit failed."""
    work = runs_dir / ".work"
    side = ab.prepare_side(commit[:12], commit, None, repo, work, plan.install)
    folder = runs_dir / f"{commit[:12]}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        worker = ab.Worker(side)
        try:
            cases = _selected_cases(worker, plan)
            if cases == []:
                raise BadInput(f"no runnable case of the {plan.matrix} matrix matches -k {' '.join(plan.select)}")
            whole: list[list[str]] = [[]]  # no -k: one run of the whole matrix
            for extra in [["--case", c, "--resume"] for c in cases] if cases is not None else whole:
                reply = worker.call(["run", *plan.run_args(), "--results", str(folder), *extra])
                if "crashed" in reply or reply["rc"] not in (0, 1):
                    why = reply.get("crashed") or (reply["err"].strip().splitlines() or [f"exit {reply['rc']}"])[-1]
                    raise BadInput(f"its run failed: {why}")
        finally:
            worker.close()
    finally:
        ab.remove_worktrees(repo, [side])
    return folder


def measure_range(
    repo: Path, spec: str, history_dir: Path, runs_dir: Path, plan: RangePlan, log: Callable[[str], None] = print
) -> dict[str, str]:
    """Measure each commit of `spec` not yet in the history for this machine; commit → 'added',
    'measured before' or 'failed: why'."""
    commits = commits_of(repo, spec)
    history = store.read(history_dir)
    if history.matrix is not None and (history.matrix, history.device) != (plan.matrix, plan.device):
        raise BadInput(
            f"the history in {history_dir} holds the {history.matrix} matrix on {history.device}, not the "
            f"{plan.matrix} matrix on {plan.device} (keep one history per matrix)"
        )
    machine = fingerprint.capture(plan.device)["id"]
    when, ancestors = store.commit_time_in(repo), store.ancestors_in(repo)
    runs_dir = runs_dir.resolve()
    done = history.measured(machine)
    outcome: dict[str, str] = {}
    estimate = TimeLeft.of((c, 1.0) for c in commits if c not in done)  # a commit takes what the last ones took
    for i, commit in enumerate(commits, 1):
        label = f"history: [{i}/{len(commits)}] {commit[:12]}"
        if commit in done:
            outcome[commit] = "measured before"
            log(f"{label}: measured before on {machine}, not again")
            continue
        started = time.perf_counter()
        try:
            folder = _measure(commit, repo, plan, runs_dir)
            entry = store.entry_of(folder, when, ancestors)
            entry.line["range_machine"] = machine  # an environment of its own gives another fingerprint
        except BadInput as exc:
            entry = store.failure_entry(commit, when(commit), machine, plan.matrix, plan.device, str(exc))
            outcome[commit] = f"failed: {exc}"
        else:
            outcome[commit] = "added"
        with store.Writer(history_dir) as writer:
            writer.add(entry)
        log(f"{label}: {outcome[commit]} ({time.perf_counter() - started:.0f} s)")
        estimate.finished(commit)
        show_time_left(estimate, log)
    return outcome
