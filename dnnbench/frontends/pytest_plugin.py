"""The pytest-benchmark front-end, registered as the `dnnbench` pytest plugin (entry point pytest11).

pytest owns collection, selection (-k, -m, file names) and parametrization; pytest-benchmark owns
the timing statistics and benchmark.json's format; the engine owns the measurement. A suite module
(bench/test_*.py) sets `SUITE = "name"` and asks for the `planned` cases of its suite, handing each
to the `measure` fixture, which drives the engine's training steps through `benchmark.pedantic`
(one round per training step, the untimed work between steps as pedantic's setup) and journals
the record. The plugin stays inert in a session that collects no suite module (e.g. `pytest tests`).

    pytest bench --matrix smoke --device cpu --results results/my-run [--resume] [--set lr=0.01]
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dnnbench.core.errors import BadInput
from dnnbench.core.record import Record, finite
from dnnbench.core.signals import Terminated
from dnnbench.definitions.plan import PlannedCase, expand_from_options
from dnnbench.frontends.options import PLAN_OPTIONS
from dnnbench.measurement import engine
from dnnbench.measurement import env as envmod
from dnnbench.measurement.clocks import synchronized_perf_counter
from dnnbench.results.journal import BENCHMARK_JSON, Journal, write_atomically
from dnnbench.results.run import Run, estimate
from dnnbench.views.progress import one_line_summary, time_left_line, wants_progress


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dnnbench")
    for flag, spec in PLAN_OPTIONS:
        group.addoption(flag, **spec)
    group.addoption("--results", default=None, help="run folder (default results/<matrix>-<device>-<time>)")
    group.addoption("--resume", action="store_true", help="skip case × seed pairs already in the journal")


def _fail(message: str) -> None:
    """Bad input: one line, exit code 2, no traceback."""
    pytest.exit(f"dnnbench: error: {message}", returncode=2)


@dataclass
class RunState:
    """One benchmark run: its plan, the Run that fills its folder, and what this session measured."""

    plan: list[PlannedCase]
    by_id: dict[str, PlannedCase]
    run: Run
    journal: Journal
    device: str
    data_dir: str | None
    measured: list[Any] = field(default_factory=list)  # pytest-benchmark's Metadata of this session
    summaries: dict[str, str] = field(default_factory=dict)  # nodeid → progress line


class BenchSession:
    """The plugin's per-session object: it opens the run when the first suite module is collected."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.state: RunState | None = None
        self.error: str | None = None  # bad input met while collecting; reported once collection ends

    # --- the run --------------------------------------------------------------------------------

    def start(self) -> RunState:
        """The run: plan, then results.run.Run (lock, repaired journal, run.json). Raises BadInput."""
        if self.state is not None:
            return self.state
        if self.error is not None:
            raise BadInput(self.error)
        try:
            return self._start()
        except BadInput as exc:
            self.error = str(exc)
            raise

    def _start(self) -> RunState:
        option = self.config.option
        plan = expand_from_options(option)
        device = plan[0].case.device if plan else option.device
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run = Run(Path(option.results or f"results/{option.matrix}-{device}-{stamp}"), "pytest bench",
                  resume=option.resume)  # fmt: skip
        run.open(envmod.run_description(option.matrix, device, plan, option.dnnbench_set, option.shard), plan)
        assert run.journal is not None
        self.state = RunState(plan, {p.id: p for p in plan}, run, run.journal, device, option.data_dir)
        return self.state

    # --- collection -----------------------------------------------------------------------------

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        suite = getattr(metafunc.module, "SUITE", None)
        if "planned" not in metafunc.fixturenames or suite is None:
            return
        try:
            state = self.start()
        except BadInput:
            metafunc.parametrize("planned", [])  # collection ends, then the error is one line
            return
        # The parameter is the id string, so that benchmark.json's "params" stay plain JSON.
        mine = [p.id for p in state.plan if suite in p.suites]
        if not mine:  # one skipped item that says why, rather than pytest's "got empty parameter set"
            reason = f"matrix {self.config.option.matrix} lists no {suite} cases"
            metafunc.parametrize("planned", [pytest.param("none", marks=pytest.mark.skip(reason=reason))], ids=["none"])
            return
        metafunc.parametrize("planned", mine, ids=mine)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """pytest-benchmark's own marker sets each case's group (its suite) and, on CUDA, a timer that
        synchronizes the device (perf_counter alone would time only the kernel launches)."""
        if self.error is not None:
            _fail(self.error)
        if self.state is None:
            return
        cuda = {"timer": synchronized_perf_counter} if self.state.device == "cuda" else {}
        for item in items:
            suite = getattr(getattr(item, "module", None), "SUITE", None)
            if suite and "measure" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.benchmark(group=suite, **cuda))
                callspec = getattr(item, "callspec", None)  # a pytest.Function's parameters
                planned = self.state.by_id.get(callspec.params.get("planned")) if callspec else None
                if planned and planned.case.world_size > 1:  # its steps run in torchrun's processes, timed there
                    item.add_marker(pytest.mark.filterwarnings("ignore:Benchmark fixture was not used"))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        state = self.state
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if state is None or reporter is None:
            return
        skips = sum(p.skip_reason is not None for p in state.plan)
        reporter.write_line(
            f"dnnbench: matrix {self.config.option.matrix} on {state.device}: {len(state.plan)} case x seed pairs "
            f"({skips} skipped by rule, {len(state.run.resumed)} already in the journal)"
        )
        reporter.write_line(f"dnnbench: results -> {state.journal.dir}")
        # the time left counts what this session runs: the pairs of its selected items (-k, one suite file)
        selected = {getattr(getattr(item, "callspec", None), "params", {}).get("planned") for item in session.items}
        state.run.time_left = estimate(
            p for p in state.plan if p.id in selected and (p.case.id, p.seed) not in state.run.finished
        )
        for notice in state.run.notices:
            reporter.write_line(notice)

    # --- progress and the end of the run ----------------------------------------------------------

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:
        """Progress: one line of figures under each finished case."""
        line = self.state.summaries.pop(nodeid, None) if self.state else None
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if line and reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(f"    {line}")
            if self.state is not None and self.state.run.time_left.total and wants_progress(sys.__stdout__):
                t = self.state.run.time_left
                reporter.write_line(f"    {time_left_line(t.done, t.total, t.elapsed(), t.left())}")

    def pytest_benchmark_update_json(self, config: pytest.Config, benchmarks, output_json: dict[str, Any]) -> None:
        """Keep benchmark.json whole: add the entries of cases that pytest-benchmark left out (stopped
        early by a budget or divergence, which leave pedantic through an exception) or that an earlier
        session of this run measured (--resume); each record carries its entry."""
        if self.state is None:
            return
        present = {b["fullname"] for b in output_json["benchmarks"]}
        for record in self.state.journal.records():
            entry = record.benchmark
            if entry and entry["fullname"] not in present:
                output_json["benchmarks"].append(dict(entry))
                present.add(entry["fullname"])
        output_json["dnnbench"] = {"results": str(self.state.journal.dir), "device": self.state.device}

    def write_benchmark_json(self) -> Path | None:
        """benchmark.json in the run folder, made by pytest-benchmark's own hooks (its format)."""
        state, hook, config = self.state, self.config.hook, self.config
        if state is None or not any(r.benchmark for r in state.journal.records()):
            return None
        machine = hook.pytest_benchmark_generate_machine_info(config=config)
        hook.pytest_benchmark_update_machine_info(config=config, machine_info=machine)
        commit = hook.pytest_benchmark_generate_commit_info(config=config)
        hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit)
        output = hook.pytest_benchmark_generate_json(
            config=config, benchmarks=state.measured, include_data=False, machine_info=machine, commit_info=commit
        )
        hook.pytest_benchmark_update_json(config=config, benchmarks=state.measured, output_json=output)
        path = state.journal.dir / BENCHMARK_JSON
        write_atomically(path, json.dumps(finite(output), indent=4, default=str))
        return path

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = self.state
        if state is None:
            return
        try:
            self.write_benchmark_json()
        except BadInput as exc:
            print(f"dnnbench: error: {exc}", file=sys.stderr)
        try:
            state.run.close(int(exitstatus))
        except BadInput as exc:
            print(f"dnnbench: error: {exc}", file=sys.stderr)  # the records are in records.jsonl

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.state is not None:
            self.state.run.close(None)  # released however the session ended (safe when closed already)

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        if self.state is None:
            return
        terminalreporter.write_sep("=", "dnnbench")
        terminalreporter.write_line(f"records   {self.state.journal.path}")
        path = self.state.journal.dir / BENCHMARK_JSON
        if path.exists():
            terminalreporter.write_line(f"benchmark {path}")


