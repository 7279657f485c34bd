"""Learning-rate tuning: grids, the choice on validation only, a diverging trial, performance profiles."""

import itertools

import numpy as np
import pandas as pd
import pytest

from dnnbench.core.errors import BadInput
from dnnbench.definitions import tuning
from dnnbench.definitions.cases import Case
from dnnbench.definitions.plan import expand
from dnnbench.results.frames import listed_in, load
from dnnbench.results.journal import Journal
from dnnbench.results.tuning import choose, performance_profile, profile_times, reruns, select
from dnnbench.tools import tune
from tests.conftest import record


def test_the_quick_grid_spans_four_decades_around_the_default():
    assert tuning.log_grid(0.001) == [1e-05, 4.64e-05, 0.000215, 0.001, 0.00464, 0.0215, 0.1]
    grid = tuning.deepobs_grid()
    assert len(grid) == 36 and grid[0] == 1e-05 and grid[-1] == 100.0
    assert all(b / a == pytest.approx(10 ** (7 / 35), rel=0.01) for a, b in itertools.pairwise(grid))
    assert tuning.grid_for("sgd", "quick", "grid", 7)[3] == 0.1  # the default sits in the middle


def test_random_search_draws_the_same_rates_every_time_within_its_range():
    rates = tuning.random_grid(1e-4, 1e-1, 9, seed=3)
    assert rates == tuning.random_grid(1e-4, 1e-1, 9, seed=3) and len(rates) == 9
    assert all(1e-4 <= r <= 1e-1 for r in rates) and rates != tuning.random_grid(1e-4, 1e-1, 9, seed=4)


def _trial(lr, val, test, status="ok"):
    case = Case(optimizer="sgd", lr=lr)
    return record(case, 1, ["tuning"], status=status, best_val_accuracy=val, final_test_accuracy=test, train_time_s=2.0)


def test_the_choice_reads_validation_never_test(tmp_path):
    journal = Journal(tmp_path)
    journal.append(_trial(0.01, val=0.85, test=0.88))  # best on test
    journal.append(_trial(0.03, val=0.87, test=0.84))  # best on validation: the one to choose
    journal.append(_trial(None, val=0.86, test=0.86))  # the default (0.1)
    journal.append(_trial(10.0, val=None, test=None, status="diverged"))
    (row,) = select(load(tmp_path)).itertuples()
    assert row.tuned_lr == 0.03 and row.default_lr == 0.1
    assert row.trials == 4 and row.diverged == 1 and row.tuning_cost_s == 8.0


def test_an_optimizer_with_no_successful_trial_has_no_rate_not_nan(tmp_path, monkeypatch):
    # sgd's every trial diverged while adam found a rate: in a table the missing rate became NaN, NaN is
    # truthy, and tune re-ran sgd at Case(lr=nan); saving and loading the rates called float(None).
    journal = Journal(tmp_path)
    for lr in (1e3, 1e4):
        journal.append(_trial(lr, val=None, test=None, status="diverged"))
    adam = Case(optimizer="adam", lr=0.003)
    journal.append(record(adam, 1, ["tuning"], best_val_accuracy=0.86, final_test_accuracy=0.85, train_time_s=2.0))
    chosen = {c.optimizer: c for c in choose(load(tmp_path))}
    assert chosen["sgd"].tuned_lr is None and chosen["sgd"].diverged == 2 and chosen["adam"].tuned_lr == 0.003
    problem = tuning.Problem("fashion-mnist", Case(), ("sgd", "adam"))
    runs = tune.rerun_cases(problem, chosen["sgd"])
    assert runs == [(Case(optimizer="sgd"), ("default", "tuned"))]  # the default stands for both settings
    adam_runs = [(Case(optimizer="adam"), ("default",)), (Case(optimizer="adam", lr=0.003), ("tuned",))]
    assert tune.rerun_cases(problem, chosen["adam"]) == adam_runs
    monkeypatch.setenv("DNNBENCH_TUNED_DIR", str(tmp_path / "tuned"))
    tuning.save_tuned([{**vars(c)} for c in chosen.values()], "partial")
    assert tuning.load_tuned("partial") == {("fashion-mnist", "adam"): 0.003}
    assert tuning.with_tuned_lr(Case(optimizer="sgd"), tuning.load_tuned("partial")) is None


