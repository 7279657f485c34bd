"""Tables on small hand-made record sets, with values checkable by hand."""

import pandas as pd
import pytest

from dnnbench.definitions.cases import Case
from dnnbench.results.analysis import Spread, case_summary
from dnnbench.results.frames import load
from dnnbench.results.journal import Journal
from dnnbench.views.report import build_report, highlights
from dnnbench.views.report.tables import (
    all_cases,
    batch_device,
    build_tables,
    cell,
    loaders,
    optimizer_regularization,
)
from tests.conftest import record

ADAM, SGD = Case(), Case(optimizer="sgd")
BN = Case(regularization="batchnorm")


@pytest.fixture
def run(tmp_path):
    journal = Journal(tmp_path / "run")
    for r in [
        record(ADAM, 1, ["optimizers", "regularization"], final_test_accuracy=0.86, time_to_target_s=10.0),
        record(ADAM, 2, ["optimizers", "regularization"], final_test_accuracy=0.88, time_to_target_s=14.0),
        record(ADAM, 3, ["optimizers", "regularization"], final_test_accuracy=0.87, time_to_target_s=12.0),
        record(SGD, 1, ["optimizers"], final_test_accuracy=0.80),  # never reached the target
        record(SGD, 2, ["optimizers"], status="diverged", reason="training loss became nan at step 7"),
        record(BN, 1, ["regularization"], final_test_accuracy=0.89, time_to_target_s=8.0),
        record(BN, 2, ["regularization"], final_test_accuracy=0.89, time_to_target_s=20.0),
    ]:
        journal.append(r)
    return tmp_path / "run"


def test_median_and_spread_over_seeds(run):
    summary = case_summary(load(run)).set_index("case_id")
    adam = summary.loc[ADAM.id]
    assert adam.final_test_accuracy == pytest.approx(0.87)
    assert (adam.final_test_accuracy_min, adam.final_test_accuracy_max) == (pytest.approx(0.86), pytest.approx(0.88))
    assert adam.time_to_target_s == 12.0 and adam.target_reached == 3
    assert cell(adam, "final_test_accuracy") == "0.8700 (0.8600–0.8800)"
    assert cell(adam, "time_to_target_s") == "12 s (10 s–14 s)"
    sgd = summary.loc[SGD.id]
    assert sgd.status == "mixed: 1 ok, 1 diverged"
    assert sgd.reason == "training loss became nan at step 7"
    assert cell(sgd, "time_to_target_s") == "not reached"
    assert cell(sgd, "final_test_accuracy") == "0.8000 [mixed: 1 ok, 1 diverged]"


def test_a_spread_reads_back_what_the_summary_wrote(run):
    summary = case_summary(load(run)).set_index("case_id")
    adam = Spread.read(summary.loc[ADAM.id], "final_test_accuracy")
    assert (adam.median, adam.low, adam.high, adam.n) == (pytest.approx(0.87), 0.86, 0.88, 3)
    sgd = Spread.read(summary.loc[SGD.id], "final_test_accuracy")  # one seed ok, one diverged
    assert (sgd.median, sgd.n) == (pytest.approx(0.80), 1)
    older = {"final_test_accuracy": 0.9, "final_test_accuracy_min": 0.9, "final_test_accuracy_max": 0.9}
    assert Spread.read(older, "final_test_accuracy").n == 1  # a summary made before the count was kept


def test_optimizer_by_regularization_pivot(run):
    accuracy, ttt = optimizer_regularization(case_summary(load(run)))
    table = accuracy.display
    assert list(table.columns) == ["batchnorm", "none"]
    assert table.loc["adam", "none"] == "0.8700 (0.8600–0.8800)"
    assert table.loc["adam", "batchnorm"] == "0.8900"
    assert table.loc["sgd", "batchnorm"] == "—"  # not measured: shown as absent, not as zero
    assert ttt.display.loc["sgd", "none"] == "not reached"
    assert ttt.display.loc["adam", "batchnorm"] == "14 s (8 s–20 s)"
    assert "workload=fashion-mnist" in accuracy.caption
    assert set(accuracy.numbers["case_id"]) == {ADAM.id, SGD.id, BN.id}


