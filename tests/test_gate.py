"""The gate on hand-made runs whose verdicts are checkable by hand, through the real CLI."""

import json

import numpy as np
import pandas as pd
import pytest

from dnnbench.core.machine import machine_id
from dnnbench.core.record import Calibration
from dnnbench.definitions.cases import Case
from dnnbench.results import gate
from dnnbench.results.gate import statistics
from dnnbench.results.journal import Journal, write_run_meta
from dnnbench.views import gate as gate_view
from tests.conftest import TEST_MACHINE, record, run_cli

CASES = [Case(optimizer=o) for o in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")]


def machine(speed: float, torch_factor: float = 1.0) -> dict[str, float]:
    """Every calibration probe of a machine of the given speed; `torch_factor` slows the probes that run
    torch only (a slower torch)."""
    return {
        "matmul_gflops": speed * torch_factor,
        "reference_steps_per_s": speed * torch_factor,
        "numpy_gemm_per_s": speed,
        "python_mops": speed,
    }


def make_run(
    folder,
    throughput=1000.0,
    accuracy=0.86,
    memory=1e9,
    gflops=100.0,
    torch="2.14.1",
    cases=CASES,
    spread=(0.98, 1.0, 1.02),
    status="ok",
    slow=None,
    case_gflops=None,
    fingerprint=None,
):
    """A run of `cases` × 3 seeds; `slow` maps a case index to a throughput factor; `case_gflops` maps a
    case index to the calibration its records carry (as the engine measures before and after a case)."""
    journal = Journal(folder)
    for i, case in enumerate(cases):
        factor = (slow or {}).get(i, 1.0)
        for seed, s in enumerate(spread, start=1):
            calibration = None
            if case_gflops and i in case_gflops:
                speed = case_gflops[i]  # both calibration probes scale with the machine here
                calibration = Calibration(machine(speed), machine(speed))
            r = record(
                case,
                seed,
                ["optimizers"],
                status=status,
                reason="training loss became nan at step 3" if status == "diverged" else "",
                throughput_samples_per_s=throughput * factor * s,
                final_test_accuracy=accuracy,
                peak_memory_bytes=memory,
                time_to_target_s=10.0 / (factor * s),
                calibration=calibration,
            )
            journal.append(r)
    speed = machine(gflops)
    write_run_meta(
        folder,
        {
            "env": {"device": "cpu", "torch": torch, "torch_threads": 2, "fingerprint": fingerprint or TEST_MACHINE},
            "calibration_start": speed,
            "calibration_end": speed,
        },
    )
    return folder


def run_gate(baseline, current, *extra):
    return run_cli("gate", "--baseline", str(baseline), "--current", str(current), *extra)


def test_identical_runs_pass(tmp_path):
    out = run_gate(make_run(tmp_path / "a"), make_run(tmp_path / "b"))
    assert out.returncode == 0, out.stdout
    assert out.stdout.strip().splitlines()[-1] == "gate: PASS: 6 common cases within tolerance"


def test_a_clear_regression_fails(tmp_path):
    base = make_run(tmp_path / "a")
    cur = make_run(tmp_path / "b", slow={2: 0.3})  # nesterov at 30% of its throughput
    out = run_gate(base, cur)
    assert out.returncode == 1
    assert "gate: FAIL: 2 regression(s) in 6 common cases" in out.stdout  # throughput and time to target
    rows = [line for line in out.stdout.splitlines() if "REGRESSED" in line]
    assert all(CASES[2].id in line for line in rows)
    assert any("throughput_samples_per_s" in line and "-70.0%" in line for line in rows)


def test_noise_sized_changes_pass(tmp_path):
    base = make_run(tmp_path / "a")
    cur = make_run(tmp_path / "b", spread=(0.9, 1.05, 1.1), accuracy=0.855, memory=1.05e9)
    out = run_gate(base, cur)
    assert out.returncode == 0, out.stdout


def test_beyond_tolerance_but_within_noise_is_not_a_regression(tmp_path):
    # the current seeds straddle the baseline's: the median is far off, the interval includes no change
    base = make_run(tmp_path / "a")
    cur = make_run(tmp_path / "b", spread=(0.2, 0.3, 1.3))
    result = gate.run_gate(gate.load_side(base), gate.load_side(cur), gate.GateConfig())
    verdicts = {f.verdict for f in result.findings if f.metric == "throughput_samples_per_s" and f.scope == "case"}
    assert verdicts == {"noise"}


def test_accuracy_drop_in_points(tmp_path):
    base = make_run(tmp_path / "a")
    assert run_gate(base, make_run(tmp_path / "b", accuracy=0.85)).returncode == 0  # 1 point: within 2
    out = run_gate(base, make_run(tmp_path / "c", accuracy=0.80))  # 6 points
    assert out.returncode == 1
    assert "final_test_accuracy" in out.stdout and "-6.00 pt" in out.stdout


def test_a_broad_small_slowdown_is_caught_by_the_aggregate(tmp_path):
    base = make_run(tmp_path / "a")
    cur = make_run(tmp_path / "b", slow=dict.fromkeys(range(6), 0.8))  # every case 25% slower
    result = gate.run_gate(gate.load_side(base), gate.load_side(cur), gate.GateConfig())
    per_case = [f for f in result.regressions if f.scope == "case"]
    assert per_case == []  # each case is within its own (wide) tolerance
    aggregate = [f for f in result.regressions if f.scope == "aggregate"]
    assert {f.metric for f in aggregate} == {"throughput_samples_per_s", "time_to_target_s"}
    assert result.exit_code == 1


def test_calibration_normalizes_a_faster_machine(tmp_path):
    base = make_run(tmp_path / "a", gflops=100.0)
    faster = make_run(tmp_path / "b", throughput=2000.0, gflops=200.0)
    result = gate.run_gate(gate.load_side(base), gate.load_side(faster), gate.GateConfig())
    f = next(f for f in result.findings if f.metric == "throughput_samples_per_s")
    assert f.change_pct == pytest.approx(100.0) and f.normalized_change_pct == pytest.approx(0.0, abs=1e-9)
    # and a slower machine does not trip it either
    slower = make_run(tmp_path / "c", throughput=400.0, gflops=40.0)
    assert run_gate(base, slower).returncode == 0


def test_contention_during_one_case_is_normalized_by_its_own_calibration(tmp_path):
    # Another job slowed case 0 to half speed; the matmul measured around that case saw the same.
    every = dict.fromkeys(range(6), 100.0)
    base = make_run(tmp_path / "a", case_gflops=every)
    contended = make_run(tmp_path / "b", slow={0: 0.5}, case_gflops={**every, 0: 50.0})
    result = gate.run_gate(gate.load_side(base), gate.load_side(contended), gate.GateConfig())
    assert result.normalization.startswith("per case, by a NumPy GEMM's rate (independent of torch) measured before")
    f = next(f for f in result.findings if f.case_id == CASES[0].id and f.metric == "throughput_samples_per_s")
    assert f.change_pct == pytest.approx(-50.0) and f.normalized_change_pct == pytest.approx(0.0, abs=1e-9)
    assert f.slope == 1.0  # the calibration is constant within each side: plain division
    assert any(w.startswith(f"the baseline {base.name} is a single run") for w in result.warnings)
    assert f.verdict == "ok" and result.exit_code == 0
    # the same slowdown without the matching calibration is a regression
    slowed = make_run(tmp_path / "c", slow={0: 0.3}, case_gflops=every)
    assert gate.run_gate(gate.load_side(base), gate.load_side(slowed), gate.GateConfig()).exit_code == 1


def test_diverged_now_is_a_regression(tmp_path):
    base = make_run(tmp_path / "a")
    out = run_gate(base, make_run(tmp_path / "b", status="diverged"))
    assert out.returncode == 1
    assert "current run: diverged: training loss became nan" in out.stdout


def test_missing_cases_fail_unless_allowed_and_the_way_to_allow_them_is_named(tmp_path):
    # A current run that lost cases (a crash while recording them) must not pass as "only in the baseline".
    base = make_run(tmp_path / "a")
    cur = make_run(tmp_path / "b", cases=CASES[:4])
    out = run_gate(base, cur)
    assert out.returncode == 1
    assert f"only in the baseline (2): {CASES[5].id}, {CASES[4].id}" in out.stdout  # sorted
    assert "gate: FAIL: 2 case(s) not recorded (--allow-missing accepts them)" in out.stdout
    allowed = run_gate(base, cur, "--allow-missing")
    assert allowed.returncode == 0 and "only in the baseline (2)" in allowed.stdout


def test_a_case_failing_on_one_seed_now_is_a_regression_though_the_others_give_figures(tmp_path):
    base = make_run(tmp_path / "a")
    journal = Journal(tmp_path / "b")
    for case in CASES:
        for seed in (1, 2, 3):
            failed = case is CASES[1] and seed == 2
            journal.append(
                record(
                    case, seed, ["optimizers"], status="error" if failed else "ok",
                    reason="RuntimeError: boom" if failed else "", throughput_samples_per_s=None if failed else 1000.0,
                    final_test_accuracy=None if failed else 0.86, peak_memory_bytes=None if failed else 1e9,
                    time_to_target_s=None if failed else 10.0,
                )
            )  # fmt: skip
    out = run_gate(base, tmp_path / "b")
    assert out.returncode == 1, out.stdout
    (row,) = [line for line in out.stdout.splitlines() if "REGRESSED" in line]
    assert CASES[1].id in row and "current run: error in seed 2 of 3: RuntimeError: boom" in row


def test_a_case_skipped_now_that_the_baseline_measured_fails_unless_allowed(tmp_path):
    base = make_run(tmp_path / "a")
    cur = make_run(tmp_path / "b", cases=CASES[1:])
    Journal(tmp_path / "b").append(record(CASES[0], 1, ["optimizers"], status="skipped", reason="no bf16 here"))
    out = run_gate(base, cur)
    assert out.returncode == 1 and f"{CASES[0].id}: measured in the baseline, skipped now: no bf16 here" in out.stdout
    assert run_gate(base, cur, "--allow-missing").returncode == 0


def test_two_of_three_seeds_missing_the_target_fails_though_the_third_is_as_fast(tmp_path):
    # A missed target is "not reached", not a value left out: the one seed that still reaches it in the
    # same time must not hide the two that no longer do.
    base = make_run(tmp_path / "a")
    journal = Journal(tmp_path / "b")
    for case in CASES:
        for seed in (1, 2, 3):
            missed = case is CASES[3] and seed != 1
            journal.append(
                record(
                    case, seed, ["optimizers"], throughput_samples_per_s=1000.0, final_test_accuracy=0.86,
                    peak_memory_bytes=1e9, time_to_target_s=None if missed else 10.0,
                )
            )  # fmt: skip
    out = run_gate(base, tmp_path / "b")
    assert out.returncode == 1, out.stdout
    (row,) = [line for line in out.stdout.splitlines() if "REGRESSED" in line]
    assert CASES[3].id in row and "time_to_target_s" in row
    assert "the target was reached in 1 of 3 seeds (baseline: 3 of 3)" in row


def test_no_cpu_probe_scales_a_cuda_case(tmp_path):
    # The machine's CPU ran its probes 2x faster in the current run; the GPU cases did not change speed.
    # Divided by the CPU probe they would look 50% slower.
    gpu = [c.replace(device="cuda") for c in CASES]
    base = make_run(tmp_path / "a", cases=gpu, gflops=100.0)
    cur = make_run(tmp_path / "b", cases=gpu, gflops=200.0)
    result = gate.run_gate(gate.load_side(base), gate.load_side(cur), gate.GateConfig())
    assert result.normalization.startswith("none: CUDA cases") and result.exit_code == 0
    f = next(f for f in result.findings if f.metric == "throughput_samples_per_s")
    assert f.normalized_change_pct == pytest.approx(0.0, abs=1e-9) and f.slope is None


def test_environment_differences_are_warned(tmp_path):
    out = run_gate(make_run(tmp_path / "a"), make_run(tmp_path / "b", torch="2.15.0"))
    assert "warning: environments differ: torch is '2.14.1' in the baseline and '2.15.0' now" in out.stdout


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "no baseline at"),
        ("corrupt", "is not a dnnbench record"),
        ("disjoint", "no cases in common"),
        ("bad-tolerance", "tolerance for throughput_samples_per_s must be a finite number > 0"),
        ("unknown-metric", "unknown gate setting 'speed'"),
    ],
)
def test_input_errors_exit_2_with_one_line(tmp_path, setup, expected):
    base = make_run(tmp_path / "a")
    cur = make_run(tmp_path / "b")
    extra = []
    if setup == "missing":
        base = tmp_path / "nowhere"
    elif setup == "corrupt":
        (base / "records.jsonl").write_text("{not json\n" + (base / "records.jsonl").read_text())
    elif setup == "disjoint":
        cur = make_run(tmp_path / "c", cases=[Case(optimizer="adadelta")])
    elif setup == "bad-tolerance":
        extra = ["--tolerance", "throughput_samples_per_s=-1"]
    else:
        extra = ["--tolerance", "speed=0.1"]
    out = run_gate(base, cur, *extra)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and expected in out.stderr and "Traceback" not in out.stderr


