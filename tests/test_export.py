"""The formats CI tools read: github-action-benchmark's custom JSON and Bencher's BMF, checked against
their published schemas; `gate --json` and `ab --json`; the gate's verdict in a report made with a baseline."""

import json

import jsonschema
import pytest

from dnnbench.views.report import build_report
from tests.conftest import run_cli
from tests.test_gate import make_run

# Bencher Metric Format, as published at https://bencher.dev/docs/reference/bencher-metric-format
BMF_SCHEMA = {
    "$id": "https://bencher.dev/bmf.json",
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "patternProperties": {
        ".+": {
            "type": "object",
            "patternProperties": {
                ".+": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "number"},
                        "lower_value": {"type": "number"},
                        "upper_value": {"type": "number"},
                    },
                    "required": ["value"],
                }
            },
        }
    },
}
# github-action-benchmark's BenchmarkResult (src/extract.ts: name, value, unit required; range, extra
# optional strings), which its customBiggerIsBetter / customSmallerIsBetter tools read as a JSON list.
GAB_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "value": {"type": "number"},
            "unit": {"type": "string"},
            "range": {"type": "string"},
            "extra": {"type": "string"},
        },
        "required": ["name", "value", "unit"],
        "additionalProperties": False,
    },
}
# The examples each project publishes validate against the schema as written here.
PUBLISHED_EXAMPLES = [
    (
        BMF_SCHEMA,
        {
            "benchmark_name": {
                "latency": {"value": 88.0, "lower_value": 87.42, "upper_value": 88.88},
                "throughput": {"value": 5.55, "lower_value": 3.14, "upper_value": 6.30},
            },
            "my_binary": {"file-size": {"value": 42.0}},
        },
    ),
    (
        GAB_SCHEMA,
        [
            {"name": "My Custom Smaller Is Better Benchmark - CPU Load", "unit": "Percent", "value": 50},
            {
                "name": "My Custom Smaller Is Better Benchmark - Memory Used",
                "unit": "Megabytes",
                "value": 100,
                "range": "3",
                "extra": "Value for Tooltip: 25\nOptional Num #2: 100\nAnything Else!",
            },
        ],
    ),
]


@pytest.mark.parametrize(("schema", "example"), PUBLISHED_EXAMPLES)
def test_the_schemas_accept_the_projects_own_examples(schema, example):
    jsonschema.validate(example, schema)


@pytest.fixture
def run(tmp_path):
    folder = make_run(tmp_path / "run", throughput=1000.0, spread=(0.9, 1.0, 1.2))
    meta = json.loads((folder / "run.json").read_text())
    meta["env"]["git_commit"] = "c" * 40
    (folder / "run.json").write_text(json.dumps(meta))
    return folder


def export(run, fmt):
    out = run_cli("export", str(run), "--format", fmt)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_bencher_format_carries_every_figure_with_its_seed_range(run):
    bmf = export(run, "bencher")
    jsonschema.validate(bmf, BMF_SCHEMA)
    assert len(bmf) == 6  # one benchmark per case
    case = next(iter(bmf.values()))
    assert set(case) == {"throughput", "time-to-target", "accuracy", "peak-memory"}
    # make_run: 1000 x (0.9, 1.0, 1.2) samples/s → median 1000, range 900..1200
    assert case["throughput"] == pytest.approx({"value": 1000.0, "lower_value": 900.0, "upper_value": 1200.0})
    assert case["accuracy"]["value"] == pytest.approx(0.86)


def test_github_action_benchmark_files_split_by_direction(run):
    bigger, smaller = export(run, "customBiggerIsBetter"), export(run, "customSmallerIsBetter")
    jsonschema.validate(bigger, GAB_SCHEMA)
    jsonschema.validate(smaller, GAB_SCHEMA)
    assert {e["unit"] for e in bigger} == {"samples/s", "fraction"}  # throughput, accuracy
    assert {e["unit"] for e in smaller} == {"s", "bytes"}  # time to target, memory
    throughput = next(e for e in bigger if e["unit"] == "samples/s")
    assert throughput["value"] == pytest.approx(1000.0) and throughput["range"] == "900 to 1200"
    assert "commit " + "c" * 40 in throughput["extra"]


def test_a_target_missed_is_left_out_not_written_as_a_number(tmp_path):
    folder = make_run(tmp_path / "run")
    lines = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    for line in lines:
        line["metrics"]["time_to_target_s"] = None  # no seed reached the target
    (folder / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    smaller = export(folder, "customSmallerIsBetter")
    assert smaller and all(e["unit"] == "bytes" for e in smaller)


def test_an_unknown_format_is_one_line_exit_2(run):
    out = run_cli("export", str(run), "--format", "csv")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "dnnbench: error: unknown export format 'csv'; choose from: "
        "customBiggerIsBetter, customSmallerIsBetter, bencher, tensorboard"
    )


