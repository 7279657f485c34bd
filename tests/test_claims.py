"""The note's claims judged on hand-made records: every rule flips both ways, and says "inconclusive" when
the seeds disagree (the interval over seeds straddles its threshold) or when one seed gives no interval.

Each scenario builds one seed's records with one figure `x` set; a test gives every seed a value on the
claim's side (supported), every seed one on the other side (not supported: no rule holds by construction),
or the seeds split (inconclusive)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest

from dnnbench.core.noise import loss_noise
from dnnbench.definitions.cases import Case
from dnnbench.results.claims import INCONCLUSIVE, NOT_MEASURABLE, NOT_SUPPORTED, SUPPORTED, Claim, evaluate_claims
from dnnbench.results.frames import load, load_curves
from dnnbench.results.journal import Journal
from tests.conftest import record

MNIST = Case(workload="mnist", protocol="note")


def claims_of(tmp_path, records) -> dict[int, Claim]:
    journal = Journal(tmp_path / "run")
    for r in records:
        journal.append(r)
    frame = load(tmp_path / "run")
    _, val = load_curves(tmp_path / "run")
    return {c.number: c for c in evaluate_claims(frame, val)}


def part(claim: Claim, name: str):
    return next(p for p in claim.parts if p.name == name)


def note(case: Case, seed: int, **metrics):
    protocol = case.protocol
    return record(case, seed, ["note"], protocol=protocol, **metrics)


# --- one seed's records per scenario, with the figure under test set to x -----------------------------


def regimes(seed: int, b1: dict | None = None, m: dict | None = None, full: dict | None = None) -> list:
    """Batch 1 (a seconds budget), batch 100 and the full batch of the note's MNIST DNN."""
    base = {"throughput_samples_per_s": 1_000.0, "loss_noise": 0.6, "step_time_ms_median": 0.5, "steps": 6000,
            "train_time_s": 20.0, "steps_to_target": None, "time_to_target_s": None}  # fmt: skip
    mini = {"throughput_samples_per_s": 40_000.0, "loss_noise": 0.3, "step_time_ms_median": 2.5, "steps": 3000,
            "train_time_s": 8.0, "steps_to_target": 600, "time_to_target_s": 5.0}  # fmt: skip
    whole = {"throughput_samples_per_s": 45_000.0, "loss_noise": 0.05, "step_time_ms_median": 1300.0, "steps": 12,
             "train_time_s": 16.0, "steps_to_target": None, "time_to_target_s": None}  # fmt: skip
    return [
        note(MNIST.replace(batch_size=1, epochs=1, max_seconds=10.0), seed, **{**base, **(b1 or {})}),
        note(MNIST, seed, **{**mini, **(m or {})}),
        note(MNIST.replace(batch_size="full", epochs=12), seed, **{**whole, **(full or {})}),
    ]


def race(seed: int, **losses: float) -> list:
    values = {"sgd": 0.030, "momentum": 0.020, "adagrad": 0.013, "rmsprop": 0.012, "adam": 0.011, **losses}
    cubic = Case(workload="cubic", protocol="note", batch_size=20, lr=0.01, num_workers=2)
    return [note(cubic.replace(optimizer=o), seed, final_test_loss=v) for o, v in values.items()]


def regularized(seed: int, kind: str, mine: dict, plain: dict | None = None, curves=None) -> list:
    return [
        note(MNIST, seed, **(plain or {}), curves=curves[0] if curves else None),
        note(MNIST.replace(regularization=kind), seed, **mine, curves=curves[1] if curves else None),
    ]


def first_evaluation_curve(first: float) -> dict:
    points = [{"step": 600 * i, "samples": 60_000 * i, "epoch": i, "train_time_s": i, "val_metric": first + 0.01 * i,
               "val_loss": 0.1} for i in (1, 2)]  # fmt: skip
    return {"loss": {"step": [1], "loss": [1.0], "bucket": 1}, "val": points}


