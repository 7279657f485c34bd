"""Shared helpers for the tests: small slices of the real data sets, the repo's paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dnnbench.core.record import Record, Target
from dnnbench.definitions.cases import Case
from dnnbench.definitions.optimizers import default_lr

ROOT = Path(__file__).resolve().parents[1]

# A machine fingerprint (core/machine.py) for hand-made records: two runs made with it count as one
# machine, so the gate judges their speed. Tests of the machine rule build others from it.
TEST_MACHINE = {
    "cpu_vendor": "AuthenticAMD",
    "cpu_model": "AMD EPYC",
    "cpu_family": 26,
    "cpu_model_number": 2,
    "isa": ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile", "amx_bf16"],
    "cores": 2,
    "gpu": None,
    "torch": "2.14.1",
    "torch_cpu_capability": "AVX512",
    "torch_blas": "mkl",
    "numpy": "2.4.6",
    "numpy_blas": "scipy-openblas 0.3.31",
}


def tiny(**changes) -> Case:
    """A real Fashion-MNIST case small enough for a unit test (500 samples, one epoch)."""
    base = dict(train_samples=500, eval_samples=500, epochs=1, eval_every=250)
    base.update(changes)
    return Case(**base)


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m dnnbench ARGS` in a child process, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "dnnbench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def bench_command(*args: str) -> list[str]:
    """The command line of `pytest bench ARGS`, as `make bench` runs it."""
    return [sys.executable, "-m", "pytest", "bench", "-q", "-p", "no:cacheprovider", *args]


def run_bench(*args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`pytest bench ARGS` in a child process (with `env` added to this one's)."""
    return subprocess.run(
        bench_command(*args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def kill_after_records(cmd: list[str], results: Path, count: int, timeout: float = 300) -> list[str]:
    """Start a run, SIGKILL it once its journal holds `count` records; the journal's lines at that point."""
    import signal
    import time

    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = results / "records.jsonl"
    deadline = time.time() + timeout
    while time.time() < deadline and (not journal.exists() or journal.read_text().count("\n") < count):
        time.sleep(0.2)
    child.send_signal(signal.SIGKILL)
    child.wait()
    return journal.read_text().splitlines()


@pytest.fixture(scope="session")
def fashion_root() -> Path:
    from dnnbench.definitions.data import locate

    return locate("fashion-mnist")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One real smoke run through the pytest-benchmark front-end, shared by the tests that read it."""
    results = tmp_path_factory.mktemp("smoke")
    out = run_bench("--matrix", "smoke", "--results", str(results))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return results, out


def record(
    case: Case,
    seed: int,
    suites: list[str],
    status: str = "ok",
    reason: str = "",
    target: float | None = 0.85,
    calibration=None,
    protocol: str = "benchmark",
    curves=None,
    epochs: int = 5,
    phase_fractions=None,
    **metrics,
) -> Record:
    """A hand-made record with the given metrics, for tests whose expected values are checkable by hand."""
    reached = metrics.get("time_to_target_s") is not None
    return Record(
        case_id=case.id,
        seed=seed,
        case=case.to_dict(),
        status=status,
        reason=reason,
        env={"device": case.device, "fingerprint": TEST_MACHINE},
        metrics=metrics,
        resolved={
            "batch_size": 100 if case.batch_size != "full" else 50000,
            "epochs": epochs,
            "lr": case.lr or default_lr(case.optimizer),
        },
        target=Target("val_accuracy", target, reached, "reached" if reached else "not reached"),
        calibration=calibration,
        protocol=protocol,
        curves=curves,
        phase_fractions=phase_fractions,
        suite=suites[0],
        suites=tuple(suites),
    )
