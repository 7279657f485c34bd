import json

import pytest

from dnnbench.core.errors import BadInput
from dnnbench.core.metrics import METRICS
from dnnbench.core.record import SCHEMA_VERSION, Record
from dnnbench.measurement.engine import run
from dnnbench.results.frames import load
from dnnbench.results.journal import Journal, read_records, read_run_meta
from tests.conftest import ROOT, tiny

V1_BASELINE = ROOT / "tests" / "fixtures" / "baseline-v1"  # 40 records of the first ci-cpu baseline (schema 1)


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
        "calibration_ref",
    } <= set(frame.columns)
    assert list(frame["optimizer"]) == ["adam", "sgd"]
    assert frame["throughput_samples_per_s"].dtype.kind == "f"
    assert frame.loc[0, "run"] == "run"


def test_a_record_survives_its_json_round_trip(tmp_path, two_records):
    journal = Journal(tmp_path)
    stored = journal.append(two_records[0], benchmark={"fullname": "x", "stats": {"median": 0.1}})
    (back,) = journal.records()
    assert back == stored
    assert back.run_id == tmp_path.name and back.benchmark["fullname"] == "x"
    assert json.loads(journal.path.read_text())["schema_version"] == SCHEMA_VERSION


def test_several_runs_load_together(tmp_path, two_records):
    for name in ("a", "b"):
        Journal(tmp_path / name).append(two_records[0])
    frame = load([tmp_path / "a", tmp_path / "b"])
    assert sorted(frame["run"]) == ["a", "b"]


def test_non_finite_values_become_null(tmp_path, two_records):
    data = two_records[0].to_json()
    data["curves"]["loss"]["loss"][0] = float("nan")
    data["metrics"]["final_train_loss"] = float("inf")
    journal = Journal(tmp_path)
    journal.append(Record.from_json(data))
    text = journal.path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = read_records(journal.path)[0]
    assert back.curves["loss"]["loss"][0] is None and back.metrics["final_train_loss"] is None


def test_a_torn_last_line_is_dropped_with_a_warning(tmp_path, two_records, capsys):
    journal = Journal(tmp_path)
    journal.append(two_records[0])
    with open(journal.path, "a") as f:
        f.write('{"schema_version": 2, "case_id": "half-writ')  # killed mid-write
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
    data = dict(two_records[0].to_json(), schema_version=99)
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(data) + "\n" + json.dumps(two_records[1].to_json()) + "\n")
    with pytest.raises(BadInput, match="schema version 99"):
        read_records(path)


def test_a_version_1_baseline_loads_with_its_calibration():
    lines = (V1_BASELINE / "records.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["schema_version"] == 1  # written before the typed record; must keep loading
    records = read_records(V1_BASELINE / "records.jsonl")
    assert len(records) == len(lines)
    r = records[0]
    assert r.calibration.start["matmul_gflops"] == first["calibration"]["gflops_start"]
    assert r.calibration.end["reference_steps_per_s"] == first["calibration"]["ref_end"]
    assert r.metrics["throughput_samples_per_s"] == first["metrics"]["throughput_samples_per_s"]
    meta = read_run_meta(V1_BASELINE)
    assert meta["calibration_start"]["reference_steps_per_s"] > 0  # run.json's v1 probe names, renamed
    frame = load(V1_BASELINE)
    assert frame.loc[frame.status == "ok", "calibration_ref"].notna().all()


def test_a_torn_last_line_is_cut_before_appending_and_kept_aside(tmp_path, two_records):
    journal = Journal(tmp_path)
    journal.append(two_records[0])
    whole = journal.path.read_bytes()
    with open(journal.path, "ab") as f:
        f.write(b'{"schema_version": 2, "case_id": "half-writ')
    notice = journal.repair()
    assert "torn line" in notice and "records.jsonl.torn-" in notice
    assert journal.path.read_bytes() == whole
    (side,) = tmp_path.glob("records.jsonl.torn-*")
    assert side.read_bytes() == b'{"schema_version": 2, "case_id": "half-writ'
    journal.append(two_records[1])
    assert [r.case_id for r in read_records(journal.path)] == [r.case_id for r in two_records]
    assert journal.repair() is None  # a clean journal is left alone


def test_a_whole_record_that_lost_its_newline_is_kept(tmp_path, two_records):
    journal = Journal(tmp_path)
    journal.append(two_records[0])
    journal.path.write_bytes(journal.path.read_bytes().rstrip(b"\n"))
    assert journal.repair() is None
    journal.append(two_records[1])
    assert len(read_records(journal.path)) == 2


def test_one_writer_per_folder_and_a_dead_holder_is_taken_over(tmp_path):
    import os
    import subprocess
    import sys

    from dnnbench.results.lock import FolderBusy, FolderLock

    busy = rf"in use by process {os.getpid()} \(first, started"
    with FolderLock(tmp_path, "first"), pytest.raises(FolderBusy, match=busy):
        FolderLock(tmp_path, "second").acquire()
    FolderLock(tmp_path, "after").acquire().release()  # released: free again
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)
    (tmp_path / ".lock").write_text(json.dumps({"pid": gone, "purpose": "pytest bench", "started_at": "then"}))
    lock = FolderLock(tmp_path, "third").acquire()
    assert f"left by process {gone}" in lock.notice and "which is gone" in lock.notice
    lock.release()
