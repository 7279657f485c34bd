"""Gate: did a run regress against a baseline? Built for CI on shared, noisy machines.

    config.py      tolerances and settings ([tool.dnnbench.gate], --tolerance)
    sides.py       the two runs, loaded with their run.json
    statistics.py  machine-speed adjustment, bootstrap intervals, the 'worse' scale
    judge.py       per-case and aggregate verdicts → GateResult

Rendering the verdict (terminal table, headline, Markdown) is a view: dnnbench/views/gate.py.

The method and its measured error rates: docs/gate.md.
"""

from dnnbench.results.baselines import resolve_baseline
from dnnbench.results.gate.config import NORMALIZATIONS, GateConfig, load_config
from dnnbench.results.gate.judge import Finding, GateResult, judge_aggregate, judge_case, run_gate
from dnnbench.results.gate.sides import Side, environment_warnings, load_side

__all__ = [
    "NORMALIZATIONS",
    "Finding",
    "GateConfig",
    "GateResult",
    "Side",
    "environment_warnings",
    "judge_aggregate",
    "judge_case",
    "load_config",
    "load_side",
    "resolve_baseline",
    "run_gate",
]
