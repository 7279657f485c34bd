"""`dnnbench history` and `dnnbench export`: the front-end of the history across commits and of the
formats CI trackers read (the work is in results/history, tools/history_range and views/).

    dnnbench history --add results/smoke-cpu-…          # a run joins results/history
    dnnbench history --range HEAD~5..HEAD -k adam       # measure each commit of a range (resumable)
    dnnbench history                                    # change points, and the page (index.html)
    dnnbench history regressions [--since v1.2]         # exit 1 when a regression is new since then
    dnnbench export results/run --format bencher        # a run as BMF / github-action-benchmark JSON
    dnnbench export results/run --format tensorboard    # its curves and figures as TensorBoard event files
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dnnbench.core.errors import BadInput
from dnnbench.frontends.options import REPEATED_MATRIX

if TYPE_CHECKING:  # pandas loads when a command needs it, not for every `dnnbench …`
    import pandas as pd

    from dnnbench.results.history.store import History

DEFAULT_DIR = "results/history"


def _commit_url(given: str | None, repo: str) -> str | None:
    """Where a commit's page is: --commit-url, else derived from a GitHub origin; None when unknown."""
    if given:
        return given
    from dnnbench.results.history.store import git_output

    origin = git_output(repo, "remote", "get-url", "origin") or ""
    match = re.match(r"(?:git@github\.com:|https://github\.com/)([^/]+/[^/]+?)(?:\.git)?$", origin)
    return f"https://github.com/{match.group(1)}/commit/" if match else None


def _metrics(names: list[str]) -> list[str]:
    from dnnbench.results.history.store import METRIC_NAMES, metric_exists

    return [metric_exists(m) for m in names] if names else list(METRIC_NAMES)


def _analysed(folder: Path, args: argparse.Namespace) -> tuple[History, pd.DataFrame, pd.DataFrame]:
    from dnnbench.results.history import changes, store

    if args.what == "regressions" and not (folder / store.RUNS).is_file():
        raise BadInput(f"no history at {folder} (make one: dnnbench history --dir {folder} --add RUN_FOLDER)")
    history = store.read(folder)
    if args.machine and args.machine not in history.machines:
        raise BadInput(
            f"unknown machine {args.machine!r} in {folder}; choose from: {', '.join(history.machines) or 'none yet'}"
        )
    import pandas as pd

    series = changes.series(history, _metrics(args.metric), calibrate=args.calibrate)
    states = changes.state_changes(history)
    if args.machine:
        series = series[series["machine"] == args.machine]
        states = states[states["machine"] == args.machine]
    found = changes.changes(series)
    return history, series, pd.concat([found, states], ignore_index=True) if len(states) else found


def cmd_history(args: argparse.Namespace) -> int:
    """--add, --rebuild and --range change the history; without them, find the change points and write the page."""
    from dnnbench.results.history import store

    folder = Path(args.dir)
    if args.what == "regressions":
        return _regressions(folder, args)
    when, ancestors = store.commit_time_in(Path(args.repo)), store.ancestors_in(Path(args.repo))
    if args.rebuild:
        entries = [store.entry_of(f, when, ancestors) for f in store.run_folders(args.rebuild)]
        _warn_unknown_commits(entries, args.repo)
        store.rebuild(folder, entries)
        print(f"history: rebuilt {folder} from {len(entries)} run(s)")
    if args.add:
        entries = [store.entry_of(f, when, ancestors) for f in store.run_folders(args.add)]  # read all, then write
        _warn_unknown_commits(entries, args.repo)
        with store.Writer(folder) as writer:
            writer.check(*entries)
            for entry in entries:
                added = writer.add(entry)
                print(f"history: {'added' if added else 'holds already'} {entry.line['source']}")
    if args.range:
        from dnnbench.tools.history_range import RangePlan, measure_range  # loads torch: only for a range

        seeds = args.seeds or (",".join(str(i) for i in range(1, args.repeats + 1)) if args.repeats else None)
        plan = RangePlan(args.matrix, args.device, seeds, args.dnnbench_set, args.k, args.data_dir, args.install)
        runs_dir = Path(args.runs or f"{folder}-runs")
        outcome = measure_range(Path(args.repo), args.range, folder, runs_dir, plan)
        failed = [c for c, o in outcome.items() if o.startswith("failed")]
        print(f"history: {len(outcome)} commit(s): {len(outcome) - len(failed)} in the history, {len(failed)} failed")
    if args.rebuild or args.add or args.range:
        return 0
    return _page(folder, args)


