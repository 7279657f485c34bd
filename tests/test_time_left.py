"""The time-left estimate (results.time_left) and where it shows: terminals only, logged per pair."""

import json

import pytest

from dnnbench.results.time_left import TimeLeft
from dnnbench.views.progress import duration, show_time_left, time_left_line, wants_progress
from tests.conftest import run_bench, run_cli


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_before_anything_ran_the_estimate_is_the_cost_model():
    estimate = TimeLeft.of([("a", 10.0), ("b", 20.0)], clock=Clock())
    assert estimate.left() == pytest.approx(30.0)


def test_the_model_is_scaled_by_what_ran_and_a_cases_other_seeds_take_what_its_first_took():
    clock = Clock()
    items = [(("x", 1), 10.0), (("x", 2), 10.0), (("y", 1), 5.0), (("z", 1), 20.0)]
    estimate = TimeLeft.of(items, group_of=lambda key: key[0], clock=clock)
    clock.now = 30.0  # x seed 1 took 3x its model
    estimate.finished(("x", 1))
    assert estimate.correction() == pytest.approx(3.0)
    assert estimate.left() == pytest.approx(30.0 + 3.0 * (5.0 + 20.0))
    clock.now = 40.0  # the current pair has run 10 s of it
    assert estimate.left_now() == pytest.approx(30.0 + 75.0 - 10.0)


def test_a_pair_that_crashed_counts_as_done_but_teaches_nothing():
    clock = Clock()
    items = [(("x", 1), 100.0), (("x", 2), 100.0), (("y", 1), 200.0)]
    estimate = TimeLeft.of(items, group_of=lambda key: key[0], clock=clock)
    estimate.finished(("x", 1), 0.5, typical=False)  # crashed at once: the next seed need not
    assert (estimate.done, estimate.correction()) == (1, 1.0)
    assert estimate.left() == pytest.approx(100.0 + 200.0)


def test_nothing_to_count_prints_nothing(monkeypatch):
    monkeypatch.setenv("DNNBENCH_PROGRESS", "yes")
    lines: list[str] = []
    show_time_left(TimeLeft.of([]), lines.append)
    assert lines == []
    show_time_left(TimeLeft.of([("a", 1.0)]), lines.append)
    assert lines and "[0/1 0%]" in lines[0]


def test_a_finished_run_has_nothing_left_and_says_done():
    estimate = TimeLeft.of([("a", 1.0)], clock=Clock())
    estimate.finished("a", 4.0)
    assert estimate.left() == 0.0
    assert time_left_line(estimate.done, estimate.total, 4.0, 0.0).endswith("done")


@pytest.mark.parametrize(("seconds", "text"), [(42.4, "42s"), (425, "7m05s"), (7380, "2h03m")])
def test_durations_read_as_a_person_would_say_them(seconds, text):
    assert duration(seconds) == text


def test_progress_is_for_terminals_unless_forced(monkeypatch, tmp_path):
    with open(tmp_path / "log", "w") as not_a_terminal:
        monkeypatch.delenv("DNNBENCH_PROGRESS", raising=False)
        assert not wants_progress(not_a_terminal)
        monkeypatch.setenv("DNNBENCH_PROGRESS", "1")
        assert wants_progress(not_a_terminal)


def _smallest_smoke_case() -> str:
    listing = run_cli("list", "--matrix", "smoke").stdout.splitlines()[2:]
    return next(line.split()[0] for line in listing if "skipped" not in line and "synthetic_b100" in line)


@pytest.mark.slow
def test_a_run_logs_its_estimate_per_pair_and_prints_it_only_on_a_terminal(tmp_path):
    case = _smallest_smoke_case()
    piped = run_cli("run", "--matrix", "smoke", "--case", case, "--results", str(tmp_path / "a"),
                    env={"DNNBENCH_PROGRESS": ""})  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert "elapsed" not in piped.stdout  # a CI log: one line per pair
    (entry,) = [json.loads(line) for line in (tmp_path / "a" / "time_left.jsonl").read_text().splitlines()]
    assert (entry["case_id"], entry["done"], entry["total"], entry["left_s"]) == (case, 1, 1, 0.0)
    assert entry["elapsed_s"] > 0
    forced = run_cli("run", "--matrix", "smoke", "--case", case, "--results", str(tmp_path / "b"),
                     env={"DNNBENCH_PROGRESS": "1"})  # fmt: skip
    assert "[1/1 100%]" in forced.stdout and "elapsed, done" in forced.stdout


@pytest.mark.slow
def test_make_bench_counts_only_the_pairs_it_selects(tmp_path):
    case = _smallest_smoke_case()
    out = run_bench("--matrix", "smoke", "-k", case, "--results", str(tmp_path), env={"DNNBENCH_PROGRESS": "1"})
    assert out.returncode == 0, out.stdout[-2000:]
    assert "[1/1 100%]" in out.stdout and "elapsed, done" in out.stdout
