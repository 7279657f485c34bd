"""Groups of cases the gate also judges as a whole: each batch-size class and each suite.

A slowdown confined to one kind of case (every batch-1 case, every loader case) is too small for a
case's own tolerance, which must allow the A/A noise of a single case, and is diluted in the mean over
all cases. The mean over the cases of one group averages that noise away like the aggregate does,
without the dilution (docs/gate.md).
"""

from __future__ import annotations

import pandas as pd

MIN_GROUP_CASES = 3  # a group of fewer cases is as noisy as a case: it is judged only per case


def batch_class(batch_size: object) -> str:
    """'batch 1', 'mini-batch' or 'full batch' from a record's batch_size ("1", "100", "full", …)."""
    text = str(batch_size)
    if text == "full":
        return "full batch"
    return "batch 1" if text == "1" else "mini-batch"


def case_groups(frame: pd.DataFrame, cases: list[str]) -> dict[str, list[str]]:
    """label → the cases (of `cases`) in it: one group per batch-size class and per suite. Which groups
    are judged depends on the cases a metric judged (MIN_GROUP_CASES inside, and not every case: that
    one is the aggregate), so the gates decide that, not this."""
    first = frame.drop_duplicates("case_id").set_index("case_id")
    first = first.loc[[c for c in cases if c in first.index]]
    groups: dict[str, list[str]] = {}
    if "batch_size" in first:
        for case_id, size in first["batch_size"].items():
            groups.setdefault(batch_class(size), []).append(str(case_id))
    if "suites" in first:
        for case_id, suites in first["suites"].items():
            for suite in dict.fromkeys(suites) if isinstance(suites, (tuple, list)) else ():
                groups.setdefault(f"suite {suite}", []).append(str(case_id))
    return dict(sorted(groups.items()))