def _warn_unknown_commits(entries: list, repo: str) -> None:
    for entry in entries:
        if entry.line.get("commit_time_from") != "git":
            print(
                f"history: warning: git in {repo} does not know commit {entry.line['commit'][:12]} "
                f"({entry.line['source']}): it is placed by its run's start time (pass --repo the repository)",
                file=sys.stderr,
            )


def _page(folder: Path, args: argparse.Namespace) -> int:
    from dnnbench.views.history_page import render

    started = time.perf_counter()
    history, series, found = _analysed(folder, args)
    runs = history.runs
    if runs.empty:
        print(f"history: {folder} holds no runs yet (add one: dnnbench history --add RUN_FOLDER)")
        return 0
    page = Path(args.page) if args.page else folder / "index.html"
    title = f"dnnbench history: {history.matrix} matrix on {history.device}"
    render(series, found, runs, page, title, _commit_url(args.commit_url, args.repo), args.calibrate)
    failed = set(runs.loc[runs["status"] != "ok", "commit"]) - set(runs.loc[runs["status"] == "ok", "commit"])
    print(
        f"history: {len(runs)} run(s), {runs['commit'].nunique()} commit(s), {runs['machine'].nunique()} machine(s)"
        + (f", {len(failed)} commit(s) that failed to measure" if len(failed) else "")
        + f"; {len(found)} change point(s), {int(found['regression'].sum())} regression(s) "
        f"({time.perf_counter() - started:.1f} s)"
    )
    print(f"page: {page}")
    return 0