DEEP = Case(workload="mnist", hidden=(256, 256, 256), optimizer="sgd", lr=0.05, train_samples=10_000, epochs=2)
SLICE = Case(workload="mnist", train_samples=5_000, epochs=30)
ZERO = DEEP.replace(init_scale=0.1)
SWEEP = MNIST.replace(epochs=3, eval_every=10_000, stop_at_target=True)
LOADER = Case(loader="torchvision", epochs=1)


def sweep(seed: int, b20: float) -> list:
    times = {20: b20, 50: 8.0, 100: 6.0, 256: 7.0, 1000: None}
    return [
        note(SWEEP.replace(batch_size=b), seed, time_to_target_s=t, train_time_s=t or 20.0) for b, t in times.items()
    ]


def dropout(seed: int, zeroed: float = 0.5, scale: float = 2.0) -> list:
    return [note(MNIST.replace(regularization="dropout"), seed, dropout_zero_fraction=zeroed, dropout_kept_scale=scale)]


def cuda_copy(seed: int, pinned_share: float) -> list:
    case = Case(loader="tensor", device="cuda", epochs=1)
    return [
        record(case, seed, ["loaders"], step_time_ms_median=2.0, phase_fractions={"copy": 0.5}),
        record(case.replace(pin_memory=True), seed, ["loaders"], step_time_ms_median=2.0,
               phase_fractions={"copy": 0.5 * pinned_share}),
    ]  # fmt: skip


