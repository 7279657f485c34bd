"""The history page: one self-contained HTML file (no network, no library) with a trend chart per case
for the chosen machine and metric, its change points marked, and each point linked to its commit and
run. The data travels as one JSON block; a small script draws the charts as SVG when the page opens,
so a history of 1,000 runs x 50 cases renders in the browser, not in Python (docs/history.md).
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from dnnbench.core.metrics import METRICS
from dnnbench.results.history.changes import describe

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
header { display: flex; gap: 1.5em; align-items: baseline; flex-wrap: wrap; }
select { font-size: 1em; }
#charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1em; margin-top: 1em; }
figure.chart { margin: 0; border: 1px solid #ddd; padding: .5em; }
figure.chart figcaption { font-size: .85em; font-family: monospace; word-break: break-all; }
svg .point { fill: #1f77b4; cursor: pointer; }
svg .point:hover { fill: #ff7f0e; }
svg .line { fill: none; stroke: #1f77b4; stroke-width: 1; }
svg .change.regression { stroke: #c62828; }
svg .change.improvement { stroke: #2e7d32; }
svg .change { stroke-width: 2; stroke-dasharray: 4 3; }
svg .axis { font-size: 10px; fill: #555; }
#details { position: sticky; top: 0; background: #fffbe6; border: 1px solid #e6d98c; padding: .5em; min-height: 1.2em; }
table.changes { border-collapse: collapse; font-size: .85em; margin-top: 1em; }
table.changes td, table.changes th { border: 1px solid #ccc; padding: 2px 6px; }
tr.regression td { background: #fdecea; }
"""

SCRIPT = """
const data = JSON.parse(document.getElementById('history-data').textContent);
const machineSel = document.getElementById('machine'), metricSel = document.getElementById('metric');
const NS = 'http://www.w3.org/2000/svg';
function el(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function fmt(v) { return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(4); }
function show(point, s) {
  const c = data.commits[point[0]], run = data.runs[point[3]];
  const d = document.getElementById('details');
  d.innerHTML = '';
  d.append(s.case + ' · ' + data.metrics[s.metric].label + ': ' + fmt(point[1]) +
           ' (normalized: ' + fmt(point[2]) + ') · commit ');
  const a = document.createElement('a');
  a.textContent = c.sha.slice(0, 12); a.className = 'commit-link';
  a.href = data.commit_url ? data.commit_url + c.sha : '#'; d.append(a);
  d.append(' (' + c.time + ') · run ');
  const r = document.createElement('a');
  r.textContent = run.name; r.className = 'run-link'; r.href = run.href || '#'; d.append(r);
}
function draw() {
  const machine = machineSel.value, metric = metricSel.value;
  const box = document.getElementById('charts');
  box.innerHTML = '';
  const W = 420, H = 170, L = 52, R = 8, T = 8, B = 22;
  for (const s of data.series) {
    if (s.machine !== machine || s.metric !== metric) continue;
    const fig = document.createElement('figure'); fig.className = 'chart';
    fig.dataset.case = s.case;
    const cap = document.createElement('figcaption'); cap.textContent = s.case; fig.appendChild(cap);
    const svg = el('svg', {width: W, height: H, viewBox: `0 0 ${W} ${H}`}, fig);
    const ys = s.points.map(p => p[1]);
    let lo = Math.min(...ys), hi = Math.max(...ys);
    if (hi === lo) { hi += Math.abs(hi) * 0.01 + 1e-9; lo -= Math.abs(lo) * 0.01 + 1e-9; }
    const n = s.points.length;
    const x = i => L + (n === 1 ? (W - L - R) / 2 : i * (W - L - R) / (n - 1));
    const y = v => T + (hi - v) * (H - T - B) / (hi - lo);
    el('text', {x: 2, y: T + 8, class: 'axis'}, svg).textContent = fmt(hi);
    el('text', {x: 2, y: H - B, class: 'axis'}, svg).textContent = fmt(lo);
    el('text', {x: L, y: H - 6, class: 'axis'}, svg).textContent = data.commits[s.points[0][0]].sha.slice(0, 7);
    el('text', {x: W - R - 40, y: H - 6, class: 'axis'}, svg).textContent =
      data.commits[s.points[n - 1][0]].sha.slice(0, 7);
    el('polyline', {class: 'line', points: s.points.map((p, i) => `${x(i)},${y(p[1])}`).join(' ')}, svg);
    for (const ch of s.changes) {
      const xc = (x(ch.index - 1) + x(ch.index)) / 2;
      const line = el('line', {x1: xc, x2: xc, y1: T, y2: H - B,
                               class: 'change ' + (ch.regression ? 'regression' : 'improvement')}, svg);
      el('title', {}, line).textContent = ch.text;
    }
    s.points.forEach((p, i) => {
      const c = el('circle', {cx: x(i), cy: y(p[1]), r: n > 200 ? 1.5 : 3, class: 'point'}, svg);
      c.dataset.commit = data.commits[p[0]].sha;
      el('title', {}, c).textContent = data.commits[p[0]].sha.slice(0, 12) + ': ' + fmt(p[1]);
      c.addEventListener('click', () => show(p, s));
    });
    box.appendChild(fig);
  }
  document.getElementById('shown').textContent = box.children.length + ' chart(s)';
}
machineSel.addEventListener('change', draw);
metricSel.addEventListener('change', draw);
draw();
"""


