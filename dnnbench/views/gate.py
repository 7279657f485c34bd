"""The gate's verdict for people: a terminal table, a headline, and Markdown for pull requests."""

from __future__ import annotations

import dataclasses
import html
import math

import pandas as pd

from dnnbench.core.metrics import METRICS
from dnnbench.results.gate.config import GateConfig
from dnnbench.results.gate.judge import Finding, GateResult


def display_table(result: GateResult, only_notable: bool = False) -> pd.DataFrame:
    rows = []
    for f in result.findings:
        if only_notable and f.verdict in ("ok", "not gated") and f.scope == "case":
            continue  # the brief table: the aggregates, and the rows that need a look
        m = METRICS[f.metric]
        rows.append(
            {
                "case": f.case_id,
                "metric": f.metric,
                "baseline": m.format(f.baseline),
                "current": m.format(f.current),
                "Δ raw": m.format_change(f.change_pct),
                "Δ normalized": m.format_change(f.normalized_change_pct),
                f"{result.config.confidence:.0%} CI": (
                    f"[{m.format_change(f.ci_low)}, {m.format_change(f.ci_high)}]" if f.ci_low is not None else "—"
                ),
                "slope": "—" if f.slope is None else f"{f.slope:+.2f}",
                "tolerance": _tolerance(f),
                "seeds": f"{f.n_baseline} vs {f.n_current}",
                "verdict": f.verdict.upper() if f.verdict == "regressed" else f.verdict,
                "note": f.note,
            }
        )
    return pd.DataFrame(rows)


def _tolerance(f: Finding) -> str:
    """The tolerance a row was judged by, and where it came from when it is the case's own."""
    if f.tolerance is None:
        return "—"
    value = f"{f.tolerance:g} pt" if METRICS[f.metric].in_points else f"{f.tolerance:.0%}"
    return value if f.tolerance_source in ("", "default") else f"{value} ({f.tolerance_source})"


def headline(result: GateResult) -> str:
    return _verdict(result) + (
        " (accuracy and memory only: other machine, no speed verdict)" if result.machine_note else ""
    )


def _verdict(result: GateResult) -> str:
    cases = result.case_count
    if result.failed:
        parts = [f"{len(result.regressions)} regression(s)"] if result.regressions else []
        if result.config.fail_on_missing and (result.missing or result.lost):
            parts.append(f"{len(result.unrecorded)} case(s) not recorded (--allow-missing accepts them)")
        return f"gate: FAIL: {', '.join(parts)} in {cases} common cases"
    noisy = sum(f.verdict == "noise" for f in result.findings)
    return f"gate: PASS: {cases} common cases within tolerance" + (
        f" ({noisy} change(s) beyond tolerance but within noise)" if noisy else ""
    )


def tolerance_line(config: GateConfig) -> str:
    parts = [
        f"{name} {value:g} pt" if METRICS[name].in_points else f"{name} {value:.0%}"
        for name, value in config.tolerances.items()
    ] + [f"aggregate {config.aggregate:.0%}", f"group {config.group:.0%}"]
    return "tolerances: " + ", ".join(parts) + f"; confidence {config.confidence:.0%}"


def markdown(result: GateResult, baseline: str, current: str) -> str:
    lines = [
        f"## dnnbench gate: {'❌ FAIL' if result.failed else '✅ PASS'}",
        "",
        f"Baseline `{baseline}` vs current `{current}`. {headline(result)}.",
        "",
        tolerance_line(result.config) + f"; speed normalized {result.normalization}.",
        "",
    ]
    lines += [f"> ⚠️ {w}" for w in result.warnings]
    lines += [f"> 🖥️ {result.machine_note}"] if result.machine_note else []
    if result.missing:
        lines += ["", f"Cases only in the baseline ({len(result.missing)}): " + ", ".join(result.missing)]
    if result.lost:
        lines += ["", f"Run but not recorded by the head ({len(result.lost)}):", *[f"- {line}" for line in result.lost]]
    if result.new:
        lines += ["", f"Cases only in the current run ({len(result.new)}): " + ", ".join(result.new)]
    lines += ["", display_table(result).to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines)


def _plain(value: object) -> object:
    """NaN and infinities as null: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def as_json(result: GateResult, baseline: str, current: str) -> dict[str, object]:
    """The verdict for machines: every finding with its figures, and what was not compared and why."""
    findings = [{k: _plain(v) for k, v in dataclasses.asdict(f).items()} for f in result.findings]
    return {
        "verdict": "fail" if result.failed else "pass",
        "exit_code": result.exit_code,
        "headline": headline(result),
        "baseline": baseline,
        "current": current,
        "normalization": result.normalization,
        "machine_note": result.machine_note,
        "calibration_note": result.calibration_note,
        "tolerances": dict(result.config.tolerances),
        "aggregate_tolerance": result.config.aggregate,
        "group_tolerance": result.config.group,
        "confidence": result.config.confidence,
        "warnings": list(result.warnings),
        "only_in_baseline": list(result.missing),
        "not_recorded": list(result.lost),
        "only_in_current": list(result.new),
        "regressions": sum(f.verdict == "regressed" for f in result.findings),
        "findings": findings,
    }


def html_section(result: GateResult, baseline: str) -> str:
    """The verdict as a section of report.html: the headline, then the rows that need a look."""
    verdict = "fail" if result.failed else "pass"
    notes = "".join(f"<p>⚠️ {html.escape(w)}</p>" for w in result.warnings)
    if result.machine_note:
        notes += f"<p>🖥️ {html.escape(result.machine_note)}</p>"
    for label, cases in (
        ("Only in the baseline", result.missing),
        ("Run but not recorded", result.lost),
        ("Only in this run", result.new),
    ):
        if cases:
            notes += f"<p>{label} ({len(cases)}): {html.escape(', '.join(cases))}</p>"
    table = display_table(result, only_notable=True)
    rows = table.to_html(index=False, border=0, classes="gate") if not table.empty else ""
    return (
        f'<p class="gate-verdict {verdict}"><b>{html.escape(headline(result))}</b></p>'
        f"<p>Against the baseline <code>{html.escape(baseline)}</code>. {html.escape(tolerance_line(result.config))}; "
        f"speed normalized {html.escape(result.normalization)} (docs/gate.md).</p>{notes}{rows}"
    )