def test_tolerances_from_pyproject_and_command_line(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.dnnbench.gate]\nfinal_test_accuracy = 10.0\naggregate = 0.2\n")
    config = gate.load_config(pyproject, ["throughput_samples_per_s=0.5"])
    assert config.tolerances["final_test_accuracy"] == 10.0 and config.aggregate == 0.2
    assert config.tolerances["throughput_samples_per_s"] == 0.5
    base = make_run(tmp_path / "a")
    cur = make_run(tmp_path / "b", accuracy=0.80)
    assert run_gate(base, cur, "--config", str(pyproject)).returncode == 0  # 6 points < 10


def test_markdown_for_a_pull_request(tmp_path):
    md = tmp_path / "gate.md"
    out = run_gate(make_run(tmp_path / "a"), make_run(tmp_path / "b", slow={0: 0.3}), "--markdown", str(md))
    assert out.returncode == 1
    text = md.read_text()
    assert text.startswith("## dnnbench gate: ❌ FAIL")
    header = text.split("\n| case ", 1)[1].splitlines()[0]
    assert [c.strip() for c in header.split("|")[1:7]] == [
        "metric",
        "baseline",
        "current",
        "Δ raw",
        "Δ normalized",
        "95% CI",
    ]
    assert "REGRESSED" in text


