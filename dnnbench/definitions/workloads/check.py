"""A plug-in's first test drive: its splits, model and loss on four samples, before a run writes anything.

A workload from outside the package can be wrong in ways the engine would only meet mid-run (a model
whose output does not match the labels, a loss that is not a scalar). `check` meets them first and says
so in one line naming the workload, so that a broken plug-in costs the user no half-written run.
"""

from __future__ import annotations

import dataclasses
import os

from dnnbench.core.errors import BadInput
from dnnbench.definitions.workloads.base import ModelChoices, Workload

SAMPLES = 4


def check(workload: Workload, data_dir: str | os.PathLike | None = None, spec: str | None = None) -> None:
    """Raise BadInput when the workload's data, model and loss do not fit together; the message names
    the plug-in as the user spelled it (`spec`) and the workload's name."""
    import torch

    who = f"workload plug-in {spec!r} ({workload.name})" if spec else f"workload {workload.name!r}"

    def fail(what: str, exc: BaseException | None = None) -> BadInput:
        detail = f": {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}" if exc else ""
        return BadInput(f"{who}: {what}{detail}")

    try:
        workload.require(data_dir)
        workload.missing(data_dir)
    except BadInput:
        raise
    except Exception as exc:
        raise fail("finding its data failed", exc) from None
    try:
        splits = workload.make_splits("benchmark", None, None, data_dir)
    except BadInput:
        raise
    except Exception as exc:
        raise fail("make_splits failed", exc) from None
    for split_name in ("train", "val", "test"):
        split = getattr(splits, split_name, None)
        if split is None or not isinstance(split.x, torch.Tensor) or not isinstance(split.y, torch.Tensor):
            raise fail(f"make_splits gave no tensors for its {split_name} split")
        if len(split.x) != len(split.y) or len(split.y) == 0:
            raise fail(f"its {split_name} split has {len(split.x)} inputs and {len(split.y)} targets")
    x, y = splits.train.x[:SAMPLES], splits.train.y[:SAMPLES]
    for choices in _choices(workload):  # every model a case may ask for, on every split's inputs
        try:
            model = workload.build_model(choices)
        except Exception as exc:
            raise fail(f"build_model failed for {_described(choices)}", exc) from None
        if not isinstance(model, torch.nn.Module):
            raise fail(f"build_model returned a {type(model).__name__}, not a torch.nn.Module")
        for split_name in ("train", "val", "test"):
            inputs = getattr(splits, split_name).x[:SAMPLES]
            try:
                model(inputs)
            except Exception as exc:
                raise fail(
                    f"its model ({_described(choices)}) does not take its {split_name} inputs of shape "
                    f"{tuple(inputs.shape)}",
                    exc,
                ) from None
    model = workload.build_model(ModelChoices(workload.hidden))
    out = model(x)
    try:
        loss = workload.make_loss()(out, y)
    except Exception as exc:
        raise fail(
            f"its loss does not take the model's output {tuple(out.shape)} and the targets {tuple(y.shape)}", exc
        ) from None
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise fail(f"its loss is not a scalar (got {shape})")
    try:
        workload.task.count(out.detach(), y, float(loss.detach()))
        loss.backward()
    except Exception as exc:
        raise fail(f"its {workload.task.metric} cannot be computed from outputs {tuple(out.shape)}", exc) from None


def _choices(workload: Workload) -> list[ModelChoices]:
    """The plain model, and each BatchNorm / Dropout / activation variant the workload says it takes."""
    plain = ModelChoices(workload.hidden)
    out = [plain]
    if workload.places_batchnorm:
        out.append(dataclasses.replace(plain, batchnorm=True))
    if workload.places_dropout:
        out.append(dataclasses.replace(plain, dropout_p=0.5))
    out += [dataclasses.replace(plain, activation=a) for a in workload.activations if a != plain.activation]
    return out


def _described(choices: ModelChoices) -> str:
    parts = [f"widths {choices.widths}", choices.activation]
    parts += ["BatchNorm"] * choices.batchnorm + ["Dropout"] * (choices.dropout_p is not None)
    return ", ".join(parts)
