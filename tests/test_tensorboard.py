"""`dnnbench export --format tensorboard`: TensorBoard reads back every curve point and every final figure of
each case × seed, at its step and in that case × seed's own run; a record that did not finish keeps what it
has; without the tensorboard package the command says which extra to install, in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import SCALARS, TENSORS, EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from dnnbench.core.record import Record
from dnnbench.frontends.cli import main
from dnnbench.measurement.engine import run
from dnnbench.measurement.recording import unmeasured
from dnnbench.results.journal import Journal, read_records, write_run_meta
from tests.conftest import tiny

ADAM, SGD = tiny(), tiny(optimizer="sgd")
DIVERGED = tiny(optimizer="sgd", lr=1e30)  # the loss is NaN from step 2: status diverged, a curve of one point
SKIPPED = tiny(optimizer="adamw")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A real run: two cases (and a second seed of one), so a curve written to the wrong case or seed shows;
    one diverged case and one skipped. Four real trainings on 500 Fashion-MNIST samples."""
    folder = tmp_path_factory.mktemp("tensorboard") / "run"
    journal = Journal(folder)
    for record in (run(ADAM, seed=1), run(ADAM, seed=2), run(SGD, seed=1), run(DIVERGED, seed=1)):
        journal.append(record)
    journal.append(unmeasured(SKIPPED, 1, "not on this machine"))
    write_run_meta(folder, {"env": {"device": "cpu"}})
    return folder