# (claim, part, one seed's records from x, x on the claim's side, x on the other side)
Scenario = tuple[int, str, Callable[[int, float], list], float, float]
SCENARIOS: list[Scenario] = [
    (1, "uses matrix math well", lambda s, x: regimes(s, m={"throughput_samples_per_s": x}), 5_000.0, 1_500.0),
    (1, "balances the extremes", lambda s, x: regimes(s, full={"time_to_target_s": x}), 10.0, 2.5),
    (2, "steadiest updates", lambda s, x: regimes(s, full={"loss_noise": x}), 0.05, 0.5),
    (2, "costs a full pass per step", lambda s, x: regimes(s, full={"throughput_samples_per_s": x}), 50_000.0, 2e5),
    (3, "fast per step", lambda s, x: regimes(s, b1={"step_time_ms_median": x}), 0.5, 2.0),
    (3, "noisy", lambda s, x: regimes(s, b1={"loss_noise": x}), 0.6, 0.2),
    (3, "needs more iterations", lambda s, x: regimes(s, b1={"steps_to_target": x, "time_to_target_s": 9.0}), 3e3, 300),
    (4, "about equal", lambda s, x: race(s, adagrad=x), 0.013, 0.03),
    (4, "Adam often best", lambda s, x: race(s, adam=x), 0.010, 0.014),
    (4, "SGD slower", lambda s, x: race(s, sgd=x), 0.03, 0.008),
    (5, "dropout", lambda s, x: regularized(s, "dropout", {"generalization_gap": x}, {"generalization_gap": 0.03}),
     0.01, 0.05),
    (6, "speeds convergence", lambda s, x: regularized(s, "batchnorm", {}, {}, curves=(first_evaluation_curve(0.95),
     first_evaluation_curve(x))), 0.97, 0.93),
    (6, "stabilizes training", lambda s, x: regularized(s, "batchnorm", {"loss_noise": x}, {"loss_noise": 0.3}),
     0.2, 0.4),
    (7, "tensor, batch 100, 0 workers", cuda_copy, 0.5, 0.95),
    (8, "fashion-mnist, torchvision loader, batch 100, 2 workers",
     lambda s, x: [record(LOADER, s, ["loaders"], throughput_samples_per_s=10_000.0),
                   record(LOADER.replace(num_workers=2), s, ["loaders"], throughput_samples_per_s=x)], 15_000.0, 8e3),
    (9, "about 98%", lambda s, x: [note(MNIST.replace(loader="torchvision"), s, final_test_accuracy=x)], 0.98, 0.96),
    (10, "vanish with sigmoid", lambda s, x: [
        record(DEEP.replace(activation="sigmoid"), s, ["note"], grad_norm_ratio=x, final_test_accuracy=0.5),
        record(DEEP, s, ["note"], grad_norm_ratio=1.0, final_test_accuracy=0.9)], 0.1, 0.9),
    (10, "ReLU keeps them", lambda s, x: [
        record(DEEP.replace(activation="sigmoid"), s, ["note"], grad_norm_ratio=0.1, final_test_accuracy=0.5),
        record(DEEP, s, ["note"], grad_norm_ratio=x, final_test_accuracy=0.9)], 1.0, 0.15),
    (10, "ReLU trains better", lambda s, x: [
        record(DEEP.replace(activation="sigmoid"), s, ["note"], grad_norm_ratio=0.1, final_test_accuracy=0.5),
        record(DEEP, s, ["note"], grad_norm_ratio=1.0, final_test_accuracy=x)], 0.9, 0.3),
    (11, "L1 sparser than L2", lambda s, x: [
        note(MNIST, s, weight_norm=30.0, weight_sparsity=0.03),
        note(MNIST.replace(regularization="l1"), s, weight_norm=25.0, weight_sparsity=x),
        note(MNIST.replace(regularization="l2"), s, weight_norm=20.0, weight_sparsity=0.05)], 0.3, 0.01),
    (11, "L2 shrinks the weights", lambda s, x: regularized(s, "l2", {"weight_norm": x}, {"weight_norm": 30.0}),
     20.0, 35.0),
    (12, "unshuffled trains worse", lambda s, x: [
        note(Case(workload="cubic", protocol="note", batch_size=20, lr=0.01), s, final_test_loss=0.012),
        note(Case(workload="cubic", protocol="note", batch_size=20, lr=0.01, shuffle=False), s, final_test_loss=x)],
     0.05, 0.01),
    (13, "ends early", lambda s, x: [record(SLICE, s, ["note"], epochs_completed=30.0, final_test_accuracy=0.95),
                                     record(SLICE.replace(patience=3), s, ["note"], epochs_completed=x,
                                            final_test_accuracy=0.95)], 8.0, 30.0),
    (13, "keeps accuracy", lambda s, x: [record(SLICE, s, ["note"], epochs_completed=30.0, final_test_accuracy=0.95),
                                         record(SLICE.replace(patience=3), s, ["note"], epochs_completed=8.0,
                                                final_test_accuracy=x)], 0.952, 0.93),
    (14, "noise rescues a poor start", lambda s, x: [
        record(ZERO, s, ["note"], final_test_accuracy=0.11),
        record(ZERO.replace(grad_noise=0.01), s, ["note"], final_test_accuracy=x)], 0.9, 0.10),
    (15, "50–256 reach the target soonest", sweep, 10.0, 3.0),
    (16, "steadier features", lambda s, x: regularized(s, "batchnorm", {"hidden_drift": x}, {"hidden_drift": 0.5}),
     0.1, 0.8),
    (17, "zeroes about p", lambda s, x: dropout(s, zeroed=x), 0.5, 0.4),
    (17, "scales by 1/(1−p)", lambda s, x: dropout(s, scale=x), 2.0, 1.5),
]  # fmt: skip
IDS = [f"claim{n}-{name.split(',')[0].replace(' ', '_')}" for n, name, *_ in SCENARIOS]


def judged(tmp_path, scenario: Scenario, values: list[float]):
    number, name, build, *_ = scenario
    records = [r for seed, x in enumerate(values, start=1) for r in build(seed, x)]
    return part(claims_of(tmp_path, records)[number], name)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_each_rule_is_supported_when_every_seed_is_on_its_side(tmp_path, scenario):
    got = judged(tmp_path, scenario, [scenario[3]] * 3)
    assert got.verdict == SUPPORTED, got


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_each_rule_is_not_supported_when_every_seed_is_on_the_other_side(tmp_path, scenario):
    got = judged(tmp_path, scenario, [scenario[4]] * 3)
    assert got.verdict == NOT_SUPPORTED, got


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_each_rule_is_inconclusive_when_the_seeds_disagree(tmp_path, scenario):
    got = judged(tmp_path, scenario, [scenario[4], scenario[3], scenario[3]])
    assert got.verdict == INCONCLUSIVE and "seeds" in got.settle, got


