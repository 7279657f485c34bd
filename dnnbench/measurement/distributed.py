"""Data-parallel cases: the same workload trained with DistributedDataParallel over `world_size` processes.

    engine.run(case with world_size=2)  →  launch(): torchrun --standalone --nproc-per-node 2
                                           -m dnnbench.measurement.distributed  (one process per rank)

Each rank trains on its shard of every epoch (DistributedSampler, or slices of one permutation for the
device loader) with batch_size / world_size samples per step; DDP averages the gradients. The
all-reduce runs synchronously inside a DDP communication hook that times it, so the record reports it
as a phase of its own, carved out of backward (no overlap with backward: the share is an upper bound
of what overlap could hide). Budget, divergence and evaluation are decided on rank 0 and shared; rank 0
evaluates alone (on the unwrapped model) and writes the one record, with every rank's step time.

A rank that fails writes its first line and exits; torchrun stops the others; a rank that hangs is
ended by the collectives' timeout and, at the latest, by launch()'s, which kills the whole process
group: the case becomes an `error` record and the run goes on with nothing left behind. gloo on CPU,
nccl on CUDA. Under a torchrun of the user's own (several nodes), `dnnbench run` acts as one rank.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dnnbench.core.record import Record
from dnnbench.definitions.cases import Case
from dnnbench.measurement.hooks import Hooks
from dnnbench.measurement.measuring import Driver, Measuring, loop_driver, run_here
from dnnbench.measurement.recording import unmeasured
from dnnbench.measurement.training import StopTraining, Training

COLLECTIVE_TIMEOUT_S = 120  # a peer silent this long is taken as hung


def threads_per_rank(case: Case) -> int:
    """Processes × threads must not oversubscribe the cores: each rank gets its share unless set."""
    return case.threads or max(1, (os.cpu_count() or 1) // case.world_size)


class DataParallel(Hooks):
    """Wraps the model in DDP and times each gradient all-reduce (synchronous, in a comm hook)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seconds = 0.0

    def wrap_model(self, model: nn.Module) -> nn.Module:
        ids = [torch.cuda.current_device()] if self.device == "cuda" else None
        ddp = DistributedDataParallel(model, device_ids=ids)
        ddp.register_comm_hook(state=self, hook=_timed_allreduce)
        return ddp

    def carve(self) -> dict[str, tuple[str, float]]:
        seconds, self.seconds = self.seconds, 0.0
        return {"allreduce": ("backward", seconds)}


def _timed_allreduce(state, bucket):  # no annotations: DDP checks them, and this module's are strings
    start = time.perf_counter()
    tensor = bucket.buffer()
    dist.all_reduce(tensor)
    tensor.div_(dist.get_world_size())
    if tensor.is_cuda:
        torch.cuda.synchronize()
    state.seconds += time.perf_counter() - start
    done: torch.futures.Future = torch.futures.Future()
    done.set_result(tensor)
    return done


class DistributedTraining(Training):
    """Training as one rank: decisions between steps are rank 0's, shared with every rank."""

    def _shared(self, value: float, op=dist.ReduceOp.MAX, src: int | None = None) -> float:
        tensor = torch.tensor([value], dtype=torch.float64)
        if self.case.device == "cuda":
            tensor = tensor.cuda()
        if src is None:
            dist.all_reduce(tensor, op=op)
        else:
            dist.broadcast(tensor, src=src)
        return float(tensor.item())

    def between(self) -> None:
        p, v = self.progress, self.validation
        if p.steps == 0:
            return
        budget = self._shared(float(self.rank == 0 and p.host_train_time >= self.plan.max_seconds), src=0)
        due = p.samples >= v.next_eval_at  # counted over all ranks: the same on each
        if not (budget or due):
            return
        self.close_window()
        self.evaluate_if_new()
        dist.barrier()
        if budget:
            done = p.samples / self.plan.n_train
            raise StopTraining(
                "ok",
                f"stopped by the {self.plan.max_seconds:g} s training-time budget after {done:.2f} of "
                f"{self.plan.epochs} epochs",
            )
        while v.next_eval_at <= p.samples:
            v.next_eval_at += self.plan.eval_every

    def close_window(self) -> None:
        """The window closed on every rank; a loss that diverged on any rank stops them all."""
        stop: StopTraining | None = None
        try:
            super().close_window()
        except StopTraining as exc:
            stop = exc
        if self._shared(float(stop is not None)):
            raise stop or StopTraining("diverged", "training loss became non-finite on another rank")

    def evaluate_if_new(self) -> None:
        if self.rank == 0:
            super().evaluate_if_new()

    def synchronize(self) -> None:
        dist.barrier()

    def group_figures(self) -> dict[str, Any]:
        """Every rank's step time and threads (gathered on all ranks; rank 0 records them)."""
        figures: list[dict[str, Any] | None] = [None] * self.world
        dist.all_gather_object(figures, _rank_figures(self))
        return {"backend": dist.get_backend(), "ranks": figures, "threads_per_rank": torch.get_num_threads()}


def _rank_figures(training: Training) -> dict[str, Any]:
    rows = training.progress.step_rows()
    warm = training.plan.warmup_steps if len(rows) > training.plan.warmup_steps else 0
    steps = rows[warm:].sum(axis=1)
    return {
        "rank": training.rank,
        "steps": training.progress.steps,
        "step_time_ms_median": float(np.median(steps) * 1e3) if len(steps) else None,
        "threads": torch.get_num_threads(),
    }


