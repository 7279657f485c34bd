"""Report: runs → tables (CSV), charts (PNG), summary.md and one self-contained report.html.

    build_report(["results/quick-cpu-…"], baseline="results/baselines/ci-cpu") → paths written

Reads records through store and analysis only; knows nothing of torch or of how cases ran.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import pandas as pd

from dnnbench.results.analysis import case_summary
from dnnbench.results.claims import evaluate_claims
from dnnbench.results.frames import load, load_curves, named_runs
from dnnbench.results.gate import GateConfig, load_side, run_gate
from dnnbench.results.journal import journal_path, read_run_meta, write_atomically
from dnnbench.views import gate as gate_view
from dnnbench.views.report import charts as ch
from dnnbench.views.report import tuning
from dnnbench.views.report.html import Chart, markdown, page, verdict_class
from dnnbench.views.report.tables import build_tables


@dataclass
class ReportFiles:
    html: Path
    markdown: Path
    tables: list[Path]
    charts: list[Path]


CHARTS = [
    # (name, title, caption)
    (
        "race",
        "Optimizer race: loss per step",
        "The note's race on y = x³ + 0.1·noise (same batches for every optimizer; y limited to 0–0.2 as in the "
        "note) and the classification optimizer suite. Line = mean over seeds, band = min–max.",
    ),
    (
        "validation",
        "Validation metric against training time",
        "Evaluation time is excluded from the x axis; the dashed line is the workload's target. One line per seed.",
    ),
    ("throughput", "Throughput against batch size", "Median over seeds with the min–max band; log axes."),
    (
        "loaders",
        "DataLoader settings heatmap",
        "Median throughput per num_workers × pin_memory, one panel per loader kind and device.",
    ),
    (
        "regularization",
        "Regularization: accuracy and generalization gap",
        "Final test accuracy and train − test accuracy gap per regularization.",
    ),
    (
        "gradients",
        "Do gradients vanish toward the input?",
        "The first layer's weight-gradient norm over the last hidden layer's (median over the evaluations), per "
        "activation and optimizer; each dot a seed. Below the dashed line the gradient shrinks on its way down.",
    ),
    (
        "time_to_target",
        "Time to target per optimizer",
        "Training time until the validation metric first reached the target; dots are seeds.",
    ),
    (
        "sensitivity",
        "Learning-rate sensitivity",
        "Each optimizer's best validation score against its learning rate in the tuning sweep; circles mark defaults.",
    ),
    (
        "profiles",
        "Performance profiles at default and tuned learning rates",
        "For each optimizer, the share of problems where its time to target is within τ × the best (AlgoPerf).",
    ),
    (
        "phases",
        "Phase split per case",
        "Share of training-step time waiting for data, copying to the device, in forward, backward and the "
        "optimizer step.",
    ),
]


def _figure(name: str, frame: pd.DataFrame, summary: pd.DataFrame, loss: pd.DataFrame, val: pd.DataFrame):
    targets = frame.groupby("workload")["target_value"].first().to_dict() if "target_value" in frame else {}
    return {
        "sensitivity": lambda: tuning.sensitivity(frame),
        "profiles": lambda: tuning.profiles(frame)[0],
        "race": lambda: ch.race(loss),
        "validation": lambda: ch.validation_vs_time(val, targets),
        "throughput": lambda: ch.throughput_vs_batch(frame),
        "loaders": lambda: ch.loader_heatmaps(summary),
        "regularization": lambda: ch.regularization(frame),
        "time_to_target": lambda: ch.time_to_target(frame),
        "gradients": lambda: ch.gradients(frame),
        "phases": lambda: ch.phase_split(frame),
    }[name]()


def highlights(summary: pd.DataFrame) -> list[str]:
    """The four questions at a glance: fastest, soonest to target, best generalization, data wait."""
    out = []
    counts = summary["status"].value_counts()
    out.append(f"{len(summary)} cases: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".")
    ok = summary[summary["status"] == "ok"]
    real = ok[ok["target_value"].notna()]  # workloads with something to learn (random labels have no target)
    for workload, rows in real[real["throughput_samples_per_s"].notna()].groupby("workload"):
        best = rows.loc[rows["throughput_samples_per_s"].idxmax()]
        out.append(f"Fastest on {workload}: {best.case_id} at {best.throughput_samples_per_s:,.0f} samples/s.")
    for workload, rows in real[real["target_value"].notna()].groupby("workload"):
        # medians count a seed that missed as never reaching it: a case that made it on one seed of
        # three is not the soonest (analysis.censored)
        finite = pd.to_numeric(rows["time_to_target_s"], errors="coerce").map(math.isfinite)
        reached, missed = rows[finite], rows[~finite]
        target = rows["target_value"].iloc[0]
        if reached.empty:
            out.append(f"No {workload} case reached the target ({target:g}) on most seeds within its budget.")
            continue
        best = reached.loc[reached["time_to_target_s"].idxmin()]
        out.append(
            f"Soonest to the {workload} target ({target:g}): {best.case_id} in "
            f"{best.time_to_target_s:.3g} s of training ({best.epochs_to_target:.2f} epochs, median over seeds); "
            f"{len(missed)} case(s) did not reach it on most of their seeds within their budget."
        )
    acc = real[real["final_test_accuracy"].notna()]
    for workload, rows in acc.groupby("workload"):
        best = rows.loc[rows["final_test_accuracy"].idxmax()]
        line = f"Best {workload} test accuracy: {best.case_id} at {best.final_test_accuracy:.4f}"
        gaps = rows["generalization_gap"].dropna()
        if len(gaps):
            tight = rows.loc[gaps.abs().idxmin()]
            line += f"; smallest train − test gap: {tight.case_id} ({tight.generalization_gap:+.4f})"
        out.append(line + ".")
    wait = real[real["data_wait_fraction"].notna()]
    if not wait.empty:
        worst = wait.loc[wait["data_wait_fraction"].idxmax()]
        least = wait.loc[wait["data_wait_fraction"].idxmin()]
        out.append(
            f"Data loading hurts most in {worst.case_id}: {worst.data_wait_fraction:.0%} of step time waiting "
            f"for data (least: {least.case_id}, {least.data_wait_fraction:.0%})."
        )
    problems = summary[summary["status"].isin(["diverged", "oom", "error"])]
    for row in problems.itertuples():
        out.append(f"{row.status.upper()}: {row.case_id}: {row.reason}")
    return out


def profiles_section(sources: list[str | os.PathLike], report_folder: Path) -> tuple[str, str, str] | None:
    """Links to the profiles (`dnnbench profile --results RUN`) found in the run folders, with each
    profile's top operators; None when there are none."""
    blocks = []
    for source in sources:
        run_folder = journal_path(source).parent
        for meta_path in sorted(run_folder.glob("profiles/*/profile.json")):
            meta = json.loads(meta_path.read_text())
            folder = meta_path.parent
            links = " · ".join(
                f'<a href="{escape(os.path.relpath(folder / name, report_folder))}">{escape(label)}</a>'
                for label, name in meta.get("files", {}).items()
            )
            block = f"<h3>{escape(meta['case_id'])}</h3><p>{links or 'no files'}</p>"
            for name, window in (meta.get("py_spy_windows") or {}).items():
                block += f"<p>py-spy window ({escape(name)}): {escape(window.get('says', ''))}</p>"
            for message in meta.get("messages", []):
                block += f"<p><em>{escape(message)}</em></p>"
            ops = folder / "ops.csv"
            if ops.exists():
                top = pd.read_csv(ops).head(8)
                block += top.to_html(index=False, border=0).replace('<table class="dataframe">', "<table>", 1)
            blocks.append(block)
    if not blocks:
        return None
    return ("profiles", "Profiles", "".join(blocks))