@pytest.mark.parametrize("scenario", SCENARIOS[:3], ids=IDS[:3])
def test_one_seed_is_inconclusive_and_names_the_run_that_would_decide(tmp_path, scenario):
    got = judged(tmp_path, scenario, [scenario[3]])
    assert got.verdict == INCONCLUSIVE and "--repeats 3" in got.settle, got


def test_a_compound_claim_shows_each_part_and_fails_on_any_part(tmp_path):
    records = [r for seed in (1, 2, 3) for r in regimes(seed, b1={"step_time_ms_median": 2.0})]
    sgd = claims_of(tmp_path, records)[3]
    verdicts = {p.name: p.verdict for p in sgd.parts}
    assert verdicts == {"fast per step": NOT_SUPPORTED, "noisy": SUPPORTED, "needs more iterations": SUPPORTED}
    assert sgd.verdict == NOT_SUPPORTED


def test_batch_one_that_missed_after_more_steps_than_the_mini_batch_needed_needs_more(tmp_path):
    ran_long = [r for seed in (1, 2, 3) for r in regimes(seed, b1={"steps": 6000})]
    assert part(claims_of(tmp_path / "a", ran_long)[3], "needs more iterations").verdict == SUPPORTED
    ran_short = [r for seed in (1, 2, 3) for r in regimes(seed, b1={"steps": 200})]  # missed, but stopped early
    short = part(claims_of(tmp_path / "b", ran_short)[3], "needs more iterations")
    assert short.verdict == INCONCLUSIVE and "longer budget" in short.settle, short


def test_a_sweep_case_that_missed_within_less_time_than_the_best_needed_decides_nothing(tmp_path):
    def seed_records(seed: int, b1000_spent: float) -> list:
        records = sweep(seed, b20=10.0)  # inside 50-256 the best is 6 s; b20 took 10 s
        return [*records[:-1], note(SWEEP.replace(batch_size=1000), seed, train_time_s=b1000_spent)]

    ran_past = [r for seed in (1, 2, 3) for r in seed_records(seed, 20.0)]
    assert part(claims_of(tmp_path / "a", ran_past)[15], "50–256 reach the target soonest").verdict == SUPPORTED
    stopped_short = [r for seed in (1, 2, 3) for r in seed_records(seed, 4.0)]  # it might have reached by 6 s
    got = part(claims_of(tmp_path / "b", stopped_short)[15], "50–256 reach the target soonest")
    assert got.verdict == INCONCLUSIVE and "longer budget" in got.settle, got


def test_the_note_example_of_dropout_compares_its_input_row_with_the_note(tmp_path):
    def with_example(row: str) -> list:
        r = dropout(1)[0]
        resolved = {**r.resolved, "dropout_example_input": row, "dropout_example_mask": "10110" * 5}
        return [dataclasses.replace(r, resolved=resolved)]

    same = claims_of(tmp_path / "a", with_example("-1.5256,-0.7502,-0.6540,-1.6095,-0.1002"))[17]
    assert part(same, "the note's example").verdict == SUPPORTED
    assert "10110 10110" in part(same, "the note's example").figure
    other = claims_of(tmp_path / "b", with_example("-1.5256,-0.7502,-0.6540,-1.6095,-0.1003"))[17]
    assert part(other, "the note's example").verdict == NOT_SUPPORTED


def test_a_comparison_reads_only_cases_matched_on_every_other_field(tmp_path):
    # The Dropout case ran at batch 20, the plain one at batch 100: no matched pair, so no verdict.
    records = [note(MNIST, 1, generalization_gap=0.03), note(MNIST.replace(regularization="dropout", batch_size=20), 1,
                                                             generalization_gap=0.01)]  # fmt: skip
    assert part(claims_of(tmp_path, records)[5], "dropout").verdict == NOT_MEASURABLE


def test_a_run_without_the_note_suite_says_what_would_measure_each_claim(tmp_path):
    got = claims_of(tmp_path, [record(Case(), 1, ["optimizers"], throughput_samples_per_s=40_000.0)])
    assert {n for n, c in got.items() if c.verdict == NOT_MEASURABLE} == set(range(1, 18))
    assert all(p.settle for c in got.values() for p in c.parts)
    assert "DEVICE=cuda" in got[7].parts[0].settle