def test_a_performance_profiles_score_matches_a_hand_computation():
    times = pd.DataFrame({"a": [1.0, 3.0], "b": [2.0, 1.0], "c": [np.nan, 1.5]}, index=["p1", "p2"])
    rho, score = performance_profile(times, taus=np.array([1.0, 2.0, 4.0]))
    # ratios to the best per problem: p1: a 1, b 2, c never; p2: a 3, b 1, c 1.5
    assert rho.loc[2.0].to_dict() == {"a": 0.5, "b": 1.0, "c": 0.5}
    assert rho.loc[4.0].to_dict() == {"a": 1.0, "b": 1.0, "c": 0.5}
    # the area under ρ from 1 to 4 over 3: per problem (4 − ratio) / 3, 0 beyond 4, averaged
    assert score["a"] == pytest.approx(((4 - 1) / 3 + (4 - 3) / 3) / 2)
    assert score["b"] == pytest.approx(((4 - 2) / 3 + (4 - 1) / 3) / 2)
    assert score["c"] == pytest.approx((0 + (4 - 1.5) / 3) / 2)


def test_profiles_pool_both_settings_over_the_problems_every_optimizer_ran():
    # AdamW runs only the Fashion-MNIST problem (the race runs 5 of the 8 optimizers), and there it is
    # exactly as fast as Adam: it must score as Adam does, not lose for the race it never ran.
    rows = []
    for problem, times in (
        ("fashion-mnist", {"sgd": (9.0, 6.0), "adam": (4.0, 3.0), "adamw": (4.0, 3.0)}),
        ("cubic race", {"sgd": (2.0, 2.0), "adam": (1.0, 1.0)}),
    ):
        for optimizer, (default, tuned) in times.items():
            for setting, t in (("default", default), ("tuned", tuned)):
                rows.append({"problem": problem, "optimizer": optimizer, "setting": setting, "time_to_target_s": t})
    times = profile_times(pd.DataFrame(rows))
    assert list(times.index) == ["fashion-mnist"]  # only the problem every optimizer ran
    _, score = performance_profile(times)
    assert score["adamw (default)"] == score["adam (default)"] and score["adamw (tuned)"] == score["adam (tuned)"]
    # one scale for both settings: the best of either (adam tuned, 3 s) is the reference for all
    assert score["adam (tuned)"] == 1.0 and score["adam (default)"] == pytest.approx((4 - 4 / 3) / 3)
    assert score["sgd (tuned)"] == pytest.approx((4 - 2) / 3) and score["sgd (default)"] == pytest.approx((4 - 3) / 3)


def test_a_diverging_trial_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    race = Case(workload="cubic", batch_size=20, epochs=2)
    monkeypatch.setattr(tuning, "problems", lambda size, device: [tuning.Problem("cubic race", race, ("sgd", "adam"))])
    monkeypatch.setattr(tuning, "grid_for", lambda optimizer, *a: [1e6, 0.01, tuning.default_lr(optimizer)])
    monkeypatch.setenv("DNNBENCH_TUNED_DIR", str(tmp_path / "tuned"))
    path, _ = tune.run_tune("quick", "grid", 7, 2, "cpu", tmp_path / "run", "mine", log=lambda line: None)
    frame = load(tmp_path / "run")
    sweep = frame[listed_in(frame, "tuning")]
    assert len(sweep) == 6 and set(sweep[(sweep.lr == 1e6) & (sweep.optimizer == "sgd")].status) == {"diverged"}
    assert (sweep[sweep.lr != 1e6].status == "ok").all()  # the trials after the diverged one ran
    assert set(sweep.optimizer) == {"sgd", "adam"}
    chosen = select(frame)
    assert 1e6 not in set(chosen.tuned_lr)
    runs = reruns(frame, chosen)
    assert set(runs.setting) == {"default", "tuned"} and (runs.seeds == 2).all()
    assert set(frame[~listed_in(frame, "tuning")].seed) == {2, 3}  # fresh seeds, not the sweep's
    tuned = tuning.load_tuned("mine")
    assert tuned[("cubic", "adam")] == float(chosen.set_index("optimizer").loc["adam", "tuned_lr"])
    race_adam = tuning.with_tuned_lr(race.replace(optimizer="adam"), tuned)
    assert race_adam.lr == tuned[("cubic", "adam")] or race_adam.lr is None  # None: the tuned rate is the default
    # the smoke matrix has cases this sweep did not tune: skipped, each saying the command that tunes it
    plan = expand("smoke", overrides={"lr": "tuned:mine"})
    untuned = {p.case.id: p.skip_reason for p in plan if p.skip_reason and "no tuned learning rate" in p.skip_reason}
    fmnist_adam = next(why for case_id, why in untuned.items() if case_id.startswith("fashion-mnist_b100_adam"))
    assert fmnist_adam.startswith("no tuned learning rate for adam on fashion-mnist in ")
    assert fmnist_adam.endswith("tune it with: dnnbench tune --matrix smoke -k fashion-mnist --save mine")
    assert not any(p.case.workload == "cubic" and p.case.optimizer == "adam" for p in plan if p.case.id in untuned)
    assert path == tmp_path / "tuned" / "mine.json"