def test_skipped_and_unreached_are_shown_not_dropped(tmp_path):
    journal = Journal(tmp_path)
    pinned = Case(loader="torchvision", pin_memory=True)
    journal.append(record(pinned, 1, ["loaders"], status="skipped", reason="pin_memory only speeds host-to-GPU"))
    journal.append(
        record(Case(loader="torchvision"), 1, ["loaders"], throughput_samples_per_s=12000.0, data_wait_fraction=0.64)
    )
    summary = case_summary(load(tmp_path))
    throughput, wait = loaders(summary)
    assert throughput.display.iloc[:, 0].tolist() == ["12,000", "skipped"]
    assert wait.display.iloc[:, 0].tolist() == ["64%", "skipped"]
    every = all_cases(summary).display
    assert every.loc[pinned.id, "note"] == "pin_memory only speeds host-to-GPU"


def test_batch_regime_by_device_orders_batches(tmp_path):
    journal = Journal(tmp_path)
    for b, t in [("full", 50000.0), (1, 700.0), (100, 30000.0), (20, 9000.0)]:
        journal.append(record(Case(batch_size=b), 1, ["batch"], throughput_samples_per_s=t))
    throughput, _ = batch_device(case_summary(load(tmp_path)))
    assert [str(i) for i in throughput.display.index] == ["1", "20", "100", "full"]
    assert throughput.display.iloc[:, 0].tolist() == ["700", "9,000", "30,000", "50,000"]


def test_highlights_answer_the_four_questions(run):
    notes = highlights(case_summary(load(run)))
    text = "\n".join(notes)
    assert notes[0] == "3 cases: 2 ok, 1 mixed: 1 ok, 1 diverged."
    assert f"Soonest to the fashion-mnist target (0.85): {ADAM.id} in 12 s" in text
    assert f"Best fashion-mnist test accuracy: {BN.id} at 0.8900" in text


def test_report_builds_from_hand_made_records(run, tmp_path):
    files = build_report([run], out=tmp_path / "out" / "report.html")
    html = files.html.read_text()
    assert "Optimizer × regularization → final test accuracy" in html
    assert "0.8700 (0.8600–0.8800)" in html
    frame = pd.read_csv(tmp_path / "out" / "tables" / "optimizer_regularization_final_test_accuracy.csv")
    assert set(frame.columns) >= {"case_id", "final_test_accuracy", "final_test_accuracy_min"}


def test_the_models_table_groups_by_workload_and_names_each_setting(tmp_path):
    from dnnbench.views.report.tables import models

    lenet = Case(workload="lenet5-fashion-mnist", loader="device")
    deep = Case(workload="deep-fashion-mnist", loader="device", optimizer="sgd")
    journal = Journal(tmp_path / "run")
    for r in [
        record(lenet, 1, ["models"], throughput_samples_per_s=2000.0, final_test_accuracy=0.81),
        record(lenet.replace(memory_format="channels_last"), 1, ["models"], throughput_samples_per_s=2400.0),
        record(deep, 1, ["models"], grad_norm_ratio=1.5),
        record(deep.replace(activation="sigmoid"), 1, ["models"], grad_norm_ratio=0.05),
        record(Case(), 1, ["optimizers"], final_test_accuracy=0.86),  # not in the suite: not in the table
    ]:
        journal.append(r)
    (table,) = models(case_summary(load(tmp_path / "run")))
    shown = table.display
    assert list(shown.index.get_level_values("workload")) == ["deep-fashion-mnist"] * 2 + ["lenet5-fashion-mnist"] * 2
    ratio = shown["gradient ratio first / last hidden"]
    assert ratio.loc[("deep-fashion-mnist", "sgd · sigmoid · contiguous")] == "0.05"
    assert shown["throughput (samples/s)"].loc[("lenet5-fashion-mnist", "adam · relu · channels_last")] == "2,400"


