"""How a claim of the note is judged: each part compares an estimate over seeds (a bootstrap interval,
results/intervals.py) with the claim's threshold, and only an interval wholly on one side decides.

- supported: the interval lies wholly on the claim's side of its threshold;
- not supported: it lies wholly on the other side;
- inconclusive: it straddles the threshold, or one seed gave no interval; the part says what would settle it;
- not measurable here: the run has no cases for it; the part names the run that would have them.

With 2 or 3 seeds a 95% bootstrap interval of the mean spans the lowest to the highest seed, so
"supported" then means every seed agrees (from 4 seeds on, one seed may sit across the threshold). A claim
is supported when every part is, not supported when any part is not, and inconclusive otherwise (a part
not measured here included).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dnnbench.results.intervals import RatioInterval, mean_interval, ratio_interval

SUPPORTED, NOT_SUPPORTED = "supported", "not supported"
INCONCLUSIVE, NOT_MEASURABLE = "inconclusive", "not measurable here"
MIN_SEEDS = 2
MORE_SEEDS = 'more seeds would settle it (make bench MATRIX=note ARGS="--repeats 5")'
SEEDS_LOST = "every seed measured on both sides: see why the others failed or missed (the report's status column)"
ONE_SEED = 'one seed gives no interval: run seeds 1-3 (make bench MATRIX=note ARGS="--repeats 3")'


@dataclass(frozen=True)
class Estimate:
    """A figure over seeds: its point (geometric mean of ratios, or mean of values) and 95% interval."""

    interval: RatioInterval
    kind: str  # "ratio" or "value"
    missing: int = 0  # seeds without a figure on both sides (a failed run, a missed target): the part is undecided

    @classmethod
    def ratios(cls, values: Sequence[float] | np.ndarray) -> Estimate | None:
        data = np.asarray(values, dtype=float)
        usable = np.isfinite(data) & (data > 0)
        return cls(ratio_interval(data[usable]), "ratio", int((~usable).sum())) if usable.any() else None

    @classmethod
    def values(cls, values: Sequence[float] | np.ndarray) -> Estimate | None:
        data = np.asarray(values, dtype=float)
        usable = np.isfinite(data)
        return cls(mean_interval(data[usable]), "value", int((~usable).sum())) if usable.any() else None

    def text(self, fmt: Callable[[float], str] = lambda v: f"{v:.3g}") -> str:
        i = self.interval
        if i.n < MIN_SEEDS:
            return f"{fmt(i.point)} (1 seed)"
        return f"{fmt(i.point)} [{fmt(i.low)}, {fmt(i.high)}] over {i.n} seeds"


@dataclass(frozen=True)
class Part:
    """One part of a claim, judged on its own."""

    name: str
    verdict: str
    figure: str  # the estimate and what it is of
    rule: str  # the rule in one line
    settle: str = ""  # what would settle an inconclusive or unmeasured part


def decide(estimate: Estimate, *, above: float | None = None, below: float | None = None) -> tuple[str, str]:
    """(verdict, what would settle it) for 'the figure is above `above`' or 'below `below`'."""
    i = estimate.interval
    if i.n < MIN_SEEDS:
        return INCONCLUSIVE, ONE_SEED
    if above is not None:
        on_side, off_side = i.low > above, i.high <= above
    elif below is not None:
        on_side, off_side = i.high < below, i.low >= below
    else:
        raise ValueError("decide needs above= or below=")
    if on_side:
        return SUPPORTED, ""
    if off_side:
        return NOT_SUPPORTED, ""
    return INCONCLUSIVE, MORE_SEEDS


def decide_inside(estimate: Estimate, low: float, high: float) -> tuple[str, str]:
    """(verdict, what would settle it) for 'the figure lies within [low, high]'."""
    i = estimate.interval
    if i.n < MIN_SEEDS:
        return INCONCLUSIVE, ONE_SEED
    if low <= i.low and i.high <= high:
        return SUPPORTED, ""
    if i.high < low or i.low > high:
        return NOT_SUPPORTED, ""
    return INCONCLUSIVE, MORE_SEEDS


def judged(
    name: str,
    rule: str,
    estimate: Estimate | None,
    figure: str | Callable[[Estimate], str],
    *,
    above: float | None = None,
    below: float | None = None,
    inside: tuple[float, float] | None = None,
    missing: str = "no seed measured both sides",
    settle: str = "",
) -> Part:
    """A part judged on `estimate` against its threshold; inconclusive with `missing` (and `settle`, what would
    measure it) when there is none, and when a seed has no figure on one side (Estimate.missing): a seed that
    failed, or missed a target undecidably, must not leave the verdict to the rest."""
    if estimate is None:
        return Part(name, INCONCLUSIVE, missing, rule, settle or MORE_SEEDS)
    text = figure(estimate) if callable(figure) else f"{figure} {estimate.text()}"
    if estimate.missing:
        of = estimate.interval.n + estimate.missing
        short = f"{text} (only {estimate.interval.n} of {of} seeds measured on both sides)"
        return Part(name, INCONCLUSIVE, short, rule, settle or SEEDS_LOST)
    verdict, how = decide_inside(estimate, *inside) if inside else decide(estimate, above=above, below=below)
    return Part(name, verdict, text, rule, how)


def unmeasured(name: str, rule: str, why: str, settle: str) -> Part:
    return Part(name, NOT_MEASURABLE, why, rule, settle)


def none_measured(
    number: int, text: str, rules: dict[str, str], why: str, settle: str, also: Sequence[Part] = ()
) -> Claim:
    """A claim this run has no cases for: each part (name → rule) not measurable, for the same reason."""
    return Claim(number, text, (*(unmeasured(name, rule, why, settle) for name, rule in rules.items()), *also))


def combine(parts: Sequence[Part]) -> str:
    """Not supported if any part is; supported only if every part is (a part not measured here leaves the
    claim inconclusive: what it says was not all tested); not measurable if no part was measured."""
    verdicts = [p.verdict for p in parts]
    if all(v == NOT_MEASURABLE for v in verdicts):
        return NOT_MEASURABLE
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return INCONCLUSIVE


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    parts: tuple[Part, ...]
    cases: tuple[str, ...] = field(default=())  # the case ids it read

    @property
    def verdict(self) -> str:
        return combine(self.parts)

    @property
    def figure(self) -> str:
        """Every part with its verdict and figure, in one line (summary.md, the command line)."""
        return "; ".join(f"{p.name}: {p.verdict}, {p.figure}" for p in self.parts)

    @property
    def settle(self) -> str:
        return "; ".join(dict.fromkeys(p.settle for p in self.parts if p.settle))
