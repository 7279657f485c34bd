"""Command-line options shared by the pytest front-end (pytest_plugin.py) and the CLI.

Kept free of torch imports so that `python -m dnnbench report` and `gate` start quickly.
"""

from __future__ import annotations

from dnnbench.definitions.devices import DEVICES
from dnnbench.definitions.matrices import DEFAULT_MATRIX, DEFAULT_REPEATS, MATRICES

DEFAULT_DEVICE = DEVICES[0]
_repeats = ", ".join(f"{name} {n}" for name, n in DEFAULT_REPEATS.items())

# The options that choose a plan, shared by the pytest front-end and the CLI (same spelling).
PLAN_OPTIONS: list[tuple[str, dict]] = [
    (
        "--matrix",
        {
            "default": DEFAULT_MATRIX,
            "metavar": "NAME",
            "help": f"named matrix: {', '.join(MATRICES)} (default {DEFAULT_MATRIX})",
        },
    ),
    ("--device", {"default": DEFAULT_DEVICE, "help": f"{', '.join(DEVICES)} or auto (default {DEFAULT_DEVICE})"}),
    (
        "--repeats",
        {"type": int, "default": None, "help": f"seeds 1..N per case (default per matrix: {_repeats})"},
    ),
    ("--seeds", {"default": None, "help": "explicit seeds, e.g. 1,2,3 (overrides --repeats)"}),
    (
        "--set",
        {
            "action": "append",
            "default": [],
            "dest": "dnnbench_set",
            "metavar": "FIELD=VALUE",
            "help": "override a Case field in every case, e.g. --set epochs=1 (repeatable)",
        },
    ),
    (
        "--workload",
        {
            "default": None,
            "metavar": "NAME|MODULE:ATTR|FILE.py",
            "help": "train every case of the matrix on this workload: a name, an installed plug-in, "
            "module:attribute or path/to/file.py[:attribute] (the note's own cases are left out)",
        },
    ),
    (
        "--data-dir",
        {"default": None, "help": "folder holding the data sets' IDX files (else $DNNBENCH_DATA)"},
    ),
    (
        "--shard",
        {"default": None, "metavar": "I/N", "help": "only shard I of N of the case x seed pairs (merge them after)"},
    ),
]


# What runs each commit or both sides several times over (ab, history --range) starts from the small matrix.
REPEATED_MATRIX = "smoke"


def plan_options(matrix_default: str = DEFAULT_MATRIX) -> list[tuple[str, dict]]:
    """PLAN_OPTIONS with another default matrix, said in its help."""
    matrix = {
        **dict(PLAN_OPTIONS)["--matrix"],
        "default": matrix_default,
        "help": f"named matrix: {', '.join(MATRICES)} (default {matrix_default})",
    }
    return [(flag, matrix if flag == "--matrix" else spec) for flag, spec in PLAN_OPTIONS]