def test_saved_baseline_by_name(tmp_path):
    run = make_run(tmp_path / "run")
    saved = run_cli("baseline", str(run), "--name", "mine", "--dir", str(tmp_path / "baselines"))
    assert saved.returncode == 0, saved.stderr
    assert "(18 records from 1 run(s))" in saved.stdout
    saved_here = tmp_path / "baselines" / "mine" / machine_id(TEST_MACHINE)  # one folder per machine
    assert json.loads((saved_here / "run.json").read_text())["env"]["torch"] == "2.14.1"
    again = run_cli("baseline", str(run), "--name", "mine", "--dir", str(tmp_path / "baselines"))
    assert again.returncode == 2 and "--force" in again.stderr


def test_a_baseline_merged_from_several_runs_uses_all_their_seeds(tmp_path):
    runs = [
        make_run(tmp_path / name, throughput=t, gflops=g) for name, t, g in (("r1", 900.0, 90.0), ("r2", 1100.0, 110.0))
    ]
    saved = run_cli("baseline", *map(str, runs), "--name", "two", "--dir", str(tmp_path / "baselines"))
    assert saved.returncode == 0 and "(36 records from 2 run(s))" in saved.stdout
    side = gate.load_side(gate.resolve_baseline(str(tmp_path / "baselines" / "two"), TEST_MACHINE).path)
    assert len(side.frame) == 36 and side.calibration("reference_steps_per_s") == pytest.approx(100.0)
    assert {r for r in side.frame["run"]} == {machine_id(TEST_MACHINE)}
    result = gate.run_gate(side, gate.load_side(make_run(tmp_path / "now")), gate.GateConfig())
    f = next(f for f in result.findings if f.metric == "throughput_samples_per_s")
    assert f.n_baseline == 6 and f.n_current == 3 and result.exit_code == 0