def rank_run(
    case: Case,
    seed: int,
    *,
    drive: Driver = loop_driver,
    data_dir: str | None = None,
    suites: Sequence[str] = (),
    suite: str | None = None,
) -> Record | None:
    """Train `case` as this rank of an initialized process group, through the one measuring path
    (measuring.run_here); rank 0 returns the record."""
    rank, world = dist.get_rank(), dist.get_world_size()
    started = time.perf_counter()
    suites = tuple(suites)
    suite = suite or (suites[0] if suites else None)  # as engine.run
    with Measuring(case, lead=rank == 0) as conditions:
        training = DistributedTraining(case, seed, data_dir, hooks=DataParallel(case.device), shard=(rank, world))
        return run_here(training, drive, conditions, suites, suite, started)


def case_from(data: dict[str, Any]) -> Case:
    if data.get("hidden") is not None:
        data = {**data, "hidden": tuple(data["hidden"])}
    return Case(**data)


def main(argv: list[str] | None = None) -> int:
    """One rank under torchrun (launch() starts them): train, and on rank 0 write the record."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", required=True, help="the Case as JSON")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="rank 0 writes the record here; a failing rank OUT.rankN.error")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    out = Path(args.out)
    try:
        case = case_from(json.loads(args.case))
        if case.device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "nccl" if case.device == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
        record = rank_run(case, args.seed, data_dir=args.data_dir)
        if record is not None:
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(record.to_json(), default=str))
            tmp.replace(out)
        dist.destroy_process_group()
        return 0
    except BaseException as exc:  # one line for the launcher, then out: torchrun stops the others
        text = str(exc).strip().splitlines()
        Path(f"{out}.rank{rank}.error").write_text(f"rank {rank}: {type(exc).__name__}: {text[0] if text else ''}")
        sys.stderr.flush()
        os._exit(1)


def _first_failure(out: Path, stderr: str) -> str:
    """The first line that says why a distributed case failed: torchrun's root cause (the first rank to
    fail) — killed by a signal, or that rank's own error line — else any rank's error line."""
    errors = {
        int(p.name.rsplit("rank", 1)[1].split(".")[0]): p.read_text().strip()[:300]
        for p in out.parent.glob(f"{out.name}.rank*.error")
    }
    entry = r"rank\s*:\s*(\d+)[^\n]*\n\s*exitcode\s*:\s*(-?\d+)"
    cause = stderr.split("Root Cause", 1)[1] if "Root Cause" in stderr else stderr
    root = re.search(entry, cause)
    # torchrun stops the other ranks with SIGTERM once one fails; any other signal came from outside
    # (SIGKILL, the OOM killer) and is the cause even when a peer's "connection closed" was seen first.
    signalled = [(int(m.group(1)), int(m.group(2))) for m in re.finditer(entry, stderr) if int(m.group(2)) < 0]
    outside = [(r, c) for r, c in signalled if -c != signal.SIGTERM]
    if root and int(root.group(2)) < 0:
        outside.insert(0, (int(root.group(1)), int(root.group(2))))
    if outside:
        rank_no, code = outside[0]
        return f"rank {rank_no} killed by {signal.Signals(-code).name}"
    rank = re.search(r"rank\s*:\s*(\d+)", cause)
    if rank and int(rank.group(1)) in errors:
        return errors[int(rank.group(1))]
    if errors:
        return errors[min(errors)]
    lines = [line for line in stderr.strip().splitlines() if "Error" in line]
    return (lines[0] if lines else "torchrun failed without a message")[:300]


def launch(
    case: Case,
    seed: int,
    *,
    data_dir: str | None = None,
    suites=(),
    suite: str | None = None,
    timeout: float | None = None,
) -> Record:
    """Run a data-parallel case through torchrun on this machine and return rank 0's record, or an
    error record with the first line of the failure; every process it started is gone on return."""
    from dnnbench.definitions.workloads import get_workload

    budget = case.max_seconds or get_workload(case.workload).max_seconds
    timeout = timeout or 2 * budget + 180
    folder = Path(tempfile.mkdtemp(prefix="dnnbench-ddp-"))
    out = folder / "record.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={case.world_size}"]
    cmd += ["--max-restarts=0", "-m", "dnnbench.measurement.distributed", "--case", json.dumps(case.to_dict())]
    cmd += ["--seed", str(seed), "--out", str(out)] + (["--data-dir", data_dir] if data_dir else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_rank(case)), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            _, stderr = proc.communicate()
            return unmeasured(
                case, seed, f"did not finish within {timeout:.0f} s (a rank hung)", "error", suites, suite
            )
        if proc.returncode == 0 and out.exists():
            return _with_suites(Record.from_json(json.loads(out.read_text())), suites, suite)
        return unmeasured(case, seed, _first_failure(out, stderr), "error", suites, suite)
    finally:
        _kill_group(proc)
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def _with_suites(record: Record, suites, suite) -> Record:
    data = record.to_json()
    data.update(suites=list(suites), suite=suite or (suites[0] if suites else None))
    return Record.from_json(data)


def _kill_group(proc: subprocess.Popen) -> None:
    """torchrun and every rank it started (they share its session's process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)


def as_rank_of_user_torchrun() -> bool:
    """Whether this process was started by a torchrun of the user's own (several nodes)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "TORCHELASTIC_RUN_ID" in os.environ


if __name__ == "__main__":
    raise SystemExit(main())
