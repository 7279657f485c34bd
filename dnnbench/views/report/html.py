"""The self-contained HTML page and the Markdown summary.

One file: charts are embedded as base64 PNG data URIs and the style sheet is inline, so the page
reads offline and can be attached to a CI run as a single artifact. No scripts, no fonts, no links
out of the page except to files in the same run folder (profiles).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dnnbench.results.claims import Claim
from dnnbench.views.report.tables import Table

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2330; }
header, section { padding: 0 2rem; max-width: 1400px; }
header { background: #1d2330; color: #f4f6fa; padding: 1rem 2rem; max-width: none; }
header h1 { margin: 0 0 .3rem 0; font-size: 1.5rem; }
header p { margin: .2rem 0; color: #c8cfdc; }
nav a { color: #9cc3ff; margin-right: 1rem; }
h2 { border-bottom: 2px solid #dfe3ea; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem 0; font-size: 12.5px; }
th, td { border: 1px solid #dfe3ea; padding: .25rem .5rem; text-align: right; vertical-align: top; }
th { background: #f1f3f7; }
td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; color: #5b6474; padding: .2rem 0; }
figure { margin: 1rem 0 2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #dfe3ea; }
figcaption { color: #5b6474; }
.highlights li { margin: .25rem 0; }
.status-skipped, .status-diverged, .status-oom, .status-error { color: #a33; }
.verdict-supported { color: #1a7f37; } .verdict-not-supported { color: #a33; }
.verdict-inconclusive { color: #9a6700; } .verdict-not-measurable-here { color: #666; }
#claims td { text-align: left; }
code { background: #f1f3f7; padding: 0 .25rem; border-radius: 3px; }
.scroll { overflow-x: auto; }
"""


@dataclass
class Chart:
    name: str  # file stem and element id
    title: str
    caption: str
    png_base64: str
    file: str  # relative path of the PNG next to the report


def _table_html(table: Table) -> str:
    body = table.display.to_html(escape=True, na_rep="—", border=0)
    body = body.replace('<table class="dataframe">', "<table>", 1)
    caption = f"<caption>{html.escape(table.caption)}</caption>"
    body = body.replace("<table>", f"<table>{caption}", 1)
    return (
        f'<div class="scroll" id="table-{table.name}"><h3>{html.escape(table.title)}</h3>{body}'
        f"<p><small>CSV: <code>tables/{table.name}.csv</code></small></p></div>"
    )


def _env_html(runs: list[dict[str, Any]]) -> str:
    rows = []
    for run in runs:
        env = run.get("env") or {}
        rows.append(
            {
                "run": run.get("name"),
                "command": run.get("make_command") or run.get("command") or "—",
                "matrix": run.get("matrix"),
                "device": env.get("device"),
                "gpu": env.get("gpu_name") or "—",
                "cpu": env.get("cpu_model"),
                "torch threads": env.get("torch_threads"),
                "torch": env.get("torch"),
                "torchvision": env.get("torchvision"),
                "CUDA (build)": env.get("cuda_build") or "—",
                "python": env.get("python"),
                "git commit": env.get("git_commit") or "—",
                "started": run.get("started_at"),
                "finished": run.get("finished_at") or "—",
            }
        )
    frame = pd.DataFrame(rows).set_index("run").T
    return frame.to_html(escape=True, border=0).replace('<table class="dataframe">', "<table>", 1)


