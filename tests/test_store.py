import json

import pytest

from dnnbench.engine import run
from dnnbench.errors import BadInput
from dnnbench.records import METRICS
from dnnbench.store import Journal, load, read_records
from tests.conftest import tiny


@pytest.fixture(scope="module")
def two_records():
    return [run(tiny(), seed=1), run(tiny(optimizer="sgd"), seed=1)]


def test_journal_appends_and_loads_one_row_per_case_and_seed(tmp_path, two_records):
    journal = Journal(tmp_path / "run")
    for r in two_records:
        journal.append(r)
    assert len((tmp_path / "run" / "records.jsonl").read_text().splitlines()) == 2
    frame = load(tmp_path / "run")
    assert len(frame) == 2
    assert set(METRICS) <= set(frame.columns)
    assert {
        "case_id",
        "seed",
        "status",
        "optimizer",
        "loader",
        "phase_forward",
        "env_torch",
        "resolved_batch_size",
        "target_reached",
    } <= set(frame.columns)
    assert list(frame["optimizer"]) == ["adam", "sgd"]
    assert frame["throughput_samples_per_s"].dtype.kind == "f"
    assert frame.loc[0, "run"] == "run"


def test_several_runs_load_together(tmp_path, two_records):
    for name in ("a", "b"):
        Journal(tmp_path / name).append(two_records[0])
    frame = load([tmp_path / "a", tmp_path / "b"])
    assert sorted(frame["run"]) == ["a", "b"]


def test_non_finite_values_become_null(tmp_path, two_records):
    record = json.loads(json.dumps(two_records[0]))
    record["curves"]["loss"]["loss"][0] = float("nan")
    record["metrics"]["final_train_loss"] = float("inf")
    journal = Journal(tmp_path)
    journal.append(record)
    text = journal.path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = read_records(journal.path)[0]
    assert back["curves"]["loss"]["loss"][0] is None and back["metrics"]["final_train_loss"] is None


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path, two_records, capsys):
    journal = Journal(tmp_path)
    journal.append(two_records[0])
    with open(journal.path, "a") as f:
        f.write('{"schema_version": 1, "case_id": "half-writ')  # killed mid-write
    assert len(journal.records()) == 1
    assert "torn last line" in capsys.readouterr().err


def test_corrupt_middle_line_and_missing_run_are_bad_input(tmp_path, two_records):
    journal = Journal(tmp_path)
    journal.append(two_records[0])
    with open(journal.path, "a") as f:
        f.write("garbage\n")
    journal.append(two_records[1])
    with pytest.raises(BadInput, match=r"records\.jsonl:2 is not a dnnbench record"):
        journal.records()
    with pytest.raises(BadInput, match="no dnnbench results at"):
        load(tmp_path / "nowhere")


def test_unknown_schema_version_is_refused(tmp_path, two_records):
    record = dict(two_records[0], schema_version=99)
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(record) + "\n" + json.dumps(two_records[1]) + "\n")
    with pytest.raises(BadInput, match="schema version 99"):
        read_records(path)
