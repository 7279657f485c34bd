"""The pytest-benchmark front-end: options, matrix parametrization, the journal.

pytest owns collection, selection (-k, -m, file names) and benchmark.json; the engine owns the
measurement. Each suite module asks for the `planned` cases of its suite and hands them to
`measure`, which drives the engine's training steps through `benchmark.pedantic` (one round per
training step, the untimed work between steps as pedantic's setup) and journals the record.

    pytest bench --matrix smoke --device cpu --results results/my-run [--resume] [--set lr=0.01]
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dnnbench import engine
from dnnbench import env as envmod
from dnnbench.errors import BadInput
from dnnbench.meter import calibrate
from dnnbench.options import PLAN_OPTIONS
from dnnbench.plan import PlannedCase, expand_from_options
from dnnbench.records import key, unmeasured_record
from dnnbench.store import BENCHMARK_JSON, Journal, write_run_meta
from dnnbench.summary import one_line_summary


@dataclass
class RunState:
    plan: list[PlannedCase]
    by_id: dict[str, PlannedCase]
    journal: Journal
    device: str
    data_dir: str | None
    finished: dict[tuple[str, int], dict[str, Any]]
    resumed: set[tuple[str, int]] = field(default_factory=set)
    summaries: dict[str, str] = field(default_factory=dict)


STATE = pytest.StashKey[RunState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dnnbench")
    for flag, spec in PLAN_OPTIONS:
        group.addoption(flag, **spec)
    group.addoption("--results", default=None, help="run folder (default results/<matrix>-<device>-<time>)")
    group.addoption("--resume", action="store_true", help="skip case × seed pairs already in the journal")


def _fail(message: str) -> None:
    """Bad input: one line, exit code 2, no traceback."""
    pytest.exit(f"dnnbench: error: {message}", returncode=2)


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("matrix", None):  # not collecting bench/ (e.g. --help)
        return
    option = config.option
    try:
        plan = expand_from_options(option)
    except BadInput as exc:
        _fail(str(exc))
    device = plan[0].case.device if plan else option.device
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(option.results or f"results/{option.matrix}-{device}-{stamp}")
    journal = Journal(run_dir)
    finished = journal.finished()
    if finished and not option.resume:
        _fail(
            f"{run_dir} already holds {len(finished)} records; pass --resume to continue that run "
            "or choose another --results folder"
        )
    if not option.benchmark_json:
        option.benchmark_json = run_dir / BENCHMARK_JSON
    if device == "cuda":  # perf_counter alone would time only the kernel launches
        option.benchmark_timer = "dnnbench.meter.synchronized_perf_counter"
    by_id = {p.id: p for p in plan}
    config.stash[STATE] = RunState(plan, by_id, journal, device, option.data_dir, finished, resumed=set(finished))
    _SESSION["config"] = config
    write_run_meta(
        run_dir,
        {
            "matrix": option.matrix,
            "device": device,
            "seeds": sorted({p.seed for p in plan}),
            "overrides": option.dnnbench_set,
            "command": " ".join(shlex.quote(a) for a in sys.argv),
            "make_command": os.environ.get("DNNBENCH_COMMAND"),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "planned_cases": len(plan),
            "planned_skips": sum(p.skip_reason is not None for p in plan),
            "env": envmod.capture(device),
            "calibration_start": calibrate(device, seconds=0.3),
        },
    )


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(STATE, None)
    if state is None:
        return None
    skips = sum(p.skip_reason is not None for p in state.plan)
    return [
        f"dnnbench: matrix {config.option.matrix} on {state.device}: {len(state.plan)} case x seed pairs "
        f"({skips} skipped by rule, {len(state.resumed)} already in the journal)",
        f"dnnbench: results -> {state.journal.dir}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "planned" not in metafunc.fixturenames:
        return
    state = metafunc.config.stash[STATE]
    suite = metafunc.module.SUITE
    # The parameter is the id string, so that benchmark.json's "params" stay plain JSON.
    mine = [p.id for p in state.plan if suite in p.suites]
    metafunc.parametrize("planned", mine, ids=mine)


def pedantic_driver(benchmark) -> engine.Driver:
    """Drive the engine through pytest-benchmark: every training step is one timed round."""

    def drive(step, between, warmup: int, planned: int) -> None:
        try:
            benchmark.pedantic(step, setup=between, rounds=max(1, planned - warmup), warmup_rounds=warmup)
        finally:
            # An early stop (time budget, divergence) leaves pedantic through StopTraining, which
            # marks the benchmark as failed and would drop it from benchmark.json. The rounds timed
            # before the stop are valid measurements, so keep them when there are any.
            stats = benchmark.stats
            benchmark.has_error = not (stats is not None and stats.stats.data)

    return drive


def _journal(state: RunState, record: dict[str, Any], suite: str, planned: PlannedCase) -> None:
    record["suite"] = suite
    record["suites"] = list(planned.suites)
    record["run_id"] = state.journal.dir.name
    state.journal.append(record)
    state.finished[key(record)] = record


@pytest.fixture
def measure(request: pytest.FixtureRequest, benchmark):
    """measure(planned_id): run one planned case × seed, or skip it with its reason."""
    state: RunState = request.config.stash[STATE]
    suite = request.module.SUITE

    def _measure(planned_id: str) -> dict[str, Any]:
        planned = state.by_id[planned_id]
        k = (planned.case.id, planned.seed)
        if k in state.finished:
            first = state.finished[k].get("suite")
            why = "--resume" if k in state.resumed else f"shared with the {first} suite"
            state.summaries[request.node.nodeid] = f"skipped: measured already in this run ({why})"
            pytest.skip(f"measured already in this run ({why})")
        if planned.skip_reason:
            record = unmeasured_record(
                planned.case.to_dict(),
                planned.case.id,
                planned.seed,
                "skipped",
                planned.skip_reason,
                envmod.capture(state.device),
            )
            _journal(state, record, suite, planned)
            state.summaries[request.node.nodeid] = f"skipped: {planned.skip_reason}"
            pytest.skip(planned.skip_reason)
        benchmark.group = suite
        drive = engine.loop_driver if benchmark.disabled else pedantic_driver(benchmark)
        record = engine.run(planned.case, planned.seed, drive=drive, data_dir=state.data_dir)
        benchmark.extra_info.update(
            {
                "case_id": planned.case.id,
                "seed": planned.seed,
                "suite": suite,
                "status": record["status"],
                "reason": record["reason"],
                **{k: v for k, v in record["metrics"].items() if v is not None},
            }
        )
        stats = benchmark.stats
        if stats is not None and stats.stats.data and not benchmark.has_error:
            record["benchmark"] = stats.as_dict(include_data=False)
        _journal(state, record, suite, planned)
        state.summaries[request.node.nodeid] = one_line_summary(record)
        if record["status"] == "error":
            pytest.fail(f"{planned.id}: {record['reason']}", pytrace=False)
        return record

    return _measure


# pytest_runtest_logfinish receives no config; this holds the one of the session (one per process).
_SESSION: dict[str, pytest.Config] = {}


def pytest_runtest_logfinish(nodeid: str, location) -> None:
    """Progress: one line of figures under each finished case."""
    config = _SESSION.get("config")
    if config is None:
        return
    state = config.stash.get(STATE, None)
    line = state.summaries.pop(nodeid, None) if state else None
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if line and reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(f"    {line}")


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict[str, Any]) -> None:
    """Keep benchmark.json whole across --resume: add the entries of cases measured by an earlier
    session of this run (kept in their records) that this session skipped."""
    state = config.stash.get(STATE, None)
    if state is None:
        return
    present = {b["fullname"] for b in output_json["benchmarks"]}
    for record in state.journal.records():
        entry = record.get("benchmark")
        if entry and entry["fullname"] not in present:
            output_json["benchmarks"].append(entry)
            present.add(entry["fullname"])
    output_json["dnnbench"] = {"results": str(state.journal.dir), "device": state.device}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    records = state.journal.records()
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    write_run_meta(
        state.journal.dir,
        {
            "calibration_end": calibrate(state.device, seconds=0.3),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "status_counts": counts,
            "exit_status": int(exitstatus),
        },
    )


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    terminalreporter.write_sep("=", "dnnbench")
    terminalreporter.write_line(f"records   {state.journal.path}")
    terminalreporter.write_line(f"benchmark {config.option.benchmark_json}")
