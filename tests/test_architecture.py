"""The package's shape: layers import only downwards, the views do not load torch, and the metric
registry is the one place a metric is described."""

import ast
import subprocess
import sys

import pytest

from dnnbench.core import metrics as registry
from dnnbench.core.metrics import METRICS, Metric
from dnnbench.core.record import Record
from dnnbench.definitions.cases import Case
from dnnbench.results import gate
from dnnbench.results.analysis import case_summary
from dnnbench.results.frames import load
from dnnbench.results.journal import Journal
from dnnbench.views.report.tables import all_cases
from tests.conftest import ROOT, record

PACKAGE = ROOT / "dnnbench"
# Bottom to top, as docs/extending.md's code map draws them; a module may import its own layer and below.
LAYERS = {
    "core": 0,
    "definitions": 1,
    "measurement": 2,
    "results": 3,
    "views": 4,
    "frontends": 5,
    "tools": 5,
    "__main__": 5,
}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else 0


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dnnbench"):
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dnnbench"):
                    yield alias.name, node.lineno


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(p for p in rel.parts if p != "__init__")
        yield name, path


def test_every_module_belongs_to_a_layer():
    assert {n.split(".")[1] for n, _ in _modules() if "." in n} <= set(LAYERS)


def test_no_module_imports_from_a_layer_above_it():
    upward = []
    for name, path in _modules():
        for target, line in _imports(path):
            if _layer(target) > _layer(name):
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert upward == []


def test_views_only_render_what_results_judged():
    # A view imports no torch, nothing from measurement, and no verdict code of its own: the gate's and
    # the claims' verdicts are computed in results/ (views may call them and render what they return).
    offending = []
    for name, path in _modules():
        if not name.startswith("dnnbench.views"):
            continue
        for target, line in _imports(path):
            if target.startswith(("dnnbench.measurement", "dnnbench.frontends", "dnnbench.tools")):
                offending.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offending += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names if n.split(".")[0] == "torch"
            ]
    assert offending == []


