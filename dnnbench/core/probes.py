"""The calibration probes' registry: each probe's record key, its frame column, the gate's name for
normalizing by it, and whether it shares code with what is benchmarked. Calibration, frames, the gate
and baselines read it; none spells a probe's name on its own (measurement/calibration.py measures them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    key: str  # in records (calibration) and run.json (calibration_start / _end)
    column: str  # in results frames
    normalize: str  # the gate's --normalize / normalize = "…" name
    independent: bool  # shares no code with the cases: a torch regression does not move it
    meaning: str
    rate: str  # how the gate names what it normalized by

    @property
    def described(self) -> str:
        return self.rate + (" (independent of torch)" if self.independent else "")


_ALL = (
    Probe(
        "numpy_gemm_per_s",
        "calibration_numpy",
        "numpy",
        True,
        "a small multi-threaded GEMM in NumPy's own BLAS",
        "a NumPy GEMM's rate",
    ),
    Probe(
        "python_mops",
        "calibration_python",
        "python",
        True,
        "a fixed pure-Python loop: the interpreter's speed",
        "a pure-Python loop's rate",
    ),
    Probe(
        "reference_steps_per_s",
        "calibration_ref",
        "reference",
        False,
        "a small reference training step in torch",
        "the reference training step's rate",
    ),
    Probe("matmul_gflops", "calibration_gflops", "matmul", False, "a fixed torch matmul", "the matmul's GFLOP/s"),
)
PROBES: dict[str, Probe] = {p.key: p for p in _ALL}
MATMUL = "matmul_gflops"  # the probe whose drift within a run says the machine's speed changed
BY_NORMALIZE: dict[str, Probe] = {p.normalize: p for p in _ALL}
INDEPENDENT = tuple(p.key for p in _ALL if p.independent)
SHARED = tuple(p.key for p in _ALL if not p.independent)
COLUMNS = {p.key: p.column for p in _ALL}