def _run_href(source: object, page: Path) -> str | None:
    """A link from the page to the run's report (or folder) when the run folder is on this disk."""
    if not isinstance(source, str) or not source:
        return None
    folder = Path(source)
    target = folder / "report.html" if (folder / "report.html").exists() else folder
    if not folder.exists():
        return None
    try:
        return Path(os.path.relpath(target, page.parent)).as_posix()
    except ValueError:  # another drive
        return target.as_uri()


def page_data(
    series: pd.DataFrame, changes: pd.DataFrame, runs: pd.DataFrame, page: Path, commit_url: str | None
) -> dict[str, Any]:
    """The JSON the page draws from: commits and runs once, then per series its points as
    [commit index, value, normalized value, run index] and its change points."""
    commit_codes, commit_shas = pd.factorize(series["commit"], sort=False)
    first_time = series.groupby("commit", sort=False)["commit_time"].first()
    commits = [{"sha": sha, "time": str(first_time[sha])} for sha in commit_shas]
    names = runs["run"].tolist()
    sources = runs["source"].tolist() if "source" in runs else [None] * len(names)
    run_list = [{"name": n, "href": _run_href(src, page)} for n, src in zip(names, sources, strict=True)]
    run_codes = series["run"].map({n: i for i, n in enumerate(names)}).fillna(0).astype(int).to_numpy()
    values, normalized = series["value"].to_numpy(dtype=float), series["normalized"].to_numpy(dtype=float)
    by_series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for c in changes[changes["kind"] == "level"].itertuples(index=False):
        kind = "regression" if c.regression else "change"
        text = f"{kind} {describe(c)} at {c.commit[:12]} (after {c.after[:12]}), confidence {c.confidence:.3f}"
        by_series.setdefault((c.machine, c.case, c.metric), []).append(
            {"index": int(c.points_before), "regression": bool(c.regression), "text": text}
        )
    out_series = []
    for (machine, case, metric), rows in series.groupby(["machine", "case", "metric"], sort=False).indices.items():
        points = [
            [int(ci), float(v), float(nv), int(ri)]
            for ci, v, nv, ri in zip(commit_codes[rows], values[rows], normalized[rows], run_codes[rows], strict=True)
        ]
        out_series.append(
            {
                "machine": machine,
                "case": case,
                "metric": metric,
                "points": points,
                "changes": by_series.get((machine, case, metric), []),
            }
        )
    metrics = sorted(series["metric"].unique()) if len(series) else []
    return {
        "commits": commits,
        "runs": run_list,
        "series": out_series,
        "metrics": {m: {"label": METRICS[m].label, "direction": METRICS[m].direction} for m in metrics},
        "machines": sorted(series["machine"].unique()) if len(series) else [],
        "commit_url": commit_url,
    }


def _changes_table(changes: pd.DataFrame, commit_url: str | None) -> str:
    if changes.empty:
        return "<p>No change points found.</p>"
    rows = []
    for c in changes.sort_values(["regression", "commit_time"], ascending=[False, False]).itertuples(index=False):
        label = METRICS[c.metric].label if c.metric in METRICS else c.metric
        confidence = "—" if pd.isna(c.confidence) else f"{c.confidence:.3f}"
        verdict = ("regression" if c.still else "regression, fixed since") if c.regression else ""
        sha = html.escape(c.commit[:12])
        link = f'<a href="{html.escape(commit_url + c.commit)}">{sha}</a>' if commit_url else sha
        rows.append(
            f'<tr class="{"regression" if c.regression else "change"}"><td>{html.escape(c.machine)}</td>'
            f"<td>{html.escape(c.case)}</td><td>{html.escape(label)}</td><td>{html.escape(c.after[:12])}..{link}"
            f"</td><td>{html.escape(describe(c))}</td><td>{confidence}</td><td>{verdict}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("machine", "case", "metric", "commits", "change", "confidence", ""))
    head = f"<tr>{head}</tr>"
    return f'<table class="changes">{head}{"".join(rows)}</table>'


def render(
    series: pd.DataFrame,
    changes: pd.DataFrame,
    runs: pd.DataFrame,
    page: Path,
    title: str,
    commit_url: str | None = None,
    calibrated: bool = False,
) -> Path:
    """Write the page to `page`; return its path."""
    data = page_data(series, changes, runs, page, commit_url)
    machines = data["machines"]
    metric_names = list(data["metrics"])
    default = "throughput_samples_per_s" if "throughput_samples_per_s" in metric_names else (metric_names or [""])[0]
    machine_options = "".join(f'<option value="{html.escape(m)}">{html.escape(m)}</option>' for m in machines)
    metric_options = "".join(
        f'<option value="{m}"{" selected" if m == default else ""}>{html.escape(METRICS[m].label)}</option>'
        for m in metric_names
    )
    calibrated_text = ", speeds first divided by each run's calibration probe" if calibrated else ""
    hidden = "" if len(machines) > 1 else ' style="display:none"'
    # "<" as \\u003c: no "</script" or "<!--" in the data can end or bend the script element
    payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    text = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<header>
<label{hidden}>machine <select id="machine">{machine_options}</select></label>
<label>metric <select id="metric">{metric_options}</select></label>
<span id="shown"></span>
<span>{len(data["commits"])} commits, {len(data["runs"])} runs, {len(machines)} machine(s)</span>
</header>
<p>One point per commit (the median of its runs). Change points are found on each series normalized to
its own median{calibrated_text}; dashed lines mark them (red: a regression). Click a point for its commit and run.</p>
<div id="details"></div>
<div id="charts"></div>
<h2>Change points</h2>
{_changes_table(changes, commit_url)}
<script type="application/json" id="history-data">{payload}</script>
<script>{SCRIPT}</script>
</body></html>
"""
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text, encoding="utf-8")
    return page
