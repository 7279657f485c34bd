"""`dnnbench` (or `python -m dnnbench`): the command-line front-end (list, run, fetch-data, …).

Every subcommand is a thin call into the modules that do the work. Bad input of any kind ends as
one line on stderr and exit code 2; nothing here prints a traceback for a user's mistake.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from dnnbench.core.errors import BadInput
from dnnbench.core.signals import Terminated
from dnnbench.definitions.matrices import MATRICES
from dnnbench.frontends import history_cli
from dnnbench.frontends.options import REPEATED_MATRIX, plan_options

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 (argparse prints the usage too)."""

    def error(self, message: str):  # type: ignore[override]
        raise BadInput(message)


# --- list --------------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from dnnbench.definitions.plan import expand_from_options

    plan = expand_from_options(args)
    by_case: dict[str, list] = {}
    for p in plan:
        by_case.setdefault(p.case.id, []).append(p)
    skipped = [ps for ps in by_case.values() if ps[0].skip_reason]
    device = plan[0].case.device if plan else args.device
    counts = sorted({len(ps) for ps in by_case.values()}) or [0]
    seeds = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    print(
        f"matrix {args.matrix} on {device}: {len(by_case)} cases x {seeds} seed{'s' * (seeds != '1')} "
        f"= {len(plan)} runs, {len(skipped)} cases skipped"
    )
    if args.summary:
        return 0
    width = max(len(i) for i in by_case)
    print(f"{'CASE':<{width}}  {'SEEDS':<7} SUITES")
    for case_id, ps in by_case.items():
        seed_ids = ",".join(str(p.seed) for p in ps)
        line = f"{case_id:<{width}}  {seed_ids:<7} {','.join(ps[0].suites)}"
        if ps[0].skip_reason:
            line += f"  [skipped: {ps[0].skip_reason}]"
        print(line)
    return 0


def cmd_workloads(args: argparse.Namespace) -> int:
    """Every workload this installation knows (built in, installed plug-ins, --workload), as Markdown."""
    from dnnbench.definitions.workloads import WORKLOADS, get_workload, plugins, use

    for spec in args.workload or []:
        use(spec)
    names = [*WORKLOADS, *(n for n in plugins.entry_points() if n not in WORKLOADS)]
    print("| workload | task | target | why this target | budget | data here |")
    print("|---|---|---|---|---|---|")
    for name in names:
        w = get_workload(name)
        target = "none" if w.target is None else f"{w.target_metric} {w.target:g}"
        budget = f"{w.epochs} epochs or {w.max_seconds:g} s; evaluated every {w.eval_every:,} samples"
        here = w.missing(args.data_dir) or "yes"
        print(f"| {name} | {w.task.name} | {target} | {w.target_why} | {budget} | {here} |")
    return 0


# --- run ---------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    """Run cases of a matrix without pytest, into a run folder like `make bench`'s (results.run.Run)."""
    from dnnbench.definitions.plan import expand_from_options
    from dnnbench.measurement import distributed
    from dnnbench.measurement import env as envmod
    from dnnbench.results.run import Run

    plan = expand_from_options(args)
    if args.case:
        plan = [p for p in plan if p.case.id == args.case]
        if not plan:
            raise BadInput(
                f"unknown case id {args.case!r} in matrix {args.matrix}; "
                f"`dnnbench list --matrix {args.matrix}` prints the ids"
            )
    device = plan[0].case.device if plan else args.device
    if args.results is None and not args.no_results:  # like `make bench`: a run folder of its own
        args.results = f"results/{args.matrix}-{device}-{datetime.now():%Y%m%d-%H%M%S}"
    if distributed.as_rank_of_user_torchrun():
        return _run_as_rank(plan, args)
    run = Run(args.results or ".", "dnnbench run", resume=args.resume, lead=args.results is not None)
    description = envmod.run_description(args.matrix, device, plan, args.dnnbench_set, args.shard)
    run.open(description, plan)
    worst, status = 0, 2  # status: what run.json says if the loop ends by an error
    try:
        for notice in run.notices:
            print(notice, file=sys.stderr)
        with run.measuring():
            for p in plan:
                record = run.measure(p, data_dir=args.data_dir)
                if record is None:
                    print(f"{p.id}: measured already in this run (--resume)")
                    continue
                worst = max(worst, _progress(p.id, record))
                _time_left(run.time_left)
        status = worst
    except Terminated:
        print(f"dnnbench: terminated (SIGTERM); {run.kept()}", file=sys.stderr)
        status = 143
    finally:
        run.close(status)
    if run.journal and status != 143:
        print(f"results: {run.journal.dir}")
    return status


