"""A run's curves and figures as TensorBoard event files, so a run can be browsed with `tensorboard --logdir DIR`
beside the trainings a team already tracks there:

    DIR/<case_id>/seed<seed>/events.out.tfevents.…   one TensorBoard run per case × seed, side by side

Every scalar is plotted against the training step, the one axis every point of a record carries (the samples
seen at each evaluation are a scalar of their own, eval/samples):

    train/loss          the training loss per step (a record of a long run holds the means of equal buckets of
                        steps, each at its bucket's last step); a non-finite loss (stored as null) is left out
    eval/<key>          every number of each evaluation: the target metric under its own name (val_accuracy,
                        val_mse; test_* under the note's protocol), val_loss, samples, epoch, train_time_s, and
                        the gradient norms and drift where the record has them
    final/<metric>      each figure the record carries (core/metrics.py), at the run's last step
    final/phase_<name>  the share of step time in each phase
    final/target_reached  1 or 0, where the workload has a target

and the case's fields as hparams, one session per case × seed with the seeds of a case in one session group.
TensorBoard keeps a scalar as float32 (about 7 significant digits).

The files are written with the tensorboard package's own event writer rather than torch.utils.tensorboard's
SummaryWriter (a thin layer over it): a view loads no torch (tests/test_architecture.py).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dnnbench.core.errors import BadInput
from dnnbench.core.record import Record

MISSING = (
    "the tensorboard export format needs the optional tensorboard extra, which is not installed: "
    "pip install 'dnnbench[tensorboard]'"
)
EVENT_FILES = "events.out.tfevents.*"

Scalar = tuple[str, int, float]  # (tag, step, value)
HParam = bool | float | str


@dataclass
class Exported:
    """What an export wrote: the TensorBoard runs (folders under the output) and one line per record that
    was exported partly (not finished ok) or skipped (nothing measured)."""

    folder: Path
    runs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _writer_api() -> tuple[Any, Any, Any, Any]:
    """The tensorboard pieces the export needs, or the one-line BadInput naming the extra to install."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.hparams.summary_v2 import hparams_pb
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError:
        raise BadInput(MISSING) from None
    return Event, Summary, hparams_pb, EventFileWriter


def require() -> None:
    """Fail with the install line before any work when the tensorboard package is missing."""
    _writer_api()


def _number(value: Any) -> float | None:
    """A finite number as float; None for anything else (null, NaN, text, a flag)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def scalars(record: Record) -> list[Scalar]:
    """Every scalar of one record, in the order written: the loss curve, the evaluations, the final figures."""
    out: list[Scalar] = []
    curves = record.curves or {}
    loss = curves.get("loss") or {}
    for step, value in zip(loss.get("step") or [], loss.get("loss") or [], strict=False):
        number = _number(value)
        if number is not None and _number(step) is not None:
            out.append(("train/loss", int(step), number))
    metric_name = record.target.metric if record.target else "val_metric"
    for point in curves.get("val") or []:
        step = _number(point.get("step"))
        for key, value in point.items():
            number = _number(value)
            if step is not None and number is not None and key != "step":
                out.append((f"eval/{metric_name if key == 'val_metric' else key}", int(step), number))
    figures: list[tuple[str, Any]] = list(record.metrics.items())
    figures += [(f"phase_{phase}", share) for phase, share in (record.phase_fractions or {}).items()]
    figures = [(name, number) for name, value in figures if (number := _number(value)) is not None]
    if not out and not figures:
        return []  # nothing measured (a case skipped, or one that failed before training)
    if record.target is not None and record.target.value is not None:
        figures.append(("target_reached", 1.0 if record.target.reached else 0.0))
    steps = _number(record.metrics.get("steps"))
    last = int(steps) if steps is not None else max((step for _, step, _ in out), default=0)
    return out + [(f"final/{name}", last, number) for name, number in figures]


def _hparam_values(records: Sequence[Record]) -> dict[tuple[str, int], dict[str, HParam]]:
    """Each record's case fields as hparams, one type per field over the whole run (TensorBoard's HParams
    table wants a column of one type): flags stay flags, all-numeric fields numbers, anything else text."""
    names = sorted({name for r in records for name in r.case})
    kinds: dict[str, type] = {}
    for name in names:
        values = [r.case.get(name) for r in records]
        if all(isinstance(v, bool) for v in values):
            kinds[name] = bool
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            kinds[name] = float
        else:
            kinds[name] = str
    out: dict[tuple[str, int], dict[str, HParam]] = {}
    for r in records:
        hp: dict[str, HParam] = {}
        for name in names:
            value: Any = r.case.get(name)
            if kinds[name] is bool:
                hp[name] = bool(value)
            elif kinds[name] is float:
                hp[name] = float(value)
            else:
                hp[name] = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        out[r.key] = hp
    return out


def _wall_time(record: Record) -> float:
    """When the record was finished (the events' wall time), else now."""
    if record.finished_at:
        try:
            return datetime.fromisoformat(record.finished_at).timestamp()
        except ValueError:
            pass
    return time.time()


def _folder_name(case_id: str) -> str:
    """A case id as one folder name: anything but letters, digits and ._=+,- becomes _."""
    name = re.sub(r"[^A-Za-z0-9._=+,-]", "_", case_id)
    return "_" if name in ("", ".", "..") else name


def _label(record: Record) -> str:
    return f"{record.case_id} seed {record.seed}: {record.status}" + (f" ({record.reason})" if record.reason else "")


def write(records: Iterable[Record], folder: str | Path) -> Exported:
    """Write one TensorBoard run per record under `folder`. A record that did not finish ok is written with
    what it has; one with nothing measured is skipped; both get a line in the result's notes. A folder that
    already holds event files is refused: a second export into it would show every point twice."""
    Event, Summary, hparams_pb, EventFileWriter = _writer_api()
    folder = Path(folder)
    if folder.is_dir() and next(folder.rglob(EVENT_FILES), None) is not None:
        raise BadInput(
            f"{folder} already holds TensorBoard event files (a second export would show every point twice); "
            "remove it or choose another --output"
        )
    records = list(records)
    hparams = _hparam_values(records)
    exported = Exported(folder)
    seen: dict[str, int] = {}
    for record in records:
        values = scalars(record)
        if not values:
            exported.notes.append(f"{_label(record)}; nothing measured, skipped")
            continue
        run = f"{_folder_name(record.case_id)}/seed{record.seed}"
        seen[run] = seen.get(run, 0) + 1
        if seen[run] > 1:  # the same case × seed twice (records merged by hand): both kept, apart
            run += f"-{seen[run]}"
        if record.status != "ok":
            exported.notes.append(f"{_label(record)}; exported what it recorded")
        wall = _wall_time(record)
        writer = EventFileWriter(str(folder / run))
        try:
            session = hparams_pb(hparams[record.key], trial_id=record.case_id, start_time_secs=wall)
            writer.add_event(Event(wall_time=wall, step=0, summary=session))
            for tag, step, value in values:
                summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
                writer.add_event(Event(wall_time=wall, step=step, summary=summary))
        finally:
            writer.close()
        exported.runs.append(run)
    return exported