def claims_html(claims) -> str:
    """The note's claims as a table: per part its verdict, the figure with its interval over seeds, the rule
    in one line, and the cases read (or what run would settle it)."""
    body = []
    for c in claims:
        span = len(c.parts)
        for i, p in enumerate(c.parts):
            head = (
                f'<td rowspan="{span}">{c.number}</td><td rowspan="{span}">{escape(c.text)}<br>'
                f'<b class="{verdict_class(c.verdict)}">{escape(c.verdict)}</b></td>'
                if i == 0
                else ""
            )
            cases = (
                f'<td rowspan="{span}"><small>{"<br>".join(escape(x) for x in c.cases)}</small></td>' if i == 0 else ""
            )
            body.append(
                f"<tr>{head}<td>{escape(p.name)}</td>"
                f'<td class="{verdict_class(p.verdict)}">{escape(p.verdict)}</td>'
                f"<td>{escape(p.figure)}</td><td>{escape(p.rule)}</td><td>{escape(p.settle)}</td>{cases}</tr>"
            )
    return (
        "<p>Each claim of the PyTorch study note this suite grew from (docs/note.md), split into its parts. A part "
        "is supported only when the 95% interval over seeds lies wholly on the claim's side of the rule's "
        "threshold, not supported when it lies wholly on the other side, and inconclusive when it straddles it "
        "(with what would settle it). With 2 or 3 seeds the interval spans the seeds: every seed must agree.</p>"
        "<table><tr><th>#</th><th>claim</th><th>part</th><th>verdict</th><th>figure [95% interval over seeds]</th>"
        f"<th>rule</th><th>to settle it</th><th>cases read</th></tr>{''.join(body)}</table>"
    )