def test_gate_json_holds_the_verdict_and_every_finding(tmp_path):
    baseline = make_run(tmp_path / "base")
    current = make_run(tmp_path / "cur", slow={0: 0.3})
    out = run_cli("gate", "--baseline", str(baseline), "--current", str(current), "--json", str(tmp_path / "g.json"))
    assert out.returncode == 1, out.stdout + out.stderr
    verdict = json.loads((tmp_path / "g.json").read_text())
    assert verdict["verdict"] == "fail" and verdict["exit_code"] == 1 and verdict["regressions"] >= 1
    regressed = [f for f in verdict["findings"] if f["verdict"] == "regressed" and f["scope"] == "case"]
    assert {f["metric"] for f in regressed} == {"throughput_samples_per_s", "time_to_target_s"}
    assert regressed[0]["change_pct"] == pytest.approx(-70.0, abs=1)
    cases = {f["case_id"] for f in verdict["findings"] if f["scope"] == "case"}
    assert len(cases) == 6  # every case's findings, not only the notable ones
    assert verdict["headline"] in out.stdout


def test_a_report_made_with_a_baseline_shows_the_gates_verdict(tmp_path):
    baseline = make_run(tmp_path / "base")
    current = make_run(tmp_path / "cur", slow={0: 0.3})
    html = build_report([current], baseline=baseline).html.read_text()
    assert 'id="gate"' in html and "gate: FAIL: 2 regression(s) in 6 common cases" in html
    calm = make_run(tmp_path / "calm")
    assert "gate: PASS" in build_report([calm], baseline=baseline).html.read_text()


def test_ab_json_holds_the_paired_verdict(tmp_path):
    from tests.test_ab import make_ab

    folder = make_ab(tmp_path / "ab", head_factor=0.8)  # every case 20% slower, in every round
    out = run_cli("ab", "--judge-only", "--out", str(folder), "--json", str(tmp_path / "ab.json"))
    assert out.returncode == 1, out.stdout + out.stderr
    verdict = json.loads((tmp_path / "ab.json").read_text())
    assert verdict["verdict"] == "fail" and verdict["baseline"] == "base" and verdict["current"] == "head"
    aggregate = [f for f in verdict["findings"] if f["scope"] == "aggregate"]
    assert aggregate and aggregate[0]["verdict"] == "regressed"
    assert aggregate[0]["normalized_change_pct"] == pytest.approx(-20.0, abs=0.5)


def test_ab_json_when_the_head_recorded_nothing_says_so(tmp_path):
    from tests.test_ab import make_ab

    folder = make_ab(tmp_path / "ab")
    for journal in (folder / "head").glob("r*/records.jsonl"):
        journal.unlink()  # a head that crashed on every case: ab.json names what it ran and lost
    unrecorded = [{"side": "head", "case": "c1", "round": 1, "why": "crashed: RuntimeError: boom"}]
    (folder / "ab.json").write_text(json.dumps({"unrecorded": unrecorded, "wall_time_s": 1.0}))
    out = run_cli("ab", "--judge-only", "--out", str(folder), "--json", str(tmp_path / "ab.json"))
    assert out.returncode == 1 and "the head recorded none" in out.stdout
    verdict = json.loads((tmp_path / "ab.json").read_text())
    assert verdict["verdict"] == "fail" and verdict["not_recorded"] == ["c1 (round 1): crashed: RuntimeError: boom"]


def test_an_output_path_that_cannot_be_written_is_one_line_exit_2(run, tmp_path):
    (tmp_path / "a-file").write_text("")
    for args in (
        ("export", str(run), "--format", "bencher", "-o", str(tmp_path / "a-file" / "x.json")),
        ("gate", "--baseline", str(run), "--current", str(run), "--markdown", str(tmp_path / "a-file" / "g.md")),
    ):
        out = run_cli(*args)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith("dnnbench: error: ") and out.stderr.count("\n") == 1
        assert "a-file" in out.stderr


def test_report_takes_a_saved_baselines_folder_as_gate_does(run, tmp_path):
    saved = run_cli("baseline", str(run), "--name", "b1", "--dir", str(tmp_path / "baselines"))
    assert saved.returncode == 0, saved.stderr
    gate = run_cli("gate", "--baseline", str(tmp_path / "baselines" / "b1"), "--current", str(run))
    report = run_cli(
        "report", str(run), "--baseline", str(tmp_path / "baselines" / "b1"), "-o", str(tmp_path / "r.html")
    )
    assert gate.returncode == 0 and report.returncode == 0, report.stderr
    assert gate.stdout.strip().splitlines()[-1] in (tmp_path / "r.html").read_text()