def test_the_report_and_the_gate_do_not_load_torch():
    code = (
        "import sys; import dnnbench.views.report, dnnbench.views.gate, dnnbench.results.gate, "
        "dnnbench.results.claims, dnnbench.results.analysis; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr


def test_the_metric_table_in_the_docs_is_the_registry():
    text = (ROOT / "docs" / "metrics.md").read_text()
    assert registry.markdown_table() in text, "regenerate with: python -m dnnbench metrics --markdown"


def test_a_record_refuses_a_metric_the_registry_does_not_know():
    with pytest.raises(ValueError, match="not in the metric registry"):
        Record(case_id="x", seed=1, case={}, status="ok", env={}, metrics={"speediness": 1.0})


def test_a_new_metric_is_one_registry_entry(tmp_path, monkeypatch):
    # Register a metric the gate judges as relative growth; a record carries it; the gate and the
    # report's table pick it up with no other change.
    monkeypatch.setitem(
        METRICS,
        "energy_joules",
        Metric("energy_joules", "energy (J)", "J", -1, "number", "energy per run", gate="relative", tolerance=0.1),
    )
    case = Case()
    for name, joules in (("a", 100.0), ("b", 150.0)):
        journal = Journal(tmp_path / name)
        for seed in (1, 2, 3):
            journal.append(record(case, seed, ["optimizers"], energy_joules=joules + seed))
    result = gate.run_gate(gate.load_side(tmp_path / "a"), gate.load_side(tmp_path / "b"), gate.GateConfig())
    (finding,) = [f for f in result.findings if f.metric == "energy_joules"]
    assert finding.verdict == "regressed" and finding.change_pct == pytest.approx(50 / 102 * 100)
    table = all_cases(case_summary(load(tmp_path / "b"))).display
    assert table.loc[case.id, "energy (J)"] == "152 (151–153)"


def test_no_import_circle():
    # Every dnnbench import counts, a lazy one inside a function too: a circle hidden in a function is
    # still two modules that cannot be understood one without the other.
    names = {name for name, _ in _modules()}

    def targets(path):  # `from package import module` imports the module, not the package
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dnnbench"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    yield sub if sub in names else node.module
            elif isinstance(node, ast.Import):
                yield from (a.name for a in node.names if a.name.startswith("dnnbench"))

    graph = {name: {t for t in targets(path) if t in names and t != name} for name, path in _modules()}
    circles = []

    def visit(node, stack, on_stack, done):
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt in on_stack:
                circles.append(" → ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in done:
                visit(nxt, stack, on_stack, done)
        on_stack.discard(stack.pop())
        done.add(node)

    done: set[str] = set()
    for node in sorted(graph):
        if node not in done:
            visit(node, [], set(), done)
    assert circles == []


def test_nothing_points_outside_the_repository():
    # The study note is described in docs/note.md in the project's own words; no file (nor the report
    # the code writes) sends a reader to a path outside the repository.
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True).stdout.split()
    texts = [p for p in tracked if p.endswith((".py", ".md", ".toml", ".yml", ".sh")) or p == "Makefile"]
    marks = ("../" + "shared", "SEED_" + "EXPERIMENTS")  # spelled in parts, so this file does not match itself
    outside = [p for p in texts if any(mark in (ROOT / p).read_text() for mark in marks)]
    assert outside == []


def test_calibration_measures_exactly_the_registered_probes():
    # The probe registry (core/probes.py) is what frames, the gate and baselines read: a probe measured
    # but not registered would never be used, one registered but not measured would be always missing.
    from dnnbench.core.probes import PROBES
    from dnnbench.measurement.calibration import calibrate

    measured, _ = calibrate("cpu", seconds=0.01)
    assert set(measured) == set(PROBES)
    assert set(gate.NORMALIZATIONS.values()) - {None} == set(PROBES)


def test_a_metric_with_an_unknown_gate_kind_is_refused_naming_the_kinds():
    with pytest.raises(ValueError, match="unknown gate kind 'percent'; choose from: speed, points, relative"):
        Metric("x", "x", "", 1, "number", "x", gate="percent", tolerance=0.1)


def test_a_new_loader_kind_is_one_registry_entry(monkeypatch):
    # A loader kind of the user's (here: the tensor loader's batches, each sample order reversed) is one
    # LoaderKind: cases accept it, the plan applies its skip rule, the shard model its rate, the engine
    # trains through it; nothing else names it.
    from dnnbench.definitions import loaders, shards
    from dnnbench.definitions.plan import skip_reason
    from dnnbench.measurement import engine

    built = []

    def build(splits, options):
        built.append(options.batch_size)
        return [(x.flip(0), y.flip(0)) for x, y in loaders.LOADER_KINDS["tensor"].build(splits, options)]

    def no_workers(case, workload):
        return "the reversed loader has no workers" if case.num_workers else None

    kind = loaders.LoaderKind("reversed", "the tensor loader, reversed", 0.5, no_workers, build)
    monkeypatch.setitem(loaders.LOADER_KINDS, "reversed", kind)
    case = Case(workload="synthetic", loader="reversed", train_samples=400, eval_samples=200, epochs=1, eval_every=200)
    assert skip_reason(case.replace(num_workers=2)) == "the reversed loader has no workers"
    assert skip_reason(case) is None
    assert shards.expected_cost(case) > shards.expected_cost(case.replace(loader="tensor"))
    result = engine.run(case, seed=1)
    assert result.status == "ok", result.reason
    assert built == [case.batch_size] and result.metrics["samples"] == 400


def test_no_module_branches_on_a_workload_name():
    # A workload is behaviour (definitions/workloads/): the engine, the planner, the views and the claims
    # ask it and never compare a workload's name. Matrices may *name* the workloads they list (a keyword,
    # not a comparison).
    from dnnbench.definitions.workloads import WORKLOADS

    found = []
    for name, path in _modules():
        if name.startswith("dnnbench.definitions.workloads"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                names = [s.value for s in sides if isinstance(s, ast.Constant) and s.value in WORKLOADS]
                found += [f"{path.relative_to(ROOT)}:{node.lineno} compares with {n!r}" for n in names]
    assert found == []