def test_accuracy_is_compared_on_the_seeds_both_runs_have(tmp_path):
    # Different seeds learn to different accuracies; the same seed reproduces exactly.
    base, cur = Journal(tmp_path / "a"), Journal(tmp_path / "b")
    for seed, accuracy in ((1, 0.80), (2, 0.86), (3, 0.87)):
        base.append(record(CASES[0], seed, ["optimizers"], final_test_accuracy=accuracy))
    cur.append(record(CASES[0], 1, ["optimizers"], final_test_accuracy=0.80))
    result = gate.run_gate(gate.load_side(tmp_path / "a"), gate.load_side(tmp_path / "b"), gate.GateConfig())
    (finding,) = [f for f in result.findings if f.metric == "final_test_accuracy"]
    assert finding.n_baseline == 1 and finding.change_pct == pytest.approx(0.0) and finding.verdict == "ok"


def test_normalization_can_be_chosen_or_switched_off(tmp_path):
    base = make_run(tmp_path / "a", gflops=100.0)
    faster = make_run(tmp_path / "b", throughput=2000.0, gflops=200.0)
    for normalize, expected in (("numpy", 0.0), ("python", 0.0), ("matmul", 0.0), ("reference", 0.0), ("none", 100.0)):
        config = gate.GateConfig().with_overrides({"normalize": normalize})
        result = gate.run_gate(gate.load_side(base), gate.load_side(faster), config)
        f = next(f for f in result.findings if f.metric == "throughput_samples_per_s")
        assert f.normalized_change_pct == pytest.approx(expected, abs=1e-9), normalize
    out = run_gate(base, faster, "--tolerance", "normalize=gpu")
    assert (
        out.returncode == 2
        and "unknown normalization 'gpu'; choose from: numpy, python, reference, matmul, none" in out.stderr
    )