def test_a_target_missed_on_most_seeds_is_not_reached_in_the_median_and_the_headline(tmp_path):
    # BN reached the target on one seed of three, very fast; ADAM on every seed, slower. Left out of the
    # median, BN's misses would make it the soonest; counted as never reaching it, its median is "not reached".
    journal = Journal(tmp_path)
    for seed, t in ((1, 10.0), (2, 12.0), (3, 14.0)):
        journal.append(record(ADAM, seed, ["regularization"], final_test_accuracy=0.87, time_to_target_s=t))
    journal.append(record(BN, 1, ["regularization"], final_test_accuracy=0.88, time_to_target_s=3.0))
    for seed in (2, 3):
        journal.append(record(BN, seed, ["regularization"], final_test_accuracy=0.84))
    journal.append(record(SGD, 1, ["regularization"], final_test_accuracy=0.86, time_to_target_s=5.0))
    journal.append(record(SGD, 2, ["regularization"], final_test_accuracy=0.86, time_to_target_s=7.0))
    journal.append(record(SGD, 3, ["regularization"], final_test_accuracy=0.84))
    summary = case_summary(load(tmp_path)).set_index("case_id")
    assert summary.loc[BN.id, "time_to_target_s"] == float("inf")
    assert cell(summary.loc[BN.id], "time_to_target_s") == "not reached (1/3 seeds reached it)"
    assert summary.loc[SGD.id, "time_to_target_s"] == 7.0  # 5, 7 and a miss: the miss counts as the slowest
    assert cell(summary.loc[SGD.id], "time_to_target_s") == "7 s (2/3 seeds reached it)"
    text = "\n".join(highlights(case_summary(load(tmp_path))))
    assert f"Soonest to the fashion-mnist target (0.85): {SGD.id} in 7 s" in text
    assert "1 case(s) did not reach it on most of their seeds" in text


def test_the_scaling_table_counts_a_missed_target_as_not_reached(tmp_path):
    from dnnbench.results.analysis import scaling

    journal = Journal(tmp_path)
    one, two = Case(), Case(world_size=2)
    for seed in (1, 2, 3):
        journal.append(record(one, seed, ["scaling"], throughput_samples_per_s=1000.0, time_to_target_s=10.0))
    journal.append(record(two, 1, ["scaling"], throughput_samples_per_s=1800.0, time_to_target_s=6.0))
    for seed in (2, 3):  # two of three seeds missed on two ranks
        journal.append(record(two, seed, ["scaling"], throughput_samples_per_s=1800.0))
    table = scaling(load(tmp_path)).set_index("world_size")
    assert table.loc[1, "time_to_target_s"] == 10.0 and table.loc[2, "time_to_target_s"] == float("inf")


def _run_of_speed(folder, throughput: float, accuracy: float = 0.86):
    journal = Journal(folder)
    for case in (ADAM, SGD, BN):
        for seed in (1, 2, 3):
            speed = throughput * (1 + seed / 100)
            journal.append(
                record(
                    case,
                    seed,
                    ["optimizers", "regularization"],
                    throughput_samples_per_s=speed,
                    final_test_accuracy=accuracy,
                    time_to_target_s=10.0,
                )
            )
    return folder


def test_a_report_of_two_runs_of_different_speed_shows_both_runs_figures(tmp_path):
    fast, slow = _run_of_speed(tmp_path / "fast", 20_000.0), _run_of_speed(tmp_path / "slow", 10_000.0)
    summary = case_summary(load([fast, slow]))
    table = next(t for t in optimizer_regularization(summary) if t.name.endswith("final_test_accuracy"))
    assert set(table.display.index.get_level_values("run")) == {"fast", "slow"}
    assert "One row per run" in table.caption
    every = all_cases(summary).display
    speeds = every.reset_index().set_index(["case", "run"])["throughput (samples/s)"]
    assert speeds.loc[(ADAM.id, "fast")].startswith("20,") and speeds.loc[(ADAM.id, "slow")].startswith("10,")
    page = build_report([fast, slow], out=tmp_path / "both" / "report.html").html.read_text()
    assert "seeds are pooled here" in page  # a chart that pools the runs says so