# --- the loss-noise definition on constructed curves ---------------------------------------------------


def test_loss_noise_counts_no_progress_as_noise():
    steps = np.arange(2000)
    smooth_fast = 2.3 * np.exp(-steps / 100) + 0.01  # falls by a factor of 200, without a wiggle
    assert loss_noise(smooth_fast) < 0.01


def test_loss_noise_grows_with_the_spread_around_the_trend():
    rng = np.random.default_rng(0)
    trend = 2.3 * np.exp(-np.arange(3000) / 800) + 0.05
    small, large = (loss_noise(trend * np.exp(rng.normal(0, sd, trend.size))) for sd in (0.1, 0.4))
    assert small is not None and large is not None
    # median |N(0, sd)| is 0.674 sd; the running mean takes a little of it
    assert 0.5 * 0.1 < small < 0.8 * 0.1 and 0.5 * 0.4 < large < 0.8 * 0.4


def test_loss_noise_sees_the_jumps_of_a_curve_that_only_falls():
    steps = np.arange(1000)
    staircase = np.exp(-steps / 300) * np.where(steps % 2, 1.0, 1.3)  # falls every other step, flat between
    assert loss_noise(staircase) > 0.1


def test_loss_noise_of_a_batch_one_curve_with_exact_zeros_is_measured():
    rng = np.random.default_rng(1)
    losses = np.where(rng.random(500) < 0.1, 0.0, rng.exponential(0.5, 500))
    assert loss_noise(losses) is not None


def test_loss_noise_needs_ten_steps():
    assert loss_noise([1.0, 0.9, 0.8, 0.7, 0.6]) is None


def test_the_report_and_summary_show_each_part_with_its_interval_rule_and_cases(tmp_path):
    from dnnbench.views.report import build_report

    journal = Journal(tmp_path / "run")
    for seed, step in zip((1, 2, 3), (2.0, 0.5, 0.5), strict=True):  # batch 1's step: the seeds disagree
        for r in regimes(seed, b1={"step_time_ms_median": step}):
            journal.append(r)
    files = build_report([tmp_path / "run"], out=tmp_path / "out" / "report.html")
    summary = files.markdown.read_text()
    row = next(line for line in summary.splitlines() if "| fast per step" in line)
    assert "inconclusive" in row and "over 3 seeds" in row and "step time at batch 1 / at the mini-batch" in row
    assert "more seeds would settle it" in row
    html = files.html.read_text()
    assert 'class="verdict-inconclusive">inconclusive' in html and "mnist_b1_adam_note_tensor_e1_t10s_cpu" in html


def test_a_seed_that_failed_on_one_side_leaves_the_part_undecided(tmp_path):
    records = [r for seed in (1, 2, 3) for r in regimes(seed, m={"throughput_samples_per_s": 5_000.0})]
    failed = dataclasses.replace(records[-2], status="diverged", reason="training loss became nan", metrics={})
    got = part(claims_of(tmp_path, [*records[:-2], failed, records[-1]])[1], "uses matrix math well")
    assert got.verdict == INCONCLUSIVE and "only 2 of 3 seeds" in got.figure, got


def test_cases_of_two_runs_are_compared_within_each_run_not_across(tmp_path):
    journal_a, journal_b = Journal(tmp_path / "a"), Journal(tmp_path / "b")
    for seed in (1, 2, 3):
        b1, mini, full = regimes(seed, m={"throughput_samples_per_s": 5_000.0})
        journal_a.append(b1)  # run a: batch 1 only
        journal_b.append(mini)  # run b: the mini-batch and the full batch
        journal_b.append(full)
    frame = load([tmp_path / "a", tmp_path / "b"])
    _, val = load_curves([tmp_path / "a", tmp_path / "b"])
    claims = {c.number: c for c in evaluate_claims(frame, val)}
    assert claims[1].verdict == NOT_MEASURABLE