def _progress(planned_id: str, record) -> int:
    """One line per finished pair; 1 when the case failed (the run's exit status), else 0."""
    from dnnbench.views.progress import one_line_summary

    print(f"{planned_id}: {one_line_summary(record)}", flush=True)
    return 1 if record.status == "error" else 0


def _time_left(estimate) -> None:
    """done/total and the time left, on a terminal only (results.time_left, views.progress)."""
    from dnnbench.views.progress import show_time_left

    show_time_left(estimate, lambda line: print(line, flush=True))


def _run_as_rank(plan, args: argparse.Namespace) -> int:
    """`dnnbench run` under a torchrun of the user's own (several nodes): every process is a rank of the
    cases whose world_size is the job's; rank 0 holds the run folder (results.run.Run) and journals."""
    from datetime import timedelta

    import torch.distributed as dist

    from dnnbench.measurement import distributed
    from dnnbench.measurement import env as envmod
    from dnnbench.results.run import Run

    world = int(os.environ["WORLD_SIZE"])
    cases = [p for p in plan if p.case.world_size == world]
    if not any(not p.skip_reason for p in cases):
        raise BadInput(f"no runnable case of matrix {args.matrix} has world_size {world} (this torchrun's)")
    device = cases[0].case.device
    if device == "cuda":
        import torch

        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device == "cuda" else "gloo",
                            timeout=timedelta(seconds=distributed.COLLECTIVE_TIMEOUT_S))  # fmt: skip
    lead = dist.get_rank() == 0 and args.results is not None
    run = Run(args.results or ".", "dnnbench run (torchrun)", resume=args.resume, lead=lead)
    worst, status = 0, 2
    try:
        opened: list[Any] = [None]
        try:  # rank 0 takes the folder; whatever stops it stops every rank, in one line
            description = envmod.run_description(args.matrix, device, cases, args.dnnbench_set, None) if lead else None
            run.open(description, cases)
            opened = [sorted(run.finished)]
        except Exception as exc:
            opened = [f"rank 0 could not start the run: {exc}"]
        dist.broadcast_object_list(opened, src=0)
        if isinstance(opened[0], str):
            raise BadInput(opened[0])
        finished = {tuple(key) for key in opened[0] or ()}
        with run.measuring():
            for p in cases:
                if (p.case.id, p.seed) in finished:
                    continue
                if p.skip_reason:  # journaled by rank 0 as every front-end does
                    record = run.skip(p) if lead else None
                else:
                    record = run.train(p, data_dir=args.data_dir, trainer=distributed.rank_run)
                    record = run.keep(record) if record is not None else None
                if record is not None:
                    worst = max(worst, _progress(p.id, record))
        status = worst
    except Terminated:
        print(f"dnnbench: terminated (SIGTERM); {run.kept()}", file=sys.stderr)
        status = 143
    finally:
        run.close(status)
        dist.destroy_process_group()
    return status


# --- fetch-data ----------------------------------------------------------------------------------------


def cmd_fetch_data(args: argparse.Namespace) -> int:
    from dnnbench.definitions.workloads import get_workload, use

    for spec in args.workload:
        name = use(spec)
        print(f"{name}: {get_workload(name).require(args.data_dir)}")
    return 0


# --- report ------------------------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dnnbench.results.gate import load_config
    from dnnbench.results.journal import journal_path
    from dnnbench.results.lock import FolderLock
    from dnnbench.views.report import build_report

    folder = Path(args.output).parent if args.output else journal_path(args.results[0]).parent  # what is locked
    config = load_config(Path("pyproject.toml"), []) if args.baseline else None
    if args.baseline:  # a run, a saved baseline's folder or its name: resolved as `gate` resolves it
        from dnnbench.results.baselines import resolve_baseline
        from dnnbench.results.gate.sides import load_side

        args.baseline = str(resolve_baseline(args.baseline, load_side(args.results[0]).fingerprint).path)
    with FolderLock(folder, "dnnbench report"):
        files = build_report(args.results, baseline=args.baseline, out=args.output, gate_config=config)
    size = files.html.stat().st_size
    print(f"report:  {files.html} ({size / 1024:,.0f} KiB, self-contained)")
    print(f"summary: {files.markdown}")
    print(f"tables:  {len(files.tables)} CSV files in {files.tables[0].parent}" if files.tables else "tables:  none")
    print(f"charts:  {len(files.charts)} PNG files in {files.charts[0].parent}" if files.charts else "charts:  none")
    return 0