def append_state(journal, ref, slope=0.5, slowdown=1.0, seeds=3, probes=None):
    """Every case × `seeds` seeds on a machine whose reference step runs at `ref` steps/s; each case follows the
    machine's speed with the given slope: throughput 1000 × (ref/1000)^slope, times `slowdown`. `probes`: the
    calibration every record carries (default: every probe at `ref`)."""
    for case in CASES:
        for seed, s in enumerate((0.99, 1.0, 1.01)[:seeds], start=1):
            tp = 1000 * (ref / 1000) ** slope * slowdown * s
            r = record(
                case,
                seed,
                ["optimizers"],
                throughput_samples_per_s=tp,
                final_test_accuracy=0.86,
                peak_memory_bytes=1e9,
                time_to_target_s=1e4 / tp,
                calibration=Calibration(probes or machine(ref), probes or machine(ref)),
            )
            journal.append(r)


def test_each_cases_sensitivity_to_the_machine_is_fitted_on_a_baseline_that_saw_it_vary(tmp_path):
    # The shared VM flips between a fast and a slow state; the cases move half as much as the reference
    # step (slope 0.5). A baseline recorded in both states shows it; plain division would over-correct.
    baseline = Journal(tmp_path / "base")
    for ref in (1000.0, 600.0, 800.0):  # three runs
        append_state(baseline, ref=ref)
    fast = Journal(tmp_path / "fast")
    append_state(fast, ref=1600.0)
    result = gate.run_gate(gate.load_side(tmp_path / "base"), gate.load_side(tmp_path / "fast"), gate.GateConfig())
    f = next(f for f in result.findings if f.metric == "throughput_samples_per_s")
    assert f.slope == pytest.approx(0.5, abs=0.02)
    assert not any("single run" in w for w in result.warnings)
    ttt = next(f for f in result.findings if f.metric == "time_to_target_s")
    assert ttt.slope == pytest.approx(-0.5, abs=0.02) and abs(ttt.normalized_change_pct) < 2
    # a current run of one seed is judged on all the baseline's seeds: speed does not depend on the seed
    one_seed = Journal(tmp_path / "one-seed")
    append_state(one_seed, ref=1600.0, seeds=1)
    result = gate.run_gate(gate.load_side(tmp_path / "base"), gate.load_side(tmp_path / "one-seed"), gate.GateConfig())
    f = next(f for f in result.findings if f.metric == "throughput_samples_per_s")
    assert f.n_baseline == 9 and f.slope == pytest.approx(0.5, abs=0.02) and result.exit_code == 0
    assert f.change_pct > 20 and abs(f.normalized_change_pct) < 2
    assert result.exit_code == 0, gate_view.display_table(result, only_notable=True)
    # plain division (slope 1) would have called the fast run about 20% slower
    b, c = gate.load_side(tmp_path / "base").frame, gate.load_side(tmp_path / "fast").frame
    b, c = b[b.case_id == CASES[0].id], c[c.case_id == CASES[0].id]
    ref = statistics.SpeedReference("calibration_ref")
    nb, nc, _ = statistics.adjusted("throughput_samples_per_s", b, c, ref, slope=1.0)
    assert np.median(nc) / np.median(nb) < 0.85
    # a real 25% slowdown of every case in the fast state is still caught
    slower = Journal(tmp_path / "slower")
    append_state(slower, ref=1600.0, slowdown=0.8)
    result = gate.run_gate(gate.load_side(tmp_path / "base"), gate.load_side(tmp_path / "slower"), gate.GateConfig())
    assert [f.metric for f in result.regressions] == ["throughput_samples_per_s", "time_to_target_s"]
    assert all(f.scope == "aggregate" for f in result.regressions)


