"""The one run orchestrator (results/run.py) every front-end goes through: what it refuses, what it
gives back, and what run.json says at the end."""

import json
import signal

import pytest

from dnnbench.core.errors import BadInput
from dnnbench.definitions.cases import Case
from dnnbench.definitions.plan import PlannedCase
from dnnbench.results.lock import FolderLock
from dnnbench.results.run import Run

SKIPPED = PlannedCase(("batch",), Case(workload="synthetic"), 1, skip_reason="not on this machine")


def test_a_refused_run_gives_back_its_folder_and_sigterm(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    first = Run(tmp_path, "test").open({"device": "cpu", "started_at": "t0"}, [SKIPPED])
    assert signal.getsignal(signal.SIGTERM) != before  # the run's own handler while it runs
    first.measure(SKIPPED)
    first.close(0)
    assert signal.getsignal(signal.SIGTERM) == before
    with pytest.raises(BadInput, match="already holds 1 of these case x seed pairs; pass --resume"):
        Run(tmp_path, "test").open({"device": "cpu"}, [SKIPPED])
    assert signal.getsignal(signal.SIGTERM) == before
    with FolderLock(tmp_path, "next") as lock:  # released: taken at once, not as a stale lock
        assert lock.notice is None


def test_a_resumed_run_keeps_its_start_and_counts_every_status(tmp_path, monkeypatch):
    monkeypatch.setenv("DNNBENCH_CALIBRATION", "off")
    first = Run(tmp_path, "test").open({"device": "cpu", "started_at": "t0"}, [SKIPPED])
    first.measure(SKIPPED)
    first.close(143)
    again = Run(tmp_path, "test", resume=True).open({"device": "cpu", "started_at": "t1"}, [SKIPPED])
    assert again.measure(SKIPPED) is None  # held already: not journaled twice
    other = PlannedCase(("batch",), Case(workload="synthetic", batch_size=10), 1, skip_reason="also not here")
    again.measure(other)
    again.close(0)
    meta = json.loads((tmp_path / "run.json").read_text())
    assert (meta["started_at"], meta["resumed_at"]) == ("t0", "t1")
    assert meta["status_counts"] == {"skipped": 2} and meta["exit_status"] == 0
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 2