SESSION = pytest.StashKey[BenchSession]()


def pytest_configure(config: pytest.Config) -> None:
    session = BenchSession(config)
    config.stash[SESSION] = session
    config.pluginmanager.register(session, "dnnbench-session")


def pedantic_driver(benchmark) -> engine.Driver:
    """Drive the engine through pytest-benchmark: every training step is one timed round. A case
    stopped early leaves pedantic through StopTraining; pytest-benchmark then drops it from its own
    list, and BenchSession.pytest_benchmark_update_json puts its rounds back from the record."""

    def drive(step, between, warmup: int, planned: int) -> None:
        benchmark.pedantic(step, setup=between, rounds=max(1, planned - warmup), warmup_rounds=warmup)

    return drive


@contextlib.contextmanager
def _one_line_errors(state: RunState):
    """Inside: SIGTERM ends the run in one line (143) and bad input or a failed write in one line (2);
    the journal holds every record finished before either."""
    try:
        with state.run.measuring():
            yield
    except Terminated:
        pytest.exit(f"dnnbench: terminated (SIGTERM); {state.run.kept()}", returncode=143)
    except BadInput as exc:
        _fail(str(exc))


def _benchmark_entry(benchmark) -> dict[str, Any] | None:
    """pytest-benchmark's own JSON entry for this case (its rounds' statistics), if it timed any."""
    stats = benchmark.stats
    if stats is None or not stats.stats.rounds:
        return None
    return stats.as_dict(include_data=False)