def test_brief_output_keeps_the_aggregates_and_what_needs_a_look(tmp_path):
    base = make_run(tmp_path / "a")
    out = run_gate(base, make_run(tmp_path / "b", slow={2: 0.3}), "--brief")
    rows = [line for line in out.stdout.splitlines() if "_cpu " in line or "ALL " in line]
    assert {line.split()[0] for line in rows} == {CASES[2].id, "ALL"}
    assert sum("REGRESSED" in line for line in rows) == 2 and out.returncode == 1


def test_a_slower_torch_is_not_divided_away_and_the_disagreement_is_reported(tmp_path):
    # torch's backward slowed: the cases and the torch probes run 30% slower, NumPy's GEMM does not.
    every = dict.fromkeys(range(6), 100.0)
    base = make_run(tmp_path / "a", case_gflops=every)
    journal = Journal(tmp_path / "b")
    for case in CASES:
        for seed, s in enumerate((0.98, 1.0, 1.02), start=1):
            journal.append(
                record(
                    case,
                    seed,
                    ["optimizers"],
                    throughput_samples_per_s=700.0 * s,
                    final_test_accuracy=0.86,
                    peak_memory_bytes=1e9,
                    time_to_target_s=10.0 / (0.7 * s),
                    calibration=Calibration(machine(100.0, 0.7), machine(100.0, 0.7)),
                )
            )
    write_run_meta(tmp_path / "b", {"env": {"device": "cpu", "torch": "2.14.1", "torch_threads": 2}})
    out = run_gate(base, tmp_path / "b")
    assert out.returncode == 1, out.stdout
    assert "warning: the calibration disagrees: the reference training step (torch) moved -30%" in out.stdout
    assert "while the independent probe (NumPy GEMM) moved +0%" in out.stdout
    aggregate = [line for line in out.stdout.splitlines() if line.strip().startswith("ALL 6 CASES")]
    assert "-30.0%" in aggregate[0] and "REGRESSED" in aggregate[0]
    # asked to normalize by the torch reference step, which would divide the slowdown away, the gate
    # refuses while the probes disagree: it compares raw and says why
    divided = run_gate(base, tmp_path / "b", "--tolerance", "normalize=reference")
    assert divided.returncode == 1
    assert "the calibration probes disagree (normalize = reference was not applied)" in divided.stdout


def _probes(torch: float, numpy: float) -> dict[str, float]:
    return {"matmul_gflops": torch, "reference_steps_per_s": torch, "numpy_gemm_per_s": numpy, "python_mops": numpy}


def _run_with_probes(folder, throughput: float, torch: float, numpy: float):
    """Every case × 3 seeds at `throughput`, each record carrying these probes' rates."""
    append_state(Journal(folder), ref=1000.0, slope=0.0, slowdown=throughput / 1000, probes=_probes(torch, numpy))
    write_run_meta(folder, {"env": {"device": "cpu", "torch": "2.14.1", "torch_threads": 2}})
    return folder


def test_a_numpy_only_drift_does_not_erase_a_twenty_percent_regression(tmp_path):
    # Every case 20% slower; NumPy's GEMM 12% slower on its own (its BLAS changed), torch's probes unchanged.
    # Divided by the NumPy probe the slowdown would shrink to 9% and pass the 12% aggregate; the probes
    # disagree beyond what they may, so the gate compares raw and says why.
    base = _run_with_probes(tmp_path / "a", 1000.0, torch=100.0, numpy=100.0)
    current = _run_with_probes(tmp_path / "b", 800.0, torch=100.0, numpy=88.0)
    result = gate.run_gate(gate.load_side(base), gate.load_side(current), gate.GateConfig())
    (aggregate,) = [f for f in result.findings if f.scope == "aggregate" and f.metric == "throughput_samples_per_s"]
    assert aggregate.verdict == "regressed" and aggregate.normalized_change_pct == pytest.approx(-20.0, abs=0.01)
    assert result.exit_code == 1 and result.normalization.startswith("none: the calibration probes disagree")
    assert result.calibration_note is not None and "moved +0%" in result.calibration_note
    # a machine slower as a whole (every probe and every case 12%) is still divided away
    slower_machine = _run_with_probes(tmp_path / "c", 880.0, torch=88.0, numpy=88.0)
    result = gate.run_gate(gate.load_side(base), gate.load_side(slower_machine), gate.GateConfig())
    assert result.exit_code == 0 and result.calibration_note is None