def _run_meta(source: str | os.PathLike, name: str) -> dict:
    return {"name": name, **read_run_meta(journal_path(source).parent)}


def _of_run(curves: pd.DataFrame, run: str) -> pd.DataFrame:
    return curves[curves["run"] == run] if "run" in curves else curves


RUN_APART_CHARTS = {"throughput_vs_batch"}  # charts that draw each run on its own (the others pool them)


def build_report(
    sources: list[str | os.PathLike],
    baseline: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    gate_config: GateConfig | None = None,
) -> ReportFiles:
    """Write report.html, summary.md, tables/*.csv and charts/*.png; return their paths.

    `out` defaults to report.html in the run's folder, and for several runs to a new report-<time> folder
    beside the first (a run's own report is not overwritten); the other files go beside it. With a
    baseline, the report also shows the gate's verdict of the first run against it (`gate_config`: the
    tolerances, default the gate's own)."""
    frame = load(sources)
    summary = case_summary(frame)
    loss, val = load_curves(sources)
    first = journal_path(sources[0]).parent
    if out is not None:
        html_path = Path(out)
    elif len(sources) > 1:
        html_path = first.parent / f"report-{datetime.now():%Y%m%d-%H%M%S}" / "report.html"
    else:
        html_path = first / "report.html"
    folder = html_path.parent
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    (folder / "charts").mkdir(parents=True, exist_ok=True)

    tables = build_tables(summary, frame)
    table_files = []
    for t in tables:
        path = folder / "tables" / f"{t.name}.csv"
        write_atomically(path, t.numbers.to_csv(index=False))
        table_files.append(path)

    charts, chart_files = [], []
    for name, title, caption in CHARTS:
        fig = _figure(name, frame, summary, loss, val)
        if fig is None:
            continue
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        ch.close(fig)
        path = folder / "charts" / f"{name}.png"
        write_atomically(path, buffer.getvalue())
        chart_files.append(path)
        if frame["run"].nunique() > 1 and name not in RUN_APART_CHARTS:
            caption += f" The {frame['run'].nunique()} runs' seeds are pooled here; the tables keep each run apart."
        charts.append(Chart(name, title, caption, base64.b64encode(buffer.getvalue()).decode(), f"charts/{name}.png"))

    runs = [_run_meta(s, name) for s, name in zip(sources, [n for n, _ in named_runs(sources)], strict=True)]
    names = ", ".join(r["name"] for r in runs)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    title = f"dnnbench report: {names}"
    subtitle = f"{len(frame)} case × seed records; generated {generated}" + (
        f"; baseline {baseline}" if baseline else ""
    )
    # the highlights and the claims compare cases within one run: one set per run, never pooled
    several = len(runs) > 1
    notes = [
        f"{r['name']}: {h}" if several else h for r in runs for h in highlights(summary[summary["run"] == r["name"]])
    ]
    claims = {r["name"]: evaluate_claims(frame[frame["run"] == r["name"]], _of_run(val, r["name"])) for r in runs}
    sections, lead, gate_md = [], [], ""
    if baseline:  # the gate's own verdict, tolerances and intervals: the same as `dnnbench gate` on this pair
        verdict = run_gate(load_side(Path(baseline)), load_side(Path(sources[0])), gate_config or GateConfig())
        lead.append(("gate", f"{runs[0]['name']} against the baseline", gate_view.html_section(verdict, str(baseline))))
        gate_md = gate_view.markdown(verdict, str(baseline), runs[0]["name"])
    for i, (name, judged) in enumerate(claims.items()):
        heading = f"The note's claims: {name}" if several else "The note's claims"
        sections.append(("claims" if i == 0 else f"claims-{i + 1}", heading, claims_html(judged)))
    tuned = tuning.section_html(frame)
    if tuned:
        sections.append(("tuning", "Optimizers at default and tuned learning rates", tuned))
    found = profiles_section(sources, folder)
    if found:
        sections.append(found)
    write_atomically(html_path, page(title, subtitle, notes, tables, charts, runs, sections, lead))
    md_path = folder / "summary.md"
    key_tables = [t for t in tables if t.name != "all_cases"]
    write_atomically(md_path, markdown(title, notes, key_tables, runs, claims, gate_md))
    return ReportFiles(html_path, md_path, table_files, chart_files)