@pytest.fixture
def measure(request: pytest.FixtureRequest, benchmark):
    """measure(planned_id): run one planned case × seed, or skip it with its reason."""
    session = request.config.stash[SESSION]
    try:
        state = session.start()
    except BadInput as exc:
        _fail(str(exc))
    suite = request.module.SUITE

    def _measure(planned_id: str) -> Record:
        planned = state.by_id[planned_id]
        key = (planned.case.id, planned.seed)
        done = state.run.done(planned)
        if done is not None:
            why = "--resume" if key in state.run.resumed else f"shared with the {done.suite} suite"
            state.summaries[request.node.nodeid] = f"skipped: measured already in this run ({why})"
            pytest.skip(f"measured already in this run ({why})")
        if planned.skip_reason:
            with _one_line_errors(state):
                state.run.skip(planned, suite)
            state.summaries[request.node.nodeid] = f"skipped: {planned.skip_reason}"
            pytest.skip(planned.skip_reason)
        drive = engine.loop_driver if benchmark.disabled else pedantic_driver(benchmark)
        with _one_line_errors(state):
            record = state.run.train(planned, drive=drive, data_dir=state.data_dir, suite=suite)
            assert record is not None  # a single process leads
            benchmark.extra_info.update(
                {
                    "case_id": planned.case.id,
                    "seed": planned.seed,
                    "suite": suite,
                    "status": record.status,
                    "reason": record.reason,
                    **{k: v for k, v in record.metrics.items() if v is not None},
                }
            )
            entry = None if benchmark.disabled else _benchmark_entry(benchmark)
            if entry is not None:
                state.measured.append(benchmark.stats)
            record = state.run.keep(record, benchmark=entry)
        state.summaries[request.node.nodeid] = one_line_summary(record)
        if record.status == "error":
            pytest.fail(f"{planned.id}: {record.reason}", pytrace=False)
        return record

    return _measure