def _since(args: argparse.Namespace) -> tuple[Callable[[str, str], bool], str]:
    """Whether a regression's first commit is new, and since what, in words: new is not in the history of
    the last tag (or --since REF) as git tells it; for a commit git does not know, later than the ref."""
    from dnnbench.results.history.store import git_output

    ref = args.since or git_output(args.repo, "describe", "--tags", "--abbrev=0")
    if ref is None:
        return (lambda commit, when: True), "no tag here (pass --since REF): every regression counts as new"
    sha = git_output(args.repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
    when = git_output(args.repo, "show", "-s", "--format=%cI", f"{ref}^{{commit}}")
    if sha is None or when is None:
        raise BadInput(f"--since {ref!r}: git in {args.repo} knows no such commit, tag or branch")

    def is_new(commit: str, commit_time: str) -> bool:
        known = subprocess.run(["git", "-C", args.repo, "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
        if known.returncode != 0:
            return commit_time > when
        ancestor = subprocess.run(["git", "-C", args.repo, "merge-base", "--is-ancestor", commit, sha])
        return ancestor.returncode != 0

    return is_new, f"since {ref} ({sha[:12]}, {when})"


def _regressions(folder: Path, args: argparse.Namespace) -> int:
    import pandas as pd

    from dnnbench.results.history.changes import describe, new_since

    _, _, found = _analysed(folder, args)
    is_new, described = _since(args)
    regressions = found[found["regression"]]
    new = new_since(found, is_new)
    fixed = int((~regressions["still"].astype(bool)).sum())
    print(
        f"history regressions: {len(regressions)} found, {len(new)} new ({described})"
        + (f"; {fixed} fixed since (the newest level is back)" if fixed else "")
    )
    if regressions.empty:
        return 0
    new_keys = set(zip(new["machine"], new["case"], new["metric"], new["commit"], strict=True))
    rows = []
    for r in regressions.sort_values("commit_time").itertuples(index=False):
        state = "NEW" if (r.machine, r.case, r.metric, r.commit) in new_keys else ("fixed" if not r.still else "")
        rows.append(
            {
                "": state,
                "commits": f"{r.after[:12]}..{r.commit[:12]}",
                "case": r.case,
                "metric": r.metric,
                "change": describe(r),
                "confidence": "—" if pd.isna(r.confidence) else f"{r.confidence:.3f}",
                "machine": r.machine,
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    return 1 if len(new) else 0


def _export_tensorboard(args: argparse.Namespace) -> int:
    """A folder of event files rather than JSON: --output names the folder (default RUN/tensorboard)."""
    from dnnbench.results.journal import journal_path, records_of
    from dnnbench.views import tensorboard

    tensorboard.require()  # the install line before any work
    folder = Path(args.output) if args.output else journal_path(args.run).parent / "tensorboard"
    _, records = records_of(args.run)
    exported = tensorboard.write(records, folder)
    for note in exported.notes:
        print(f"export: {note}")
    print(
        f"export: tensorboard -> {folder} ({len(exported.runs)} case x seed runs); view: tensorboard --logdir {folder}"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dnnbench.core.errors import unknown_choice
    from dnnbench.views.export import FORMATS

    if args.format not in (*FORMATS, "tensorboard"):
        raise unknown_choice("export format", args.format, (*FORMATS, "tensorboard"))
    if args.format == "tensorboard":
        return _export_tensorboard(args)
    from dnnbench.results.analysis import case_summary
    from dnnbench.results.frames import load
    from dnnbench.results.journal import journal_path, read_run_meta
    from dnnbench.views.export import EXPORTED, export

    frame = load([args.run])
    summary = case_summary(frame, list(EXPORTED))
    commit = (read_run_meta(journal_path(args.run).parent).get("env") or {}).get("git_commit")
    text = json.dumps(export(summary, args.format, commit), indent=2) + "\n"
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"export: {args.format} -> {args.output}")
    else:
        print(text, end="")
    return 0


def add_parsers(sub: argparse._SubParsersAction, matrix_options) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("history", help="a history across commits: add runs, measure a range, change points, page")
    p.add_argument("what", nargs="?", choices=["regressions"], help="regressions: list them (exit 1 when one is new)")
    p.add_argument("--dir", default=DEFAULT_DIR, help=f"the history folder (default {DEFAULT_DIR})")
    p.add_argument("--add", nargs="+", default=None, metavar="RUN", help="run folders (or folders of them) to add")
    p.add_argument("--rebuild", nargs="+", default=None, metavar="RUN", help="make the history anew from run folders")
    p.add_argument("--range", default=None, metavar="A..B", help="measure each commit of A..B (git worktrees)")
    p.add_argument("--repo", default=".", help="the git repository commits are read from (default: here)")
    p.add_argument("--runs", default=None, help="where --range keeps its run folders (default DIR-runs)")
    p.add_argument("--install", default="auto", help="--range: auto, shared or venv (as for `ab`)")
    p.add_argument("-k", action="append", default=[], metavar="TEXT", help="--range: cases whose id contains TEXT")
    p.add_argument("--metric", action="append", default=[], help="only this metric (repeatable)")
    p.add_argument("--machine", default=None, help="only this machine's series (a fingerprint id)")
    p.add_argument("--calibrate", action="store_true", help="divide speeds by each run's calibration probe first")
    p.add_argument("--since", default=None, metavar="REF", help="regressions: new since this ref (default: last tag)")
    p.add_argument("--page", default=None, help="where to write the page (default DIR/index.html)")
    p.add_argument("--commit-url", default=None, help="prefix of a commit's web page (default: from a GitHub origin)")
    matrix_options(p, REPEATED_MATRIX)  # --range measures every commit: the small matrix unless told
    p.set_defaults(handler=cmd_history)

    p = sub.add_parser(
        "export", help="a run's figures as github-action-benchmark or Bencher (BMF) JSON, or TensorBoard event files"
    )
    p.add_argument("run", help="a run folder")
    p.add_argument(
        "--format",
        required=True,
        help="customBiggerIsBetter, customSmallerIsBetter or bencher (JSON); tensorboard (a folder of event files, "
        "needs pip install 'dnnbench[tensorboard]')",
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        help="write to this file (default: stdout); for tensorboard, this folder (default: RUN/tensorboard)",
    )
    p.set_defaults(handler=cmd_export)