def test_l1_against_l2_needs_both_in_one_setting(tmp_path):
    records = [
        note(MNIST, 1, weight_norm=30.0, weight_sparsity=0.03),
        note(MNIST.replace(regularization="l1"), 1, weight_sparsity=0.3),
        note(MNIST.replace(regularization="l2", batch_size=50), 1, weight_norm=20.0, weight_sparsity=0.05),
    ]
    assert part(claims_of(tmp_path, records)[11], "L1 sparser than L2").verdict == NOT_MEASURABLE


def test_the_batch_regimes_read_the_mini_batch_nearest_the_notes_100(tmp_path):
    records = []
    for seed in (1, 2, 3):
        records += regimes(seed)
        for size in (20, 1000):
            records.append(
                note(MNIST.replace(batch_size=size), seed, throughput_samples_per_s=1.0, step_time_ms_median=1.0)
            )
    got = claims_of(tmp_path, records)[1]
    assert "mnist_b100_adam_note_tensor_cpu" in got.cases and "batch 100 / batch 1" in got.parts[0].figure
    assert not any("b1000" in c or "b20_" in c for c in got.cases)


def test_a_sweep_where_only_sizes_outside_the_sweet_spot_reached_the_target_is_not_supported(tmp_path):
    records = []
    for seed in (1, 2, 3):
        times = {20: 5.0, 50: None, 100: None, 256: None, 1000: None}
        records += [note(SWEEP.replace(batch_size=b), seed, time_to_target_s=t, train_time_s=t or 20.0)
                    for b, t in times.items()]  # fmt: skip
    assert part(claims_of(tmp_path, records)[15], "50–256 reach the target soonest").verdict == NOT_SUPPORTED


def test_the_batch_regimes_prefer_a_setting_with_seeds_enough_for_an_interval(tmp_path):
    benchmark = Case(workload="fashion-mnist")
    records = regimes(1)  # the note's setting, one seed (as the quick matrix runs it)
    for seed in (1, 2):
        records += [
            record(
                benchmark.replace(batch_size=1, epochs=1, max_seconds=5.0),
                seed,
                ["batch"],
                throughput_samples_per_s=1e3,
            ),
            record(benchmark, seed, ["batch"], throughput_samples_per_s=4e4, time_to_target_s=5.0),
            record(benchmark.replace(batch_size="full", epochs=10), seed, ["batch"], throughput_samples_per_s=5e4),
        ]
    got = claims_of(tmp_path, records)[1]
    assert "fashion-mnist_b100_adam_tensor_cpu" in got.cases and got.parts[0].verdict == SUPPORTED, got


def test_a_case_that_failed_in_every_seed_cannot_leave_the_others_to_decide(tmp_path):
    records = []
    for seed in (1, 2, 3):
        b1, mini, full = regimes(seed, full={"time_to_target_s": 10.0})
        records += [b1, mini, dataclasses.replace(full, status="diverged", reason="loss became nan", metrics={})]
    got = part(claims_of(tmp_path, records)[1], "balances the extremes")
    assert got.verdict == INCONCLUSIVE and "a case failed" in got.figure, got


def test_a_case_that_failed_before_training_still_counts_its_seed(tmp_path):
    records = [r for seed in (1, 2, 3) for r in regimes(seed)]
    oom = record(MNIST.replace(batch_size=1, epochs=1, max_seconds=10.0), 3, ["note"], status="oom",
                 reason="out of memory", target=None, protocol="note")  # fmt: skip
    records = [r for r in records if not (r.seed == 3 and r.case_id == oom.case_id)] + [oom]
    got = part(claims_of(tmp_path, records)[2], "steadiest updates")
    assert got.verdict == INCONCLUSIVE and "only 2 of 3 seeds" in got.figure, got


def test_a_claim_with_a_part_not_measured_is_not_supported_whole(tmp_path):
    records = [r for seed in (1, 2, 3) for r in regularized(seed, "l2", {"generalization_gap": 0.01},
                                                            {"generalization_gap": 0.03})]  # fmt: skip
    gap = claims_of(tmp_path, records)[5]
    assert part(gap, "l2").verdict == SUPPORTED and part(gap, "l1").verdict == NOT_MEASURABLE
    assert gap.verdict == INCONCLUSIVE
