import pytest

from dnnbench.core.errors import BadInput
from dnnbench.definitions import fastpaths
from dnnbench.definitions.cases import Case
from dnnbench.definitions.devices import too_many_ranks
from dnnbench.definitions.matrices import SUITES
from dnnbench.definitions.plan import expand, skip_reason


def test_smoke_covers_every_axis():
    plan = expand("smoke")
    run = [p.case for p in plan if p.skip_reason is None]
    assert {c.workload for c in run} >= {"fashion-mnist", "cubic", "synthetic"}
    assert {c.batch_size for c in run} >= {1, 100, "full"}
    assert {c.optimizer for c in run} == {
        "sgd",
        "momentum",
        "nesterov",
        "adagrad",
        "rmsprop",
        "adam",
        "adamw",
        "adadelta",
    }
    assert {c.regularization for c in run} == {
        "none",
        "batchnorm",
        "dropout",
        "batchnorm+dropout",
        "l2",
        "l1",
    }
    assert {c.loader for c in run} == {"torchvision", "imagefiles", "tensor", "device"}
    assert {c.num_workers for c in run} >= {0, 1, 2}
    assert {c.workload for c in run} >= {"lenet5-fashion-mnist", "deep-fashion-mnist"}
    assert {c.activation for c in run} == {"relu", "sigmoid"} and {c.memory_format for c in run} == {
        "contiguous",
        "channels_last",
    }
    assert {s for p in plan for s in p.suites} == set(SUITES) - {"harness"}  # harness: the tool's own cost
    assert {c.optimizer_impl for c in run} >= {"default", "fused"}
    # Axis values this machine cannot run are planned and skipped with their reason, never dropped: bf16
    # needs oneDNN's bf16 (AVX512-BF16 or AMX), two ranks need two cores. Read what this machine offers.
    planned = [p.case for p in plan]
    assert {c.precision for c in planned} >= {"fp32", "bf16"} and {c.world_size for c in planned} == {1, 2}
    bf16_here = fastpaths._cpu_bf16()
    assert ("bf16" in {c.precision for c in run}) == bf16_here
    assert (2 in {c.world_size for c in run}) == (too_many_ranks(2, "cpu") is None)
    for p in plan:
        if p.case.precision == "bf16" and not bf16_here:
            assert "no bf16 support in oneDNN" in p.skip_reason


def test_meaningless_combinations_are_skipped_with_a_reason():
    assert "cpu" in skip_reason(Case(pin_memory=True))
    assert "no DataLoader workers" in skip_reason(Case(loader="device", num_workers=2))
    assert "image data set" in skip_reason(Case(workload="cubic", loader="torchvision"))
    assert "batch of one" in skip_reason(Case(batch_size=1, regularization="batchnorm"))
    assert "exceeds" in skip_reason(Case(batch_size=5000, train_samples=2000))
    assert skip_reason(Case()) is None
    # the smoke plan carries them rather than dropping them
    reasons = [p.skip_reason for p in expand("smoke") if p.skip_reason]
    assert any("pin_memory" in r for r in reasons)


def test_shared_cases_run_once_and_list_every_suite():
    plan = expand("smoke")
    ids = [p.id for p in plan]
    assert len(ids) == len(set(ids))
    shared = [p for p in plan if len(p.suites) > 1]
    assert shared and {"optimizers", "regularization"} <= set(shared[0].suites)


def test_repeats_seeds_and_overrides():
    plan = expand("smoke", repeats=3)
    assert {p.seed for p in plan} == {1, 2, 3}
    plan = expand("smoke", seeds=[7], overrides={"optimizer": "sgd"})
    assert {p.seed for p in plan} == {7}
    assert {p.case.optimizer for p in plan} == {"sgd"}
    # the eight optimizer cases collapsed into one, which keeps all its suites
    ids = [p.case.id for p in plan]
    assert len(ids) == len(set(ids))


def test_bad_plan_input():
    with pytest.raises(BadInput, match="unknown matrix 'huge'; choose from: smoke, quick, full, note"):
        expand("huge")
    with pytest.raises(BadInput, match="matrix 'seed' is now called 'note'"):
        expand("seed")
    with pytest.raises(BadInput, match="--repeats must be a positive integer"):
        expand("smoke", repeats=0)


def test_quick_runs_the_note_under_one_seed_unless_seeds_are_asked_for():
    default = expand("quick")
    seeds = {}
    for p in default:
        seeds.setdefault((p.case.id, p.suites), []).append(p.seed)
    assert {tuple(s) for (_, suites), s in seeds.items() if "note" in suites} == {(1,)}
    assert {tuple(s) for (_, suites), s in seeds.items() if "note" not in suites} == {(1, 2)}
    asked = expand("quick", repeats=3)
    assert {p.seed for p in asked if "note" in p.suites} == {1, 2, 3}
