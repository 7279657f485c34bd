"""One benchmark run in one folder, whichever front-end drives it: `dnnbench run`, `pytest bench`,
`dnnbench tune`, or rank 0 of a user's own torchrun.

    run = Run(folder, "dnnbench run", resume=args.resume)
    run.open(description)                      # lock, torn-line repair, the resume rule, run.json
    with run.measuring():                      # SIGTERM: Terminated in here, a clean exit (143) outside
        for planned in plan:
            record = run.measure(planned)      # journaled; a pair measured already comes back as None
    run.close(exit_status)                     # run.json's end: calibration, status counts, exit status

The pytest front-end times the steps itself, so it calls `train` and `keep` (with pytest-benchmark's
entry) instead of `measure`. Every front-end therefore writes the same run.json keys, journals
skipped cases the same way and resumes by the same rule.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dnnbench.core.errors import BadInput
from dnnbench.core.record import Record
from dnnbench.core.signals import Terminated
from dnnbench.definitions.plan import PlannedCase
from dnnbench.measurement import allocator, engine
from dnnbench.measurement.measuring import probes
from dnnbench.measurement.recording import unmeasured
from dnnbench.results.journal import Journal, read_run_meta, write_run_meta
from dnnbench.results.lock import FolderLock
from dnnbench.results.time_left import TimeLeft

TIME_LEFT_LOG = "time_left.jsonl"  # the estimate after every pair: how good it was, read after the run
CALIBRATION_SECONDS = 0.3  # the probes at the start and the end of a run (drift within the run)

Train = Callable[..., Record | None]


def estimate(plan: Iterable[PlannedCase]) -> TimeLeft:
    """The time-left estimate of these pairs, in order: the shards' cost model, a case's seeds alike."""
    from dnnbench.definitions.shards import expected_cost

    items = [((p.case.id, p.seed), expected_cost(p.case, p.skip_reason is not None)) for p in plan]
    return TimeLeft.of(items, group_of=lambda key: key[0])  # type: ignore[index]


class Run:
    """A run folder being filled: its lock, journal, run.json and the case x seed pairs it holds."""

    def __init__(self, folder: str | os.PathLike, purpose: str, *, resume: bool = False, lead: bool = True) -> None:
        self.folder = Path(folder)
        self.purpose = purpose  # who holds the folder, for the lock's message
        self.resume = resume
        self.lead = lead  # False on the other ranks of a torchrun: they measure, rank 0 journals
        self.journal: Journal | None = None
        self.lock: FolderLock | None = None
        self.finished: dict[tuple[str, int], Record] = {}
        self.resumed: set[tuple[str, int]] = set()
        self.device: str | None = None
        self.notices: list[str] = []
        self.time_left = TimeLeft.of([])  # the pairs of the plan `open` takes
        self._inside = False
        self._previous_handler: Any = None
        self._took_sigterm = False

    # --- start and end --------------------------------------------------------------------------

    def open(self, description: dict[str, Any] | None = None, plan: Sequence[PlannedCase] = ()) -> Run:
        """Take the folder: lock it, cut a torn last line, refuse pairs of `plan` that it holds already
        unless resuming (other pairs may share a folder: an A/B round holds many cases), and write
        run.json (`description`, from env.run_description, plus a calibration; a resumed run keeps its
        first start time). Raises BadInput. A run that keeps no records (not the lead) only takes SIGTERM."""
        if not self.lead:
            self._take_sigterm()
            return self
        self.journal = Journal(self.folder)
        self.lock = FolderLock(self.journal.dir, self.purpose).acquire()
        try:
            self.notices += [n for n in (self.lock.notice, self.journal.repair()) if n]
            self.finished = self.journal.finished()
            already = [p for p in plan if (p.case.id, p.seed) in self.finished]
            if already and not self.resume:
                raise BadInput(
                    f"{self.journal.dir} already holds {len(already)} of these case x seed pairs; pass --resume "
                    "to finish that run keeping them, or choose another --results folder"
                )
            self.resumed = set(self.finished)
            self.time_left = estimate(p for p in plan if (p.case.id, p.seed) not in self.finished)
            allocator.pin()
            if description is not None:
                self.device = description.get("device")
                start = self._calibration() if self.device else {}
                first = read_run_meta(self.journal.dir).get("started_at") if self.resume and self.finished else None
                again = {"started_at": first, "resumed_at": description.get("started_at")} if first else {}
                write_run_meta(self.journal.dir, {**description, **start, **again})
        except BaseException:
            self.lock.release()
            self.lock, self.device = None, None
            raise
        self._take_sigterm()
        return self

    def _take_sigterm(self) -> None:
        self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        self._took_sigterm = True

    def close(self, exit_status: int | None = None) -> None:
        """run.json's end (when the run was described), SIGTERM's handler given back and the lock
        released; safe to call twice."""
        if self._took_sigterm:
            signal.signal(signal.SIGTERM, self._previous_handler or signal.SIG_DFL)
            self._took_sigterm = False
        if self.lock is None:
            return
        try:
            if self.device and self.journal is not None:
                counts = Counter(r.status for r in self.journal.records())
                write_run_meta(
                    self.journal.dir,
                    {
                        **{k.replace("start", "end"): v for k, v in self._calibration().items()},
                        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                        "status_counts": dict(counts),
                        "exit_status": exit_status,
                    },
                )
        finally:
            self.lock.release()
            self.lock = None

    def _calibration(self) -> dict[str, Any]:
        assert self.device is not None
        measured, what = probes(self.device, CALIBRATION_SECONDS)
        return {"calibration_start": {**measured, "what": what}}

    # --- SIGTERM --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def measuring(self) -> Iterator[None]:
        """Inside, SIGTERM raises Terminated (the front-end ends in one line, exit 143); outside, the
        same line and an immediate exit. The journal holds SIGTERM back while it writes a line."""
        self._inside = True
        try:
            yield
        finally:
            self._inside = False

    def _on_sigterm(self, signum: int, frame: object) -> None:
        if self._inside:
            raise Terminated("SIGTERM")
        os.write(2, f"dnnbench: terminated (SIGTERM); {self.kept()}\n".encode())
        os._exit(143)

    def kept(self) -> str:
        """'N record(s) kept in PATH', for the line a terminated run ends with."""
        if self.journal is None:
            return "no records kept"
        return f"{len(self.journal.records())} record(s) kept in {self.journal.path}"

    # --- the cases ------------------------------------------------------------------------------

    def done(self, planned: PlannedCase) -> Record | None:
        """The record of this pair if the run holds it already (resumed, or shared with another suite)."""
        return self.finished.get((planned.case.id, planned.seed))

    def skip(self, planned: PlannedCase, suite: str | None = None) -> Record:
        """Journal a pair skipped by rule, so that reports and merges show it."""
        assert planned.skip_reason is not None
        return self.keep(
            unmeasured(planned.case, planned.seed, planned.skip_reason, suites=planned.suites, suite=suite)
        )

    def train(
        self,
        planned: PlannedCase,
        *,
        drive: engine.Driver = engine.loop_driver,
        data_dir: str | None = None,
        suite: str | None = None,
        trainer: Train = engine.run,
    ) -> Record | None:
        """Measure one pair (not journaled: see keep); None on the ranks that do not lead."""
        return trainer(planned.case, planned.seed, drive=drive, data_dir=data_dir, suites=planned.suites, suite=suite)

    def keep(self, record: Record, benchmark: dict[str, Any] | None = None) -> Record:
        """Journal a record (with pytest-benchmark's entry, if it timed the steps)."""
        if self.journal is not None:
            record = self.journal.append(record, benchmark=benchmark)
        self.finished[record.key] = record
        if record.key in self.time_left.expected and record.key not in self.time_left.actual:
            self.time_left.finished(record.key, typical=record.status in ("ok", "skipped"))
            if self.journal is not None:
                with open(self.journal.dir / TIME_LEFT_LOG, "a", encoding="utf-8") as log:
                    log.write(
                        json.dumps({"case_id": record.case_id, "seed": record.seed, **self.time_left.state()}) + "\n"
                    )
        return record

    def measure(
        self,
        planned: PlannedCase,
        *,
        data_dir: str | None = None,
        suite: str | None = None,
        trainer: Train = engine.run,
    ) -> Record | None:
        """Skip, or measure and journal, one pair; None when the run holds it already or this rank
        does not lead."""
        if self.done(planned) is not None:
            return None
        if planned.skip_reason:
            return self.skip(planned, suite)
        record = self.train(planned, data_dir=data_dir, suite=suite, trainer=trainer)
        return None if record is None else self.keep(record)