def test_probes_may_drift_apart_as_far_as_the_baselines_own_runs_did(tmp_path):
    # A baseline whose runs show the two probes wandering ±8% apart: a 14% gap now is within that.
    runs = [
        _run_with_probes(tmp_path / f"a{i}", 1000.0, torch=100.0 * g, numpy=100.0)
        for i, g in enumerate((0.92, 1.0, 1.08, 0.95, 1.05))
    ]
    merged = gate.Side("base", pd.concat([gate.load_side(r).frame for r in runs]), {})
    current = gate.load_side(_run_with_probes(tmp_path / "b", 1000.0, torch=114.0, numpy=100.0))
    assert gate.judge.disagreement_limit(merged) > 0.15
    assert gate.judge.calibration_agreement(merged, current) is None
    single = gate.load_side(runs[1])
    assert gate.judge.calibration_agreement(single, current) is not None  # one run: the 12% floor


def test_slopes_are_fitted_on_the_baseline_alone(tmp_path):
    # The baseline's calibration did not vary, so it says nothing about a slope: plain division (1).
    # The current runs' calibration varies while their throughput does not (a probe that wandered);
    # fitted on them too, the slope would come out near 0 and the probe's drift would pass unexamined.
    base = Journal(tmp_path / "base")
    for _ in range(3):
        append_state(base, ref=1000.0)
    current = Journal(tmp_path / "cur")
    for ref in (700.0, 1300.0, 1000.0):
        append_state(current, ref=ref, slope=0.0)
    result = gate.run_gate(gate.load_side(tmp_path / "base"), gate.load_side(tmp_path / "cur"), gate.GateConfig())
    f = next(f for f in result.findings if f.metric == "throughput_samples_per_s")
    assert f.slope == 1.0


def _baseline_of_runs(tmp_path, scales, slow_case=None, noisy_case=None):
    """A baseline of len(scales) runs; each run shifts every case by its scale (the A/A spread between
    runs); `noisy_case` gets three times that spread."""
    runs = []
    for i, scale in enumerate(scales):
        widen = {noisy_case: 1 + 3 * (scale - 1)} if noisy_case is not None else {}
        factors = {j: widen.get(j, scale) for j in range(len(CASES))}
        runs.append(make_run(tmp_path / f"aa{i}", slow=factors, spread=(0.995, 1.0, 1.005)))
    out = run_cli("baseline", *map(str, runs), "--name", "multi", "--dir", str(tmp_path / "baselines"))
    assert out.returncode == 0, out.stderr
    return tmp_path / "baselines" / "multi" / machine_id(TEST_MACHINE)


def test_a_baseline_of_several_runs_gives_each_case_its_own_tolerance(tmp_path):
    scales = (0.98, 1.0, 1.02, 0.99, 1.01)
    baseline = _baseline_of_runs(tmp_path, scales, noisy_case=3)
    # one case 25% slower: within the default 2x, beyond its own A/A spread (sd 1.6%)
    current = make_run(tmp_path / "cur", slow={1: 0.75}, spread=(0.995, 1.0, 1.005))
    assert not gate.run_gate(gate.load_side(baseline), gate.load_side(current), gate.GateConfig()).failed  # off
    config = gate.GateConfig().with_overrides({"spread_multiplier": 4})
    result = gate.run_gate(gate.load_side(baseline), gate.load_side(current), config)
    assert {(f.case_id, f.metric, f.scope) for f in result.regressions} >= {
        (CASES[1].id, "throughput_samples_per_s", "case")
    }
    assert result.exit_code == 1
    tol = {f.case_id: f for f in result.findings if f.metric == "throughput_samples_per_s" and f.scope == "case"}
    assert tol[CASES[1].id].tolerance_source.startswith("5 runs, A/A sd")
    assert tol[CASES[0].id].tolerance < 0.25 < 1.0  # tighter than the default, from the case's own spread
    assert tol[CASES[3].id].tolerance > 2 * tol[CASES[0].id].tolerance  # the noisy case gets a wider one
    out = run_gate(baseline, current, "--tolerance", "spread_multiplier=4")
    assert "5 runs, A/A sd" in out.stdout and out.returncode == 1
    # the same slowdown against one of those runs alone: the default tolerance, not caught per case
    single = gate.run_gate(gate.load_side(tmp_path / "aa1"), gate.load_side(current), config)
    assert not any(f.scope == "case" for f in single.regressions)
    # and a run like the baseline's own passes
    aa = make_run(tmp_path / "aa-new", slow=dict.fromkeys(range(len(CASES)), 1.015), spread=(0.995, 1.0, 1.005))
    assert gate.run_gate(gate.load_side(baseline), gate.load_side(aa), config).exit_code == 0