@pytest.mark.parametrize(("throughput", "accuracy"), [(20_000.0, 0.86), (12_000.0, 0.86), (20_000.0, 0.70)])
def test_report_against_a_baseline_gives_the_gates_verdict(tmp_path, throughput, accuracy, capsys):
    from dnnbench.frontends.cli import main

    base = _run_of_speed(tmp_path / "base", 20_000.0)
    head = _run_of_speed(tmp_path / "head", throughput, accuracy)
    code = main(["gate", "--baseline", str(base), "--current", str(head)])
    headline = capsys.readouterr().out.strip().splitlines()[-1]
    assert headline.startswith("gate: " + ("PASS" if code == 0 else "FAIL"))
    files = build_report([head], baseline=base)
    page, summary = files.html.read_text(), files.markdown.read_text()
    import html

    assert html.escape(headline) in page and headline in summary  # the gate's own headline, word for word
    assert page.index('id="gate"') < page.index('id="summary"')  # the verdict comes first
    assert code == (0 if (throughput, accuracy) == (20_000.0, 0.86) else 1)


def test_every_table_of_two_runs_keeps_each_runs_rows(tmp_path):
    cases = {
        "batch": [Case(batch_size=1), Case(batch_size=100), Case(batch_size="full")],
        "loaders": [Case(loader="tensor"), Case(loader="device")],
        "models": [Case(workload="lenet5-fashion-mnist", loader="device")],
        "fastpaths": [Case(loader="device"), Case(loader="device", optimizer_impl="fused")],
        "scaling": [Case(), Case(world_size=2)],
        "optimizers": [ADAM, SGD],
    }
    for name, speed in (("fast", 2.0), ("slow", 1.0)):
        journal = Journal(tmp_path / name)
        for suite, suite_cases in cases.items():
            for case in suite_cases:
                journal.append(record(case, 1, [suite], throughput_samples_per_s=1000.0 * speed,
                                      final_test_accuracy=0.8, time_to_target_s=10.0 / speed))  # fmt: skip
    frame = load([tmp_path / "fast", tmp_path / "slow"])
    tables = build_tables(case_summary(frame), frame)
    assert {t.name.split("_")[0] for t in tables} >= {"batch", "loaders", "models", "fastpaths", "scaling"}
    for table in tables:
        flat = table.display.reset_index()
        assert "run" in flat.columns, f"{table.name} pools the runs"
        assert set(flat["run"]) == {"fast", "slow"}, table.name


def test_two_runs_of_one_folder_name_stay_two_runs_and_one_run_given_twice_is_refused(tmp_path):
    from dnnbench.core.errors import BadInput

    a, b = _run_of_speed(tmp_path / "x" / "run", 2_000.0), _run_of_speed(tmp_path / "y" / "run", 1_000.0)
    assert set(case_summary(load([a, b]))["run"]) == {str(a), str(b)}
    with pytest.raises(BadInput, match="the same run is given twice"):
        load([a, tmp_path / "x" / "run"])


def test_a_link_to_a_run_is_named_after_the_run(tmp_path):
    run = _run_of_speed(tmp_path / "quick-cpu-1", 1_000.0)
    (tmp_path / "latest").symlink_to(run.name)
    assert set(load(tmp_path / "latest")["run"]) == {"quick-cpu-1"}


def test_each_run_of_a_report_has_its_own_highlights_and_claims(tmp_path):
    fast, slow = _run_of_speed(tmp_path / "fast", 20_000.0), _run_of_speed(tmp_path / "slow", 10_000.0)
    files = build_report([fast, slow], out=tmp_path / "both" / "report.html")
    page, summary = files.html.read_text(), files.markdown.read_text()
    assert (
        summary.startswith("# dnnbench report: fast, slow\n") and "<title>dnnbench report: fast, slow</title>" in page
    )
    for name in ("fast", "slow"):
        assert f"The note&#x27;s claims: {name}" in page and f"## The note's claims: {name}" in summary
        assert f"- {name}: 3 cases: 3 ok." in summary


def test_a_report_of_two_runs_leaves_each_runs_own_report_alone(tmp_path):
    fast, slow = _run_of_speed(tmp_path / "fast", 20_000.0), _run_of_speed(tmp_path / "slow", 10_000.0)
    own = build_report([fast]).html
    before = own.read_text()
    both = build_report([fast, slow]).html
    assert both.parent.parent == tmp_path and both.parent.name.startswith("report-")
    assert own.read_text() == before