# --- gate and baseline -----------------------------------------------------------------------------------------


def cmd_gate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dnnbench.results import gate

    config = gate.load_config(Path(args.config), args.tolerance)
    if args.allow_missing:
        config = config.with_overrides({"fail_on_missing": False})
    if args.assume_same_machine:
        config = config.with_overrides({"assume_same_machine": True})
    current = gate.load_side(args.current)
    choice = gate.resolve_baseline(args.baseline, current.fingerprint)
    baseline_path = choice.path
    baseline = gate.load_side(baseline_path)
    result = gate.run_gate(baseline, current, config)
    heading = f"baseline {baseline_path} vs current {args.current}"
    _print_verdict(result, args, config, heading, str(baseline_path), args.current)
    return result.exit_code


def _print_verdict(result, args, config, heading: str, baseline_name: str, current_name: str) -> None:
    import json
    from pathlib import Path

    from dnnbench.views import gate as gate_view

    for warning in result.warnings:
        print(f"warning: {warning}")
    if result.machine_note:
        print(result.machine_note)
    print(heading)
    print(gate_view.tolerance_line(config))
    print(f"speed normalized {result.normalization}")
    table = gate_view.display_table(result, only_notable=args.brief)
    if not table.empty:
        print(table.to_string(index=False))
    if result.missing:
        print(f"only in the baseline ({len(result.missing)}): {', '.join(result.missing)}")
    for line in result.lost:
        print(f"not recorded by the head: {line}")
    if result.new:
        print(f"only in the current run ({len(result.new)}): {', '.join(result.new)}")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(gate_view.markdown(result, baseline_name, current_name), encoding="utf-8")
        print(f"markdown: {args.markdown}")
    if args.json:
        text = json.dumps(gate_view.as_json(result, baseline_name, current_name), indent=2)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n", encoding="utf-8")
        print(f"json: {args.json}")
    print(gate_view.headline(result))


def cmd_ab(args: argparse.Namespace) -> int:
    """Run base and head alternately on this machine and judge the paired differences."""
    import json
    from datetime import datetime
    from pathlib import Path

    from dnnbench.results import gate
    from dnnbench.results.gate.paired import load_rounds, run_paired_gate
    from dnnbench.tools import ab

    config = gate.load_config(Path(args.config), args.tolerance, section="ab")
    # absolute: each side's worker runs in its own checkout (a worktree for a git ref), where a relative
    # path would put the base's records inside the worktree, removed at the end
    out = Path(args.out or f"results/ab-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    repo = Path.cwd()
    if args.judge_only:
        meta = {}
    else:
        if args.base is None and args.base_python is None:
            raise BadInput("ab needs a base: --base REF (a git ref) and/or --base-python PYTHON")
        ab.check_rounds(args.rounds)  # before any worktree is made
        if (out / "base").exists() or (out / "head").exists():  # its rounds would be judged with the new ones
            raise BadInput(f"{out} already holds an A/B run; choose another --out, or judge it with --judge-only")
        sides = [
            ab.prepare_side("base", args.base, args.base_python, repo, out, args.install),
            ab.prepare_side("head", args.head, args.head_python, repo, out, args.install),
        ]
        for side in sides:
            print(f"ab: {side.describe()}")
        plan = ab.ABPlan(
            args.matrix, args.device, args.seeds, args.rounds, args.dnnbench_set, args.data_dir, args.k, args.workload
        )
        try:
            meta = ab.run_ab(sides[0], sides[1], plan, out)
        finally:
            ab.remove_worktrees(repo, sides)
        for failure in meta["failures"]:
            print(f"warning: {failure}")
    if args.allow_missing:
        config = config.with_overrides({"fail_on_missing": False})
    if not meta and (out / "ab.json").is_file():
        meta = json.loads((out / "ab.json").read_text())
    lost = ab.unrecorded_lines(meta.get("unrecorded") or [])
    if lost.get("head") and not any((out / "head").glob("r*/records.jsonl")):
        for line in lost["head"]:
            print(f"not recorded by the head: {line}")
        headline = f"gate: FAIL: the head recorded none of the {len(lost['head'])} case(s) it ran"
        print(headline)
        if args.json:  # no pairs to judge: the verdict and why, with no findings
            verdict = {"verdict": "fail", "exit_code": 1, "headline": headline, "baseline": "base", "current": "head"}
            verdict |= {"not_recorded": lost["head"], "regressions": 0, "findings": []}
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(verdict, indent=2) + "\n", encoding="utf-8")
        return 1
    result = run_paired_gate(load_rounds(out, "base"), load_rounds(out, "head"), config)
    result.lost += lost.get("head", [])
    result.lost += [f"{c}: the base runs it, the head skips it: {why}" for c, why in meta.get("head_skips", {}).items()]
    result.warnings += [f"the base did not record {line}: those rounds are not judged" for line in lost.get("base", [])]
    heading = f"A/B: base vs head in {out}" + (f" ({meta['wall_time_s']:.0f} s)" if meta else "")
    _print_verdict(result, args, config, heading, "base", "head")
    return result.exit_code


