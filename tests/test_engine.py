import math

import pytest

from dnnbench.cases import Case
from dnnbench.engine import Training, loop_driver, run
from dnnbench.meter import PHASES
from dnnbench.records import METRICS, SCHEMA_VERSION
from tests.conftest import tiny


def test_record_of_a_real_case_is_complete_and_sane():
    r = run(tiny(), seed=1)
    m = r["metrics"]
    assert r["schema_version"] == SCHEMA_VERSION and r["status"] == "ok"
    assert set(METRICS) <= set(m)
    assert m["steps"] == 5 and m["samples"] == 500  # 500 samples, batch 100, one epoch
    assert m["throughput_samples_per_s"] > 0
    assert m["step_time_ms_p10"] <= m["step_time_ms_median"] <= m["step_time_ms_p90"]
    assert 0.3 < m["final_test_accuracy"] <= 1.0  # well above chance (0.1) after 5 Adam steps
    assert m["final_train_loss"] > 0 and m["best_val_accuracy"] > 0.3
    assert m["generalization_gap"] == pytest.approx(m["final_train_accuracy"] - m["final_test_accuracy"])
    assert m["peak_memory_bytes"] > 0 and r["memory_kind"] == "cpu_tensor_footprint"
    assert 0 <= m["data_wait_fraction"] <= 1
    assert sum(r["phase_fractions"].values()) == pytest.approx(1.0)
    assert set(r["phase_fractions"]) == set(PHASES)
    # evaluation at the stated cadence (every 250 samples) and excluded from training time
    assert [v["samples"] for v in r["curves"]["val"]] == [300, 500]  # first step past 250, then the end
    assert r["target"]["eval_every_samples"] == 250
    assert m["train_time_s"] + m["eval_time_s"] <= m["wall_time_s"]
    assert len(r["curves"]["loss"]["loss"]) == 5
    assert r["env"]["torch"] and r["env"]["cpu_model"] and r["env"]["torch_threads"] >= 1
    assert r["case"] == tiny().to_dict()


def test_same_seed_gives_identical_losses_and_accuracy():
    a, b = run(tiny(), seed=3), run(tiny(), seed=3)
    assert a["curves"]["loss"]["loss"] == b["curves"]["loss"]["loss"]
    assert a["metrics"]["final_test_accuracy"] == b["metrics"]["final_test_accuracy"]
    c = run(tiny(), seed=4)
    assert c["curves"]["loss"]["loss"] != a["curves"]["loss"]["loss"]


def test_loader_kinds_train_on_the_same_batches():
    # torchvision (PIL → ToTensor) and tensor loaders shuffle with the same generator: same training.
    a = run(tiny(loader="torchvision"), seed=2)
    b = run(tiny(loader="tensor"), seed=2)
    assert a["curves"]["loss"]["loss"] == pytest.approx(b["curves"]["loss"]["loss"], rel=1e-6)


def test_warmup_steps_are_left_out_of_throughput():
    case = tiny(train_samples=2000, warmup_steps=5)
    training = Training(case, seed=1)
    assert training.plan.warmup_steps == 5  # 20 planned steps, a quarter is 5
    r = run(case, seed=1)
    assert r["metrics"]["steps"] == 20
    assert r["resolved"]["warmup_steps"] == 5


def test_diverging_case_is_recorded_and_returns():
    r = run(Case(workload="cubic", optimizer="sgd", lr=1e6, batch_size=20, epochs=2), seed=1)
    assert r["status"] == "diverged"
    assert "training loss became" in r["reason"] and "at step" in r["reason"]
    assert r["metrics"]["final_test_loss"] is None
    assert r["metrics"]["throughput_samples_per_s"] > 0  # what was measured before is kept


def test_out_of_memory_is_recorded_and_returns():
    r = run(tiny(hidden=(10**9,)), seed=1)  # a 3 TB weight matrix: the allocator refuses it
    assert r["status"] == "oom"
    assert "allocate" in r["reason"]


def test_time_budget_stops_training_and_says_so():
    r = run(tiny(batch_size=1, train_samples=5000, max_seconds=0.3), seed=1)
    assert r["status"] == "ok"
    assert "training-time budget" in r["reason"]
    # the budget is checked on the host clock between steps; the record sums the step clocks
    assert 0.27 <= r["metrics"]["train_time_s"] < 1.0
    assert r["metrics"]["epochs_completed"] < 1
    assert r["target"]["status"].startswith("not reached within the budget")


def test_time_to_target_is_training_time_at_the_first_hit():
    r = run(Case(workload="cubic", optimizer="adam", lr=0.01, batch_size=20), seed=1)
    m, t = r["metrics"], r["target"]
    assert t["reached"] and t["status"] == "reached" and t["metric"] == "val_mse"
    hit = next(v for v in r["curves"]["val"] if v["val_metric"] <= t["value"])
    assert m["time_to_target_s"] == hit["train_time_s"] and m["steps_to_target"] == hit["step"]
    assert m["steps_to_target"] % 15 == 0  # evaluated every 300 samples = 15 steps of 20
    assert m["epochs_to_target"] == pytest.approx(hit["samples"] / 1200)
    assert m["time_to_target_s"] < m["train_time_s"]


def test_target_not_reached_is_null_with_a_status():
    r = run(tiny(), seed=1)
    assert r["metrics"]["time_to_target_s"] is None and r["metrics"]["steps_to_target"] is None
    assert r["target"]["status"] == "not reached within the budget (1 epochs, 300 s)"


def test_l1_penalty_shrinks_weights():
    def weight_l1(case: Case) -> float:
        training = Training(case, seed=1)
        loop_driver(training.step, training.between, 0, training.plan.planned_steps)
        return sum(float(w.detach().abs().sum()) for w in training._weights)

    plain = weight_l1(tiny(train_samples=2000, epochs=3))
    penalized = weight_l1(tiny(train_samples=2000, epochs=3, regularization="l1", l1_lambda=1e-3))
    assert penalized < 0.8 * plain


def test_full_batch_is_one_step_per_epoch():
    r = run(tiny(batch_size="full", epochs=3), seed=1)
    assert r["resolved"]["batch_size"] == 500 and r["metrics"]["steps"] == 3
    assert r["resolved"]["warmup_steps"] == 1  # the cold first step stays out of the throughput
    assert math.isclose(r["metrics"]["epochs_completed"], 3.0)