def page(
    title: str,
    subtitle: str,
    highlights: list[str],
    tables: list[Table],
    charts: list[Chart],
    runs: list[dict[str, Any]],
    sections: Sequence[tuple[str, str, str]] = (),
    lead: Sequence[tuple[str, str, str]] = (),
) -> str:
    """The whole report as one HTML string. `sections` are further (id, title, trusted html) blocks,
    after the charts; `lead` blocks come first, above the summary (the gate's verdict)."""
    nav = " ".join(
        f'<a href="#{sid}">{name}</a>'
        for sid, name in [
            *[(s[0], s[1]) for s in lead],
            ("summary", "Summary"),
            ("tables", "Tables"),
            ("charts", "Charts"),
            *[(s[0], s[1]) for s in sections],
            ("environment", "Environment"),
        ]
    )
    items = "".join(f"<li>{html.escape(h)}</li>" for h in highlights) or "<li>No measured cases.</li>"
    figures = "".join(
        f'<figure id="chart-{c.name}"><h3>{html.escape(c.title)}</h3>'
        f'<img src="data:image/png;base64,{c.png_base64}" alt="{html.escape(c.title)}">'
        f"<figcaption>{html.escape(c.caption)} PNG: <code>{html.escape(c.file)}</code></figcaption></figure>"
        for c in charts
    )
    extras, first = (
        "".join(f'<section id="{sid}"><h2>{html.escape(name)}</h2>{body}</section>' for sid, name, body in blocks)
        for blocks in (sections, lead)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>{html.escape(title)}</h1>
<p>{html.escape(subtitle)}</p>
<nav>{nav}</nav>
</header>
{first}
<section id="summary"><h2>Summary</h2><ul class="highlights">{items}</ul></section>
<section id="tables"><h2>Tables</h2>{"".join(_table_html(t) for t in tables)}</section>
<section id="charts"><h2>Charts</h2>{figures or "<p>No charts: the runs hold no measured cases.</p>"}</section>
{extras}
<section id="environment"><h2>Environment</h2><div class="scroll">{_env_html(runs)}</div></section>
</body>
</html>
"""


def verdict_class(verdict: str) -> str:
    """The CSS class of a verdict: verdict-supported, verdict-not-supported, verdict-inconclusive, …"""
    return "verdict-" + verdict.replace(" ", "-")


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    """One row per part of each claim: its verdict, the figure with its interval, the rule, what would settle
    it where it could not decide, and the cases the claim read."""
    rows = []
    for c in claims:
        for i, p in enumerate(c.parts):
            rows.append(
                {
                    "#": c.number if i == 0 else "",
                    "claim": f"{c.text} ({c.verdict})" if i == 0 else "",
                    "part": p.name,
                    "verdict": p.verdict,
                    "figure [95% interval over seeds]": p.figure,
                    "rule": p.rule,
                    "to settle it": p.settle,
                    "cases read": ", ".join(c.cases) if i == 0 else "",
                }
            )
    return pd.DataFrame(rows)


def markdown(
    title: str,
    highlights: list[str],
    tables: list[Table],
    runs: list[dict[str, Any]],
    claims: Mapping[str, Sequence[Claim]] | None = None,
    gate: str = "",
) -> str:
    """summary.md: the gate's verdict against a baseline (views.gate's Markdown, its heading demoted),
    the highlights, the note's claims and key tables, for CI logs and pull-request comments."""
    parts = [f"# {title}", ""]
    if gate:
        parts += [line.replace("# ", "## ", 1) if line.startswith("# ") else line for line in gate.splitlines()]
        parts.append("")
    parts += [*[f"- {h}" for h in highlights], ""]
    for name, judged in (claims or {}).items():  # one table per run: claims compare cases within a run
        heading = f"## The note's claims: {name}" if len(claims or {}) > 1 else "## The note's claims"
        parts += [heading, "", claims_table(judged).to_markdown(index=False), ""]
    for table in tables:
        flat = table.display.reset_index()
        flat.columns = [" ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c) for c in flat.columns]
        parts += [
            f"## {table.title}",
            "",
            table.caption,
            "",
            flat.to_markdown(index=False, disable_numparse=True),
            "",
        ]
    for run in runs:
        env = run.get("env") or {}
        parts.append(
            f"_Run {run.get('name')}: `{run.get('make_command') or run.get('command')}` on {env.get('device')} "
            f"({env.get('gpu_name') or env.get('cpu_model')}), torch {env.get('torch')}, "
            f"{env.get('torch_threads')} threads, commit {env.get('git_commit')}._"
        )
    return "\n".join(parts) + "\n"