def cmd_baseline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dnnbench.results.baselines import machine_folder, save_baseline
    from dnnbench.results.lock import FolderLock

    if not args.name or "/" in args.name or args.name.startswith("."):
        raise BadInput(f"baseline name must be a plain folder name, got {args.name!r}")
    target = machine_folder(args.results, Path(args.dir) / args.name)  # one baseline per machine under a name
    if target.exists() and not args.force:
        raise BadInput(f"baseline {target} exists (this machine's baseline {args.name}); pass --force to replace it")
    with FolderLock(target, "dnnbench baseline"):
        count = save_baseline(args.results, target)
    print(f"baseline {args.name} for machine {target.name}: {target} ({count} records from {len(args.results)} run(s))")
    print(f"gate against it: dnnbench gate --baseline {args.name} --current RESULTS")
    return 0


# --- profile -------------------------------------------------------------------------------------------------


def cmd_profile(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dnnbench.definitions.plan import expand_from_options
    from dnnbench.measurement.profile import TOOLS, profile_case

    if args.tool not in TOOLS:
        raise BadInput(f"unknown tool {args.tool!r}; choose from: {', '.join(TOOLS)}")
    plan = [p for p in expand_from_options(args) if p.case.id == args.case]
    if not plan:
        raise BadInput(
            f"unknown case id {args.case!r} in matrix {args.matrix}; "
            f"`dnnbench list --matrix {args.matrix}` prints the ids"
        )
    if plan[0].skip_reason:
        raise BadInput(f"case {args.case} is skipped here: {plan[0].skip_reason}")
    out = Path(args.out) if args.out else Path(args.results or "results") / "profiles" / args.case
    files = profile_case(plan[0].case, args.matrix, args.tool, out, args.data_dir, args.native)
    for message in files.messages:
        print(f"warning: {message}")
    for name, window in files.windows.items():
        print(f"py-spy window ({name}): {window['says']}")
    if files.top_ops:
        print(files.top_ops)
    if files.record and files.record.phase_fractions:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in files.record.phase_fractions.items())
        print(f"phase split (whole run): {shares}")
    for name, path in files.written.items():
        print(f"{name:16} {path}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Combine the folders of a matrix's shards into one run folder."""
    from pathlib import Path

    from dnnbench.results.lock import FolderLock
    from dnnbench.results.merge import merge

    out = Path(args.out)
    if out.exists() and any(p.name != ".lock" for p in out.iterdir()):
        raise BadInput(f"{out} exists and is not empty; choose a new --out folder")
    with FolderLock(out, "dnnbench merge"):
        records, benchmarks = merge(args.shards, out)
    print(f"merged {len(args.shards)} shards: {records} records, {benchmarks} benchmarks -> {out}")
    return 0


def _rounds_tool(p: argparse.ArgumentParser, name: str, rounds: int, rounds_help: str, kind: str, handler) -> None:
    """The options of a tool that measures a matrix's cases in alternating rounds (harness, scaling)."""
    p.add_argument("--rounds", type=int, default=rounds, help=f"{rounds_help} (default {rounds})")
    p.add_argument("--matrix", default=name, help=f"whose {kind} cases to run: {', '.join(MATRICES)} (default {name})")
    p.add_argument("-k", action="append", default=[], metavar="TEXT", help="only cases whose id contains TEXT")
    p.add_argument("--out", default=None, help=f"output folder (default results/{name}-<time>)")
    p.set_defaults(handler=handler)


def cmd_scaling(args: argparse.Namespace) -> int:
    """Data-parallel efficiency from interleaved rounds (N ranks against one process), with an interval."""
    from dnnbench.tools.scaling import main_scaling

    return main_scaling(args.rounds, args.out, args.matrix, args.k)


def cmd_harness(args: argparse.Namespace) -> int:
    """The engine's throughput against a bare hand-written loop's, per front-end."""
    from dnnbench.tools.harness import main_harness

    return main_harness(args.rounds, args.out, args.matrix, args.k)


def cmd_tune(args: argparse.Namespace) -> int:
    """Learning-rate sweeps, the choice on validation, the default and the best on fresh seeds."""
    from dnnbench.definitions.devices import resolve_device
    from dnnbench.tools.tune import main_tune

    args.device = resolve_device(args.device)
    return main_tune(args)


# --- metrics ---------------------------------------------------------------------------------------------------


def cmd_metrics(args: argparse.Namespace) -> int:
    """The metric registry: every figure a record carries, its unit, direction and how the gate judges it."""
    from dnnbench.core import metrics

    if args.markdown:
        print(metrics.markdown_table(), end="")
        return 0
    better = {+1: "higher", -1: "lower", 0: "-"}
    width = max(len(name) for name in metrics.METRICS)
    print(f"{'METRIC':<{width}}  {'UNIT':<10} {'BETTER':<7} GATE")
    for m in metrics.METRICS.values():
        gate = f"{m.gate} (default {m.tolerance:g})" if m.gate else "-"
        print(f"{m.name:<{width}}  {m.unit or '-':<10} {better[m.direction]:<7} {gate}")
    return 0


# --- machine ---------------------------------------------------------------------------------------------------


def cmd_machine(args: argparse.Namespace) -> int:
    """This machine's fingerprint; with --baseline NAME, whether NAME holds a baseline measured on it
    (exit 0) or not (exit 1), so a CI script can choose between the baseline gate and A/B."""
    import json

    from dnnbench.core.machine import describe
    from dnnbench.definitions.devices import resolve_device
    from dnnbench.measurement.fingerprint import capture
    from dnnbench.results.baselines import resolve_baseline

    fingerprint = capture(resolve_device(args.device))
    if args.json:
        print(json.dumps(fingerprint, indent=2))
    else:
        print(f"machine {fingerprint['id']}: {describe(fingerprint)}")
    if args.baseline is None:
        return 0
    choice = resolve_baseline(args.baseline, fingerprint)
    if choice.same_machine:
        print(f"baseline {args.baseline} for this machine: {choice.path}")
        return 0
    print(
        f"baseline {args.baseline} has no run of this machine ({choice.others + 1} saved, the closest differs: "
        f"{'; '.join(choice.differences)})"
    )
    return 1


# --- the parser ------------------------------------------------------------------------------------------


def _matrix_options(p: argparse.ArgumentParser, matrix_default: str | None = None) -> None:
    for flag, spec in plan_options(matrix_default) if matrix_default else plan_options():
        p.add_argument(flag, **spec)


def cmd_completion(args: argparse.Namespace) -> int:
    """The shell's completion script for every subcommand and option, from this very parser (shtab)."""
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dnnbench")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dnnbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"dnnbench {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("list", help="print the cases a matrix expands to, with skipped combinations and why")
    _matrix_options(p)
    p.add_argument("--summary", action="store_true", help="only the one-line count")
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("workloads", help="the workloads: task, target and why, budget, whether the data is here")
    p.add_argument("--workload", action="append", default=None, help="also a plug-in (module:attr or file.py)")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(handler=cmd_workloads)

    p = sub.add_parser("run", help="run cases of a matrix without pytest (one with --case)")
    _matrix_options(p)
    p.add_argument("--case", default=None, help="a case id as `list` prints it")
    p.add_argument(
        "--results", default=None, help="run folder for the records (default results/<matrix>-<device>-<time>)"
    )
    p.add_argument("--resume", action="store_true", help="finish a run in --results: pairs it holds are kept")
    p.add_argument("--no-results", action="store_true", help="keep no records (print the figures only)")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("report", help="tables, charts, summary.md and a self-contained report.html for runs")
    p.add_argument("results", nargs="+", help="run folders (or records.jsonl files); several go side by side")
    p.add_argument(
        "--baseline",
        default=None,
        help="a run folder, benchmark JSON or saved baseline (as for gate): the gate's verdict on the first run "
        "against it heads the report",
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="report.html path (default: in the run folder; for several runs, a new report-<time> folder beside "
        "the first)",
    )
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("gate", help="compare a run with a baseline: exit 0 pass, 1 regression, 2 bad input")
    p.add_argument("--baseline", required=True, help="a run folder, benchmark JSON or saved baseline name")
    p.add_argument("--current", required=True, help="the run folder to judge")
    p.add_argument(
        "--tolerance",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="e.g. throughput_samples_per_s=0.3 (relative), final_test_accuracy=2 (points), "
        "aggregate=0.1 (repeatable; defaults from [tool.dnnbench.gate] in pyproject.toml)",
    )
    p.add_argument("--markdown", default=None, help="also write the verdict as Markdown (pull-request comment)")
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="pass although cases of the baseline are missing from the current run (by default they fail it)",
    )
    p.add_argument(
        "--assume-same-machine",
        action="store_true",
        help="judge speed even when the machine fingerprints differ or are missing (you vouch they are one machine)",
    )
    p.add_argument("--brief", action="store_true", help="print only the aggregates and the rows that are not ok")
    p.add_argument("--config", default="pyproject.toml", help="where to read [tool.dnnbench.gate]")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the verdict, every finding, as JSON")
    p.set_defaults(handler=cmd_gate)

    p = sub.add_parser("ab", help="run base and head alternately on this machine and judge the pairs: exit 0/1/2")
    p.add_argument("--base", default=None, help="git ref of the base (checked out into a worktree)")
    p.add_argument("--head", default=None, help="git ref of the head (default: the working tree as it is)")
    p.add_argument("--base-python", default=None, help="interpreter (environment) for the base")
    p.add_argument("--head-python", default=None, help="interpreter (environment) for the head")
    p.add_argument(
        "--install", default="auto", help="auto, shared or venv: a ref's own environment (auto: when its deps differ)"
    )
    for flag, spec in plan_options(REPEATED_MATRIX):
        if flag not in ("--repeats", "--seeds"):
            p.add_argument(flag, **spec)
    p.add_argument("--seeds", default="1", help="seeds per case in every round (default 1)")
    p.add_argument(
        "--rounds", type=int, default=4, help="rounds per case, an even number: base first in odd rounds (default 4)"
    )
    p.add_argument("-k", action="append", default=[], metavar="TEXT", help="only cases whose id contains TEXT")
    p.add_argument("--out", default=None, help="output folder (default results/ab-<time>)")
    p.add_argument("--judge-only", action="store_true", help="judge an existing --out folder without running")
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="pass although the head ran cases it did not record (by default they fail it)",
    )
    p.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE", help="as for gate")
    p.add_argument("--markdown", default=None, help="also write the verdict as Markdown")
    p.add_argument("--brief", action="store_true", help="print only the aggregates and the rows that are not ok")
    p.add_argument("--config", default="pyproject.toml", help="where to read [tool.dnnbench.ab]")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the verdict, every finding, as JSON")
    p.set_defaults(handler=cmd_ab)

    p = sub.add_parser("baseline", help="save one or more runs as a named baseline under results/baselines/")
    p.add_argument(
        "results",
        nargs="+",
        help="run folders; several runs (taken at different times) make the "
        "baseline's medians steadier on a noisy machine",
    )
    p.add_argument("--name", required=True, help="baseline name, e.g. ci-cpu")
    p.add_argument("--dir", default="results/baselines", help="where baselines live")
    p.add_argument("--force", action="store_true", help="replace an existing baseline")
    p.set_defaults(handler=cmd_baseline)

    p = sub.add_parser("profile", help="py-spy flame graph, torch.profiler ops and trace for one case")
    _matrix_options(p)
    p.add_argument("--case", required=True, help="a case id as `list` prints it")
    p.add_argument("--tool", default="all", help="py-spy, torch or all (default all)")
    p.add_argument("--out", default=None, help="output folder (default RESULTS/profiles/CASE)")
    p.add_argument("--results", default=None, help="run folder whose report should link the profile")
    p.add_argument("--native", action="store_true", help="py-spy: include native (C/C++) frames")
    p.set_defaults(handler=cmd_profile)

    p = sub.add_parser("merge", help="combine the result folders of a matrix's shards (--shard I/N) into one run")
    p.add_argument("shards", nargs="+", help="the shards' run folders")
    p.add_argument("--out", required=True, help="the merged run folder (new)")
    p.set_defaults(handler=cmd_merge)

    _rounds_tool(
        sub.add_parser("harness", help="the engine against a bare loop, per front-end (CLI, pytest), alternately"),
        "harness",
        6,
        "rounds per case, for the interval",
        "single-process",
        cmd_harness,
    )
    _rounds_tool(
        sub.add_parser("scaling", help="data-parallel efficiency from interleaved rounds, with an interval"),
        "scaling",
        4,
        "rounds per case, an even number",
        "data-parallel",
        cmd_scaling,
    )

    p = sub.add_parser("tune", help="learning-rate sweeps per optimizer, chosen on validation, re-run on fresh seeds")
    p.add_argument("--size", default="quick", help="quick (7 rates over 4 decades) or full (DeepOBS's 36 rates)")
    p.add_argument("--search", default="grid", help="grid, or random (log-uniform, --trials rates)")
    p.add_argument("--trials", type=int, default=7, help="rates per optimizer for --search random (default 7)")
    p.add_argument("--seeds", type=int, default=2, help="fresh seeds for the default and the chosen rate (default 2)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--save", default="latest", help="name of the saved rates: results/tuned/NAME.json")
    p.add_argument(
        "--matrix",
        default=None,
        help=f"tune the workloads this matrix trains: {', '.join(MATRICES)} (default: the study's problems)",
    )
    p.add_argument(
        "-k", action="append", default=[], metavar="TEXT", help="with --matrix: cases whose id contains TEXT"
    )
    p.add_argument("--out", default=None, help="run folder (default results/tune-<size>-<time>)")
    p.set_defaults(handler=cmd_tune)

    history_cli.add_parsers(sub, _matrix_options)

    p = sub.add_parser("metrics", help="the metrics a record carries, with unit, direction and gate")
    p.add_argument("--markdown", action="store_true", help="the table of docs/metrics.md")
    p.set_defaults(handler=cmd_metrics)

    p = sub.add_parser("machine", help="this machine's fingerprint (what a speed figure is comparable across)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (a CUDA run's fingerprint names its GPUs)")
    p.add_argument("--json", action="store_true", help="the whole fingerprint as JSON")
    p.add_argument(
        "--baseline", default=None, help="exit 0 when this saved baseline holds a run of this machine, else 1"
    )
    p.set_defaults(handler=cmd_machine)

    p = sub.add_parser("completion", help="print the shell completion script: dnnbench completion bash > FILE")
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell")
    p.set_defaults(handler=cmd_completion)

    p = sub.add_parser("fetch-data", help="find, stage or download the data sets")
    p.add_argument(
        "--workload", action="append", default=None, help="fashion-mnist (default), mnist, or a plug-in (repeatable)"
    )
    p.add_argument("--data-dir", default=None)
    p.set_defaults(handler=cmd_fetch_data)
    for action in sub._choices_actions:  # `dnnbench COMMAND --help` opens with what the command does
        sub.choices[action.dest].description = action.help
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        if getattr(args, "workload", None) is None and args.command == "fetch-data":
            args.workload = ["fashion-mnist"]
        return args.handler(args)
    except BadInput as exc:
        print(f"dnnbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dnnbench: interrupted", file=sys.stderr)
        return 130
    except Terminated:  # a run ended by SIGTERM (results.run.Run): what finished is in its journal
        print("dnnbench: terminated (SIGTERM); the finished records are kept", file=sys.stderr)
        return 143
    except BrokenPipeError:  # output piped into head & co.: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a path that cannot be read or written (a file where a folder must be, no permission)
        where = f": {exc.filename}" if exc.filename else ""
        print(f"dnnbench: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