def test_a_bad_spread_multiplier_is_one_line_exit_2(tmp_path):
    base = make_run(tmp_path / "a")
    out = run_gate(base, base, "--tolerance", "spread_multiplier=abc")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "spread_multiplier" in out.stderr


MIXED = [Case(batch_size=b, optimizer=o) for b in (1, 100) for o in ("sgd", "momentum", "adagrad", "adam")]


def test_a_slowdown_of_one_batch_class_fails_through_its_group(tmp_path):
    # The four batch-1 cases 20% slower (25% more step time): each case is within its own tolerance and
    # the mean over all eight (-10.6%) within the aggregate's 12%; the batch-1 group against the rest fails.
    base = make_run(tmp_path / "a", cases=MIXED)
    cur = make_run(tmp_path / "b", cases=MIXED, slow=dict.fromkeys(range(4), 0.8))
    result = gate.run_gate(gate.load_side(base), gate.load_side(cur), gate.GateConfig())
    assert {(f.scope, f.case_id.split(" (")[0]) for f in result.regressions} == {("group", "GROUP batch 1")}
    (group,) = [f for f in result.regressions if f.metric == "throughput_samples_per_s"]
    assert group.normalized_change_pct == pytest.approx(-20.0, abs=0.5)
    assert "against the other 4 cases" in group.note
    assert result.exit_code == 1


def test_a_whole_run_moving_together_is_no_groups_regression(tmp_path):
    # Every case 10% slower: the machine as a whole (the aggregate's to judge, within its 12%), not a
    # group slower than the rest.
    base = make_run(tmp_path / "a", cases=MIXED)
    cur = make_run(tmp_path / "b", cases=MIXED, slow=dict.fromkeys(range(8), 0.9))
    result = gate.run_gate(gate.load_side(base), gate.load_side(cur), gate.GateConfig())
    groups = [f for f in result.findings if f.scope == "group" and f.metric == "throughput_samples_per_s"]
    assert {f.case_id.split(" (")[0] for f in groups} == {"GROUP batch 1", "GROUP mini-batch"}
    assert all(abs(f.normalized_change_pct) < 0.5 and f.verdict == "ok" for f in groups)
    assert result.exit_code == 0


def test_the_other_cases_getting_faster_does_not_convict_an_unchanged_group(tmp_path):
    # The four mini-batch cases 30% faster (an optimization), the batch-1 cases unchanged: against the
    # rest, batch 1 is 23% slower, but its own change is none.
    base = make_run(tmp_path / "a", cases=MIXED)
    cur = make_run(tmp_path / "b", cases=MIXED, slow=dict.fromkeys(range(4, 8), 1.3))
    result = gate.run_gate(gate.load_side(base), gate.load_side(cur), gate.GateConfig())
    (batch1,) = [
        f for f in result.findings if f.case_id.startswith("GROUP batch 1") and f.metric == "throughput_samples_per_s"
    ]
    assert batch1.normalized_change_pct == pytest.approx(-23.1, abs=0.5) and batch1.verdict == "ok"
    assert "the other cases moved" in batch1.note
    assert result.exit_code == 0


def test_a_group_with_too_few_other_cases_is_not_judged(tmp_path):
    # Three batch-1 cases and two others: the two could pass their own noise off as the group's.
    cases = MIXED[:3] + MIXED[4:6]
    base = make_run(tmp_path / "a", cases=cases)
    cur = make_run(tmp_path / "b", cases=cases, slow=dict.fromkeys(range(3), 0.7))
    result = gate.run_gate(gate.load_side(base), gate.load_side(cur), gate.GateConfig())
    assert [f for f in result.findings if f.scope == "group"] == []
