import math
import time

import pytest
import torch

from dnnbench.core.errors import BadInput
from dnnbench.core.metrics import METRICS
from dnnbench.definitions.cases import Case
from dnnbench.definitions.workloads import get_workload
from dnnbench.measurement.clocks import PHASES
from dnnbench.measurement.engine import loop_driver, run
from dnnbench.measurement.hooks import Hooks
from dnnbench.measurement.resolve import resolve_plan, warmup_steps
from dnnbench.measurement.training import Training
from tests.conftest import tiny


def test_record_of_a_real_case_is_complete_and_sane():
    r = run(tiny(), seed=1)
    m = r.metrics
    assert r.status == "ok" and set(m) == set(METRICS)
    assert m["steps"] == 5 and m["samples"] == 500  # 500 samples, batch 100, one epoch
    assert m["throughput_samples_per_s"] > 0
    assert m["step_time_ms_p10"] <= m["step_time_ms_median"] <= m["step_time_ms_p90"]
    assert 0.3 < m["final_test_accuracy"] <= 1.0  # well above chance (0.1) after 5 Adam steps
    assert m["final_train_loss"] > 0 and m["best_val_accuracy"] > 0.3
    assert m["generalization_gap"] == pytest.approx(m["final_train_accuracy"] - m["final_test_accuracy"])
    assert m["peak_memory_bytes"] > 0 and r.memory_kind == "cpu_tensor_footprint"
    assert set(r.phase_fractions) == set(PHASES)
    # evaluation at the stated cadence (every 250 samples) and excluded from training time
    assert [v["samples"] for v in r.curves["val"]] == [300, 500]  # first step past 250, then the end
    assert r.target.eval_every_samples == 250
    assert m["train_time_s"] + m["eval_time_s"] <= m["wall_time_s"]
    assert len(r.curves["loss"]["loss"]) == 5
    assert r.env["torch"] and r.env["cpu_model"] and r.env["torch_threads"] >= 1
    assert dict(r.case) == tiny().to_dict()
    assert set(r.calibration.start) == {"matmul_gflops", "reference_steps_per_s", "numpy_gemm_per_s", "python_mops"}
    assert r.env["allocator"].startswith("glibc malloc, mmap_threshold 32 MiB")


def test_a_finished_record_cannot_be_changed():
    r = run(tiny(train_samples=200), seed=1)
    with pytest.raises(AttributeError):
        r.status = "error"
    with pytest.raises(TypeError):
        r.metrics["throughput_samples_per_s"] = 1.0
    with pytest.raises(TypeError, match="may change after measurement"):
        r.with_context(status="error")


def test_same_seed_gives_identical_losses_and_accuracy():
    a, b = run(tiny(), seed=3), run(tiny(), seed=3)
    assert a.curves["loss"]["loss"] == b.curves["loss"]["loss"]
    assert a.metrics["final_test_accuracy"] == b.metrics["final_test_accuracy"]
    c = run(tiny(), seed=4)
    assert c.curves["loss"]["loss"] != a.curves["loss"]["loss"]


def test_loader_kinds_train_on_the_same_batches():
    # torchvision (PIL → ToTensor) and tensor loaders shuffle with the same generator: same training.
    a = run(tiny(loader="torchvision"), seed=2)
    b = run(tiny(loader="tensor"), seed=2)
    assert a.curves["loss"]["loss"] == pytest.approx(b.curves["loss"]["loss"], rel=1e-6)