@pytest.fixture(scope="module")
def exported(run_folder) -> tuple[Path, list[str]]:
    """`dnnbench export RUN --format tensorboard` (default output folder): the folder and stdout's lines."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["export", str(run_folder), "--format", "tensorboard"]) == 0
    return run_folder / "tensorboard", out.getvalue().splitlines()


def records(run_folder: Path) -> list[Record]:
    return read_records(run_folder / "records.jsonl")


def expected(record: Record) -> dict[str, list[tuple[int, float]]]:
    """What the docs (views/tensorboard.py, docs/tracking.md) promise for one record: tag → (step, value)s."""
    out: dict[str, list[tuple[int, float]]] = {}
    loss = record.curves["loss"]
    for step, value in zip(loss["step"], loss["loss"], strict=True):
        if value is not None:
            out.setdefault("train/loss", []).append((step, value))
    for point in record.curves["val"]:
        for key, value in point.items():
            if key != "step" and value is not None:
                tag = "eval/" + (record.target.metric if key == "val_metric" else key)
                out.setdefault(tag, []).append((point["step"], value))
    figures = {k: v for k, v in record.metrics.items() if v is not None}
    figures |= {f"phase_{k}": v for k, v in (record.phase_fractions or {}).items()}
    figures["target_reached"] = float(record.target.reached)
    for name, value in figures.items():
        out[f"final/{name}"] = [(record.metrics["steps"], value)]
    return out


def read(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={SCALARS: 0, TENSORS: 0})  # 0: keep every point
    acc.Reload()
    return acc


def test_every_curve_point_and_figure_is_in_its_own_runs_events(run_folder, exported):
    folder, _ = exported
    finished = [r for r in records(run_folder) if r.status == "ok"]
    assert len(finished) == 3
    for record in finished:
        acc = read(folder / record.case_id / f"seed{record.seed}")
        want = expected(record)
        assert set(acc.Tags()["scalars"]) == set(want)
        for tag, points in want.items():
            got = [(e.step, e.value) for e in acc.Scalars(tag)]
            assert [s for s, _ in got] == [s for s, _ in points], tag
            # TensorBoard keeps float32: 7 significant digits
            assert [v for _, v in got] == pytest.approx([v for _, v in points], rel=1e-6), tag


def test_the_steps_are_the_training_steps(run_folder, exported):
    # tiny(): 500 samples in batches of 100 → 5 steps; an evaluation every 250 samples → after steps 3 and 5
    folder, _ = exported
    record = next(r for r in records(run_folder) if r.case_id == ADAM.id and r.seed == 1)
    acc = read(folder / ADAM.id / "seed1")
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4, 5]
    assert [e.step for e in acc.Scalars("eval/val_accuracy")] == [3, 5]
    assert [e.value for e in acc.Scalars("eval/samples")] == [300, 500]
    (throughput,) = acc.Scalars("final/throughput_samples_per_s")
    assert throughput.step == 5
    assert throughput.value == pytest.approx(record.metrics["throughput_samples_per_s"], rel=1e-6)


def test_seeds_and_cases_are_runs_side_by_side_with_their_hparams(run_folder, exported):
    folder, lines = exported
    runs = sorted(str(p.parent.relative_to(folder)) for p in folder.rglob("events.out.tfevents.*"))
    assert runs == sorted([f"{ADAM.id}/seed1", f"{ADAM.id}/seed2", f"{SGD.id}/seed1", f"{DIVERGED.id}/seed1"])
    first = [e.value for e in read(folder / ADAM.id / "seed1").Scalars("train/loss")]
    assert first != [e.value for e in read(folder / ADAM.id / "seed2").Scalars("train/loss")]
    for case in (ADAM, SGD):
        content = read(folder / case.id / "seed1").PluginTagToContent("hparams")[
            hparams_metadata.SESSION_START_INFO_TAG
        ]
        info = hparams_metadata.parse_session_start_info_plugin_data(content)
        assert info.group_name == case.id  # the seeds of a case form one session group
        assert info.hparams["optimizer"].string_value == case.optimizer
        assert info.hparams["train_samples"].number_value == 500
        assert info.hparams["lr"].string_value == str(case.lr)  # None here, a number elsewhere: text throughout
    assert lines[-1] == f"export: tensorboard -> {folder} (4 case x seed runs); view: tensorboard --logdir {folder}"


def test_a_diverged_case_keeps_what_it_recorded_and_a_skipped_one_is_named(run_folder, exported):
    folder, lines = exported
    diverged = next(r for r in records(run_folder) if r.status == "diverged")
    acc = read(folder / DIVERGED.id / "seed1")
    # its loss was finite at step 1 only (NaN from step 2, stored as null)
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [
        (1, pytest.approx(diverged.curves["loss"]["loss"][0]))
    ]
    assert diverged.metrics["final_test_accuracy"] is None and "final/final_test_accuracy" not in acc.Tags()["scalars"]
    assert acc.Scalars("final/throughput_samples_per_s")[0].value == pytest.approx(
        diverged.metrics["throughput_samples_per_s"], rel=1e-6
    )
    assert f"export: {DIVERGED.id} seed 1: diverged ({diverged.reason}); exported what it recorded" in lines
    assert f"export: {SKIPPED.id} seed 1: skipped (not on this machine); nothing measured, skipped" in lines
    assert not (folder / SKIPPED.id).exists()


def test_a_second_export_into_the_same_folder_is_one_line_exit_2(run_folder, exported, capsys):
    folder, _ = exported
    before = sorted(folder.rglob("*"))
    assert main(["export", str(run_folder), "--format", "tensorboard", "--output", str(folder)]) == 2
    assert capsys.readouterr().err == (
        f"dnnbench: error: {folder} already holds TensorBoard event files (a second export would show every point "
        "twice); remove it or choose another --output\n"
    )
    assert sorted(folder.rglob("*")) == before


def test_without_tensorboard_it_names_the_extra_in_one_line_exit_2(run_folder, tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import tensorboard…` now raises ImportError
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    out = tmp_path / "tb"
    assert main(["export", str(run_folder), "--format", "tensorboard", "--output", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "dnnbench: error: the tensorboard export format needs the optional tensorboard extra, which is not "
        "installed: pip install 'dnnbench[tensorboard]'\n"
    )
    assert captured.out == "" and not out.exists()


def test_the_format_help_lists_tensorboard(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--help"])
    assert exit_.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "customBiggerIsBetter, customSmallerIsBetter or bencher (JSON); tensorboard" in help_text