def test_lr_tuned_without_saved_rates_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DNNBENCH_TUNED_DIR", str(tmp_path))
    with pytest.raises(BadInput, match=r"no tuned learning rates at .*nothing\.json; run `dnnbench tune`"):
        expand("smoke", overrides={"lr": "tuned:nothing"})


def test_the_crowded_valley_verdict_has_a_ten_percent_band():
    from dnnbench.results.tuning import CrowdedValley

    def verdict(default_s, adam_s):
        return CrowdedValley("p", 5, best_default=("sgd", default_s), popular_tuned=adam_s).verdict

    assert [verdict(1.09, 1.0), verdict(0.91, 1.0), verdict(0.89, 1.0), verdict(1.11, 1.0)] == [
        "match", "match", "beat", "lose to"
    ]  # fmt: skip
    assert verdict(1.0, None) is None  # Adam never reached the target: no comparison


def test_a_rerun_median_counts_a_seed_that_missed_as_never_reaching_it(tmp_path):
    journal = Journal(tmp_path)
    adam, sgd = Case(), Case(optimizer="sgd")
    for seed, t in ((1, 10.0), (2, 30.0), (3, None)):  # 2 of 3 reached: median of 10, 30 and never = 30
        journal.append(record(adam, seed, ["tuned"], time_to_target_s=t, final_test_accuracy=0.86))
    for seed, t in ((1, 5.0), (2, None), (3, None), (4, 6.0)):  # half reached: not reached
        journal.append(record(sgd, seed, ["tuned"], time_to_target_s=t, final_test_accuracy=0.86))
    table = reruns(load(tmp_path), pd.DataFrame()).set_index("optimizer")
    assert table.loc["adam", "time_to_target_s"] == 30.0 and table.loc["adam", "reached"] == 2
    assert table.loc["sgd", "time_to_target_s"] is None or np.isnan(table.loc["sgd", "time_to_target_s"])


def test_tune_with_a_matrix_tunes_what_that_matrix_trains_and_the_matrix_then_runs_at_those_rates(
    tmp_path, monkeypatch
):
    # The dead end: tune tuned only Fashion-MNIST and the race, so every built-in matrix refused
    # --set lr=tuned. Tuned from the matrix (here its cubic cases, two rates each), the matrix runs.
    monkeypatch.setattr(tuning, "grid_for", lambda optimizer, *a: sorted({0.01, tuning.default_lr(optimizer)}))
    monkeypatch.setenv("DNNBENCH_TUNED_DIR", str(tmp_path / "tuned"))
    problems = tune.problems_of_matrix("smoke", "cpu", ["cubic"])
    assert [p.name for p in problems] == ["cubic"] and set(problems[0].optimizers) >= {"sgd", "adam"}
    tune.run_tune("quick", "grid", 7, 1, "cpu", tmp_path / "run", "smoke", log=lambda line: None,
                  matrix="smoke", select=["cubic"])  # fmt: skip
    plan = [p for p in expand("smoke", overrides={"lr": "tuned:smoke"}) if "cubic" in p.case.id]
    tuned = tuning.load_tuned("smoke")
    assert plan and not any(p.skip_reason for p in plan)
    # (a case's lr is None where the tuned rate is its default)
    assert all((p.case.lr or tuning.default_lr(p.case.optimizer)) == tuned[("cubic", p.case.optimizer)] for p in plan)
    with pytest.raises(BadInput, match="-k selects cases of a matrix: give --matrix too"):
        tune.run_tune("quick", "grid", 7, 1, "cpu", tmp_path / "run2", "x", select=["cubic"])


def test_saving_rates_adds_to_the_file_instead_of_wiping_other_workloads(tmp_path, monkeypatch):
    monkeypatch.setenv("DNNBENCH_TUNED_DIR", str(tmp_path))
    entry = {"problem": "cubic", "workload": "cubic", "regularization": "none", "optimizer": "adam", "tuned_lr": 0.01}
    tuning.save_tuned([entry], "mine")
    other = {**entry, "problem": "mnist", "workload": "mnist", "tuned_lr": 0.002}
    tuning.save_tuned([other], "mine")
    tuning.save_tuned([{**entry, "tuned_lr": 0.02}], "mine")  # the same problem again: replaced
    assert tuning.load_tuned("mine") == {("cubic", "adam"): 0.02, ("mnist", "adam"): 0.002}


def test_a_matrix_workload_is_tuned_at_a_mini_batch_case_where_it_has_one():
    problems = {p.name: p for p in tune.problems_of_matrix("quick", "cpu", [])}
    assert problems["fashion-mnist"].base.batch_size == 100