class SlowFirstSteps(Hooks):
    """Makes the first `n` steps 100 ms slower, inside the timed step."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, 0

    def step_begin(self) -> None:
        self.seen += 1
        if self.seen <= self.n:
            time.sleep(0.1)


def test_warmup_steps_are_left_out_of_throughput():
    # 2,000 samples at batch 100: 20 steps. The first 5 are made 100 ms slower each.
    slowed = run(tiny(train_samples=2000, warmup_steps=5), seed=1, hooks=SlowFirstSteps(5))
    m = slowed.metrics
    assert slowed.resolved["warmup_steps"] == 5 and m["steps"] == 20
    assert m["train_time_s"] > 0.5  # the hook's 5 x 100 ms are inside the timed steps
    # ... and outside the throughput: the time it leaves out (train time less the 15 steady steps' time)
    # holds all 0.5 s of sleep. Read from the record's own figures, not against a speed, so that a slow or
    # loaded CPU (longer steps) cannot fail it; had the warm-up been counted, a quarter of the train time
    # would be left out: 0.125 s plus five ordinary steps, short of 0.5 s unless a step took 75 ms.
    left_out = m["train_time_s"] - 1500 / m["throughput_samples_per_s"]
    assert left_out >= 0.5 and m["step_time_ms_median"] < 75
    # without a warm-up the same slow steps are counted
    counted = run(tiny(train_samples=2000, warmup_steps=0), seed=1, hooks=SlowFirstSteps(5))
    assert counted.metrics["throughput_samples_per_s"] == pytest.approx(
        counted.metrics["samples"] / counted.metrics["train_time_s"]
    )


def test_warmup_is_capped_at_a_quarter_and_keeps_the_first_step_out():
    assert warmup_steps(10, 20) == 5
    assert warmup_steps(10, 400) == 10
    assert warmup_steps(10, 3) == 1  # a quarter rounds to 0; the cold first step still stays out
    assert warmup_steps(10, 1) == 0 and warmup_steps(0, 100) == 0


def test_plan_resolution_is_a_function_of_its_inputs():
    w = get_workload("fashion-mnist")
    plan = resolve_plan(Case(batch_size="full", epochs=3), w, 500, 100, 100, threads=2)
    assert (plan.batch_size, plan.steps_per_epoch, plan.planned_steps, plan.threads) == (500, 1, 3, 2)
    assert plan.lr == 0.001 and plan.hidden == (500,) and plan.target == 0.85
    odd = resolve_plan(Case(regularization="batchnorm", batch_size=100), w, 501, 100, 100, threads=1)
    assert odd.drop_last and odd.steps_per_epoch == 5  # a last batch of one sample cannot train BatchNorm
    assert not resolve_plan(Case(batch_size=100), w, 501, 100, 100, threads=1).drop_last


def test_every_loader_drops_a_last_batch_of_one_under_batchnorm():
    for loader in ("tensor", "torchvision", "device"):
        r = run(tiny(train_samples=501, regularization="batchnorm", loader=loader), seed=1)
        assert r.status == "ok", (loader, r.reason)
        assert r.metrics["steps"] == 5 and r.metrics["samples"] == 500, loader


class Recorder(Hooks):
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.wrapped = None

    def wrap_model(self, model):
        self.wrapped = model
        return model

    def step_begin(self) -> None:
        self.calls.append("begin")

    def phase_end(self, phase: str) -> None:
        self.calls.append(phase)


def test_hooks_see_every_phase_of_every_step_in_order():
    hooks = Recorder()
    r = run(tiny(train_samples=300), seed=1, hooks=hooks)
    assert r.metrics["steps"] == 3
    assert hooks.calls == ["begin", *PHASES] * 3
    assert isinstance(hooks.wrapped, torch.nn.Module)


def test_diverging_case_is_recorded_and_returns():
    r = run(Case(workload="cubic", optimizer="sgd", lr=1e6, batch_size=20, epochs=2), seed=1)
    assert r.status == "diverged"
    assert "training loss became" in r.reason and "at step" in r.reason
    assert r.metrics["final_test_loss"] is None
    assert r.metrics["throughput_samples_per_s"] > 0  # what was measured before is kept


def test_out_of_memory_is_recorded_and_returns():
    r = run(tiny(hidden=(10**9,)), seed=1)  # a 3 TB weight matrix: the allocator refuses it
    assert r.status == "oom"
    assert "allocate" in r.reason


def test_time_budget_stops_training_and_says_so():
    r = run(tiny(batch_size=1, train_samples=5000, max_seconds=0.3), seed=1)
    assert r.status == "ok"
    assert "training-time budget" in r.reason
    # the budget is checked on the host clock between steps; the record sums the step clocks
    assert 0.27 <= r.metrics["train_time_s"] < 1.0
    assert r.metrics["epochs_completed"] < 1
    assert r.target.status.startswith("not reached within the budget")


def test_time_to_target_is_training_time_at_the_first_hit():
    r = run(Case(workload="cubic", optimizer="adam", lr=0.01, batch_size=20), seed=1)
    m, t = r.metrics, r.target
    assert t.reached and t.status == "reached" and t.metric == "val_mse"
    hit = next(v for v in r.curves["val"] if v["val_metric"] <= t.value)
    assert m["time_to_target_s"] == hit["train_time_s"] and m["steps_to_target"] == hit["step"]
    assert m["steps_to_target"] % 15 == 0  # evaluated every 300 samples = 15 steps of 20
    assert m["epochs_to_target"] == pytest.approx(hit["samples"] / 1200)
    assert m["time_to_target_s"] < m["train_time_s"]


def test_target_not_reached_is_null_with_a_status():
    r = run(tiny(), seed=1)
    assert r.metrics["time_to_target_s"] is None and r.metrics["steps_to_target"] is None
    assert r.target.status == "not reached within the budget (1 epochs, 300 s)"


def test_l1_penalty_shrinks_weights():
    def weight_l1(case: Case) -> float:
        training = Training(case, seed=1)
        loop_driver(training.step, training.between, 0, training.plan.planned_steps)
        return sum(float(w.detach().abs().sum()) for w in training.setup.weights)

    plain = weight_l1(tiny(train_samples=2000, epochs=3))
    penalized = weight_l1(tiny(train_samples=2000, epochs=3, regularization="l1", l1_lambda=1e-3))
    assert penalized < 0.8 * plain


def test_full_batch_is_one_step_per_epoch():
    r = run(tiny(batch_size="full", epochs=3), seed=1)
    assert r.resolved["batch_size"] == 500 and r.metrics["steps"] == 3
    assert r.resolved["warmup_steps"] == 1  # the cold first step stays out of the throughput
    assert math.isclose(r.metrics["epochs_completed"], 3.0)


def test_the_notes_protocol_trains_on_everything_and_evaluates_the_test_set_every_epoch():
    r = run(Case(workload="cubic", protocol="note", batch_size=20, lr=0.01, epochs=2), seed=1)
    assert r.protocol == "note" and r.resolved["n_train"] == 1500  # all 1,500 points, nothing held out
    assert [v["samples"] for v in r.curves["val"]] == [1500, 3000]  # once per epoch
    assert r.target.metric == "train_mse" and r.metrics["best_val_loss"] is None
    images = run(tiny(protocol="note", epochs=2), seed=1)
    assert images.target.metric == "test_accuracy" and "on the test set" in images.target.status
    # what it evaluated after the last epoch is the test set: the same figure as the final test accuracy
    assert images.curves["val"][-1]["val_metric"] == images.metrics["final_test_accuracy"]
    assert images.metrics["best_val_accuracy"] is None


def test_the_races_adam_uses_the_notes_betas():
    race = Case(workload="cubic", optimizer="adam", lr=0.01, beta2=0.99, epochs=1)
    assert race.id == "cubic_b100_adam_lr0.01_beta0.99_tensor_e1_cpu"
    assert Case(optimizer="adam", beta2=0.999) == Case(optimizer="adam")  # torch's default is no change
    with pytest.raises(BadInput, match="beta2 applies to adam and adamw, not 'sgd'"):
        Case(optimizer="sgd", beta2=0.99)
