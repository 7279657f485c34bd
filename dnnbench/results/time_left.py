"""Time left in a long run: the per-pair cost model (definitions.shards.expected_cost) corrected by
what has run.

A pair of a case whose other seed has run is expected to take what that seed took; any other pair
takes its modelled cost times the ratio of measured to modelled seconds over the pairs done so far
(1 before any has run, so the first estimate is the bare model, made for a 2-core CPU). A pair that
crashed or diverged early says nothing about the others: it counts as done, not as a measure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field


@dataclass
class TimeLeft:
    """Expected seconds per item (in run order); `finished(item)` as each one ends."""

    expected: dict[Hashable, float]
    group_of: Callable[[Hashable], Hashable] = lambda item: item  # items of one group cost alike (a case's seeds)
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    actual: dict[Hashable, float] = field(default_factory=dict)
    atypical: set[Hashable] = field(default_factory=set)  # done, but no measure of what the rest cost
    _last: float = 0.0

    def __post_init__(self) -> None:
        self.started = self._last = self.clock()

    @classmethod
    def of(cls, items: Iterable[tuple[Hashable, float]], group_of: Callable[[Hashable], Hashable] | None = None,
           clock: Callable[[], float] = time.monotonic) -> TimeLeft:  # fmt: skip
        return cls(dict(items), group_of or (lambda item: item), clock)

    @property
    def total(self) -> int:
        return len(self.expected)

    @property
    def done(self) -> int:
        return len(self.actual)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def finished(self, item: Hashable, seconds: float | None = None, typical: bool = True) -> None:
        """Item ended; it took `seconds`, or (default) the time since the last item ended. An item that is
        not `typical` (it failed or stopped early) is done but teaches the estimate nothing."""
        now = self.clock()
        self.actual[item] = now - self._last if seconds is None else seconds
        if not typical:
            self.atypical.add(item)
        self._last = now

    def _measures(self) -> dict[Hashable, float]:
        return {item: s for item, s in self.actual.items() if item not in self.atypical}

    def correction(self) -> float:
        """Measured / modelled seconds over the typical items done (1.0 before any)."""
        measures = self._measures()
        modelled = sum(self.expected.get(item, 0.0) for item in measures)
        return sum(measures.values()) / modelled if modelled > 0 else 1.0

    def left(self) -> float:
        """Seconds until the last item ends, counted from the last item's end."""
        by_group: dict[Hashable, list[float]] = {}
        for item, seconds in self._measures().items():
            by_group.setdefault(self.group_of(item), []).append(seconds)
        c = self.correction()
        total = 0.0
        for item, cost in self.expected.items():
            if item in self.actual:
                continue
            seen = by_group.get(self.group_of(item))
            total += sum(seen) / len(seen) if seen else cost * c
        return total

    def left_now(self) -> float:
        """left(), less the time the current item has run already (never below 0)."""
        return max(0.0, self.left() - (self.clock() - self._last))

    def state(self) -> dict[str, float | int]:
        """What a log line of the estimate holds (the run folder's time_left.jsonl)."""
        return {"done": self.done, "total": self.total, "elapsed_s": round(self.elapsed(), 2),
                "left_s": round(self.left(), 2), "correction": round(self.correction(), 3)}  # fmt: skip
