"""Case: one point of the benchmark space, validated on construction, with a stable readable id.

A Case is a frozen dataclass of plain values, so it travels into records as JSON and back. Fields
left at None take the workload's or optimizer's default; the engine records the resolved values.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, TypeGuard

from dnnbench.core.errors import BadInput, unknown_choice
from dnnbench.definitions.devices import DEVICES
from dnnbench.definitions.loaders import LOADER_KINDS
from dnnbench.definitions.optimizers import OPTIMIZERS
from dnnbench.definitions.regularization import REGULARIZATION_KINDS
from dnnbench.definitions.workloads import WORKLOADS, get_workload

# benchmark: train on the training split, validate on a split held out of it, target on validation.
# note: the study note's own protocol: train on all the training data, evaluate on the test set every epoch.
PROTOCOLS = ("benchmark", "note")
# How the learning rate follows the global batch when world_size grows (per-rank batch fixed): none keeps it,
# linear multiplies it by world_size (Goyal et al. 2017), sqrt by its square root (Krizhevsky 2014).
LR_RULES = ("none", "linear", "sqrt")
# PyTorch's fast paths, as case axes (definitions/fastpaths.py says where each applies).
OPTIMIZER_IMPLS = ("default", "for-loop", "foreach", "fused")  # default: torch's own choice for the device
COMPILE_MODES = ("off", "default", "max-autotune-no-cudagraphs", "reduce-overhead")
PRECISIONS = ("fp32", "bf16", "tf32")  # bf16: autocast; tf32: CUDA's matmul mode
MEMORY_FORMATS = ("contiguous", "channels_last")  # channels_last: NHWC for a convolutional model and its inputs
ACTIVATIONS = ("relu", "sigmoid", "tanh")  # the hidden layers' nonlinearity (the note: sigmoid's gradients vanish)


@dataclass(frozen=True)
class Case:
    """One training configuration. `seed` is not part of it: every case runs under several seeds."""

    workload: str = "fashion-mnist"
    batch_size: int | str = 100  # an integer ≥ 1, or "full" for the whole training split
    optimizer: str = "adam"
    lr: float | None = None  # None → the optimizer's default (optimizers.py)
    regularization: str = "none"
    dropout_p: float = 0.5  # nn.Dropout's default, as in the study note
    weight_decay: float = 1e-4  # the L2 strength when regularization is "l2"
    l1_lambda: float = 1e-5  # the L1 strength when regularization is "l1": loss + λ·Σ|w|
    hidden: tuple[int, ...] | None = None  # None → the workload's MLP (seed: one layer of 500)
    loader: str = "tensor"
    num_workers: int = 0
    pin_memory: bool = False
    device: str = "cpu"
    epochs: int | None = None  # budget; None → the workload's
    max_seconds: float | None = None  # training-time budget; None → the workload's
    train_samples: int | None = None  # use only the first n of the training split (smoke runs)
    eval_samples: int | None = None  # cap on validation / test / train-evaluation set sizes
    eval_every: int | None = None  # samples between validations; None → the workload's
    features: int | None = None  # input width of the synthetic workload
    threads: int | None = None  # torch intra-op threads; None → torch's default (all cores)
    warmup_steps: int = 10  # steps left out of throughput statistics (capped at a quarter of the run)
    protocol: str = "benchmark"  # see PROTOCOLS
    beta2: float | None = None  # Adam's / AdamW's second-moment decay; None → torch's default (0.999)
    world_size: int = 1  # processes training data-parallel (torchrun, DistributedDataParallel); batch_size is global
    lr_rule: str = "none"  # see LR_RULES: the learning rate for world_size > 1
    optimizer_impl: str = "default"  # see OPTIMIZER_IMPLS
    compile: str = "off"  # torch.compile mode of the model, see COMPILE_MODES
    precision: str = "fp32"  # see PRECISIONS
    memory_format: str = "contiguous"  # see MEMORY_FORMATS
    activation: str = "relu"  # see ACTIVATIONS
    shuffle: bool = True  # reshuffle the training data every epoch (the note: "must be True"); False: stored order
    patience: int | None = None  # early stopping: end when the validation loss has not fallen for this many evaluations
    stop_at_target: bool = False  # end when the target is reached (a time-to-target sweep needs no more)
    grad_noise: float | None = None  # η of annealed Gaussian gradient noise, variance η/(1+t)^0.55 (Neelakantan 2015)
    init_scale: float | None = None  # multiply the initial weights by this (0: all-zero start); None: torch's init

    def __post_init__(self) -> None:
        validate(self)
        _canonicalize(self)

    @property
    def id(self) -> str:
        return case_id(self)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["hidden"] is not None:
            d["hidden"] = list(d["hidden"])
        return d

    def replace(self, **changes: Any) -> Case:
        return dataclasses.replace(self, **changes)


# --- validation -------------------------------------------------------------------------------


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    """A finite int or float (not a bool): inf and nan are refused wherever a number is read."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive_int_or_none(name: str, v: object) -> None:
    if v is not None and (not _is_int(v) or v < 1):
        raise BadInput(f"{name} must be a positive integer, got {v!r}")


def validate(c: Case) -> None:
    """Raise BadInput naming the first bad field; called by Case on construction."""
    workload = get_workload(c.workload)
    if c.batch_size != "full" and (not _is_int(c.batch_size) or c.batch_size < 1):
        raise BadInput(f"batch_size must be a positive integer or 'full', got {c.batch_size!r}")
    if c.optimizer not in OPTIMIZERS:
        raise unknown_choice("optimizer", c.optimizer, OPTIMIZERS)
    if c.lr is not None and (not _is_number(c.lr) or not c.lr > 0):
        raise BadInput(f"lr must be a finite number > 0, got {c.lr!r}")
    if c.regularization not in REGULARIZATION_KINDS:
        raise unknown_choice("regularization", c.regularization, REGULARIZATION_KINDS)
    if not _is_number(c.dropout_p) or not 0 <= c.dropout_p < 1:
        raise BadInput(f"dropout_p must be in [0, 1), got {c.dropout_p!r}")
    for name in ("weight_decay", "l1_lambda"):
        value = getattr(c, name)
        if not _is_number(value) or value < 0:
            raise BadInput(f"{name} must be a finite number >= 0, got {value!r}")
    if c.hidden is not None and (not isinstance(c.hidden, tuple) or not all(_is_int(h) and h >= 1 for h in c.hidden)):
        raise BadInput(f"hidden must be layer widths >= 1 such as 500 or 256,128, got {c.hidden!r}")
    if c.loader not in LOADER_KINDS:
        raise unknown_choice("loader", c.loader, LOADER_KINDS)
    if not _is_int(c.num_workers) or c.num_workers < 0:
        raise BadInput(f"num_workers must be an integer >= 0, got {c.num_workers!r}")
    if not isinstance(c.pin_memory, bool):
        raise BadInput(f"pin_memory must be true or false, got {c.pin_memory!r}")
    if c.device not in DEVICES:
        raise unknown_choice("device", c.device, (*DEVICES, "auto"))
    for name in ("epochs", "train_samples", "eval_samples", "eval_every", "features", "threads"):
        _positive_int_or_none(name, getattr(c, name))
    if c.max_seconds is not None and (not _is_number(c.max_seconds) or not c.max_seconds > 0):
        raise BadInput(f"max_seconds must be a finite number > 0, got {c.max_seconds!r}")
    if c.protocol not in PROTOCOLS:
        raise unknown_choice("protocol", c.protocol, PROTOCOLS)
    if c.protocol == "note" and not workload.in_note:
        raise BadInput(f"the note's protocol applies to the note's workloads, not {c.workload!r}")
    if c.beta2 is not None:
        if not _is_number(c.beta2) or not 0 <= c.beta2 < 1:
            raise BadInput(f"beta2 must be in [0, 1), got {c.beta2!r}")
        if "betas" not in OPTIMIZERS[c.optimizer].options:
            raise BadInput(f"beta2 applies to adam and adamw, not {c.optimizer!r}")
    if not _is_int(c.world_size) or c.world_size < 1:
        raise BadInput(f"world_size must be a positive integer, got {c.world_size!r}")
    if c.lr_rule not in LR_RULES:
        raise unknown_choice("lr_rule", c.lr_rule, LR_RULES)
    if c.world_size > 1 and c.batch_size != "full" and _is_int(c.batch_size) and c.batch_size % c.world_size:
        raise BadInput(f"batch_size {c.batch_size} (global) does not split evenly over world_size {c.world_size}")
    for name, choices in (
        ("optimizer_impl", OPTIMIZER_IMPLS),
        ("compile", COMPILE_MODES),
        ("precision", PRECISIONS),
        ("memory_format", MEMORY_FORMATS),
        ("activation", ACTIVATIONS),
    ):
        if getattr(c, name) not in choices:
            raise unknown_choice(name, getattr(c, name), choices)
    for name in ("shuffle", "stop_at_target"):
        if not isinstance(getattr(c, name), bool):
            raise BadInput(f"{name} must be true or false, got {getattr(c, name)!r}")
    _positive_int_or_none("patience", c.patience)
    if c.patience and c.protocol == "note":
        raise BadInput("patience stops on the validation loss, and the note's protocol validates on the test set: "
                       "use protocol=benchmark for early stopping")  # fmt: skip
    if c.world_size > 1:
        for name in ("patience", "stop_at_target", "grad_noise"):
            if getattr(c, name):
                raise BadInput(
                    f"{name} applies to one process; data-parallel training (world_size > 1) does not take it"
                )
    for name in ("grad_noise", "init_scale"):
        value = getattr(c, name)
        if value is not None and (not _is_number(value) or value < 0):
            raise BadInput(f"{name} must be a finite number >= 0, got {value!r}")
    if not _is_int(c.warmup_steps) or c.warmup_steps < 0:
        raise BadInput(f"warmup_steps must be an integer >= 0, got {c.warmup_steps!r}")
    if c.features is not None and workload.default_features is None:
        takes = ", ".join(n for n, w in WORKLOADS.items() if w.default_features is not None)
        raise BadInput(f"features applies to workloads whose data has no fixed width ({takes}), not {c.workload!r}")
    n_train = workload.train_size(c.protocol)
    if c.train_samples is not None and c.train_samples > n_train:
        raise BadInput(
            f"train_samples {c.train_samples} exceeds the {n_train} samples of the {c.workload} training split"
        )


def _canonicalize(c: Case) -> None:
    """Spell a default one way: an explicit value equal to the default becomes None, so the same
    configuration always gets the same id (the note's Adam lr=0.001 is Adam's default)."""
    workload = get_workload(c.workload)
    defaults = {
        "lr": OPTIMIZERS[c.optimizer].default_lr,
        "hidden": workload.hidden,
        "epochs": workload.epochs,
        "max_seconds": workload.max_seconds,
        "eval_every": workload.eval_every if c.protocol == "benchmark" else None,  # the note's: every epoch
        "features": workload.default_features,
        "beta2": OPTIMIZERS[c.optimizer].options.get("betas", (None, None))[1],
    }
    for name, default in defaults.items():
        if getattr(c, name) is not None and getattr(c, name) == default:
            object.__setattr__(c, name, None)


# --- ids ----------------------------------------------------------------------------------------

_DEFAULTS = Case.__dataclass_fields__


def _default(name: str) -> Any:
    return _DEFAULTS[name].default


def _g(v: float) -> str:
    return f"{v:g}"


# Tokens for fields shown only when they differ from the Case default, in id order.
_OPTIONAL_TOKENS: dict[str, Any] = {
    "lr": lambda c: f"lr{_g(c.lr)}",
    "beta2": lambda c: f"beta{_g(c.beta2)}",
    "regularization": lambda c: c.regularization,
    "dropout_p": lambda c: f"p{_g(c.dropout_p)}",
    "weight_decay": lambda c: f"wd{_g(c.weight_decay)}",
    "l1_lambda": lambda c: f"l1w{_g(c.l1_lambda)}",
    "hidden": lambda c: "h" + ("x".join(str(h) for h in c.hidden) or "0"),
    "activation": lambda c: c.activation,
    "init_scale": lambda c: f"init{_g(c.init_scale)}",
    "grad_noise": lambda c: f"gnoise{_g(c.grad_noise)}",
    "protocol": lambda c: c.protocol,
}
_BUDGET_TOKENS: dict[str, Any] = {
    "num_workers": lambda c: f"w{c.num_workers}",
    "pin_memory": lambda c: "pin",
    "epochs": lambda c: f"e{c.epochs}",
    "max_seconds": lambda c: f"t{_g(c.max_seconds)}s",
    "train_samples": lambda c: f"n{c.train_samples}",
    "eval_samples": lambda c: f"v{c.eval_samples}",
    "eval_every": lambda c: f"ev{c.eval_every}",
    "features": lambda c: f"f{c.features}",
    "threads": lambda c: f"th{c.threads}",
    "warmup_steps": lambda c: f"wu{c.warmup_steps}",
    "world_size": lambda c: f"ws{c.world_size}",
    "lr_rule": lambda c: f"lr{c.lr_rule}",
    "optimizer_impl": lambda c: c.optimizer_impl,
    "compile": lambda c: "compile" if c.compile == "default" else f"compile-{c.compile}",
    "precision": lambda c: c.precision,
    "memory_format": lambda c: "chlast",
    "shuffle": lambda c: "noshuffle",
    "patience": lambda c: f"es{c.patience}",
    "stop_at_target": lambda c: "untiltarget",
}


def case_id(c: Case) -> str:
    """Readable and unique: workload, batch, optimizer, loader and device always; other fields when
    they differ from the defaults. Used by `list`, pytest ids, records, `profile --case` and -k."""
    parts = [c.workload, f"b{c.batch_size}", c.optimizer]
    parts += [tok(c) for name, tok in _OPTIONAL_TOKENS.items() if getattr(c, name) != _default(name)]
    parts.append(c.loader)
    parts += [tok(c) for name, tok in _BUDGET_TOKENS.items() if getattr(c, name) != _default(name)]
    parts.append(c.device)
    return "_".join(parts)


# --- overrides from the command line --------------------------------------------------------------


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _parse_optional(parse):
    return lambda text: None if text.lower() in ("none", "default", "") else parse(text)


def _parse_hidden(text: str) -> tuple[int, ...]:
    if text.strip() in ("", "0"):
        return ()
    return tuple(int(part) for part in text.split(","))


def _parse_lr(text: str) -> float | str | None:
    """A learning rate; 'tuned' or 'tuned:NAME' stands for the rates `dnnbench tune` saved (plan.py resolves it)."""
    if text == "tuned" or text.startswith("tuned:"):
        return text if ":" in text else "tuned:latest"
    return _parse_optional(float)(text)


def _parse_batch(text: str) -> int | str:
    return "full" if text == "full" else int(text)


_INT = (int, "an integer")
_FLOAT = (float, "a number")
_PARSERS: dict[str, tuple[Any, str]] = {
    "workload": (str, "a workload name"),
    "batch_size": (_parse_batch, "a positive integer or 'full'"),
    "optimizer": (str, "an optimizer name"),
    "lr": (_parse_lr, "a number > 0, 'default', or 'tuned' / 'tuned:NAME' (dnnbench tune's rates)"),
    "regularization": (str, "a regularization name"),
    "dropout_p": _FLOAT,
    "weight_decay": _FLOAT,
    "l1_lambda": _FLOAT,
    "hidden": (_parse_optional(_parse_hidden), "layer widths such as 500 or 256,128"),
    "loader": (str, "a loader name"),
    "num_workers": _INT,
    "pin_memory": (_parse_bool, "true or false"),
    "device": (str, "cpu, cuda or auto"),
    "epochs": (_parse_optional(int), "a positive integer"),
    "max_seconds": (_parse_optional(float), "a number of seconds"),
    "train_samples": (_parse_optional(int), "a positive integer"),
    "eval_samples": (_parse_optional(int), "a positive integer"),
    "eval_every": (_parse_optional(int), "a positive integer (samples)"),
    "features": (_parse_optional(int), "a positive integer"),
    "threads": (_parse_optional(int), "a positive integer"),
    "warmup_steps": _INT,
    "protocol": (str, "benchmark or note"),
    "beta2": (_parse_optional(float), "a number in [0, 1)"),
    "world_size": _INT,
    "lr_rule": (str, "none, linear or sqrt"),
    "optimizer_impl": (str, "an optimizer implementation"),
    "compile": (str, "a torch.compile mode or off"),
    "precision": (str, "fp32, bf16 or tf32"),
    "memory_format": (str, "contiguous or channels_last"),
    "activation": (str, "relu, sigmoid or tanh"),
    "shuffle": (_parse_bool, "true or false"),
    "patience": (_parse_optional(int), "a positive integer (evaluations)"),
    "stop_at_target": (_parse_bool, "true or false"),
    "grad_noise": (_parse_optional(float), "a number >= 0"),
    "init_scale": (_parse_optional(float), "a number >= 0"),
}
assert set(_PARSERS) == set(_DEFAULTS), "every Case field needs a parser"


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ["lr=0.05", "hidden=256,128"] into typed Case field values; BadInput on anything else."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise BadInput(f"--set expects FIELD=VALUE, got {item!r}")
        if key == "seed":
            raise BadInput("seed is not a case field; use --repeats N (seeds 1..N) or --seeds 1,2,3")
        if key not in _PARSERS:
            raise unknown_choice("case field", key, _PARSERS)
        parse, expected = _PARSERS[key]
        try:
            out[key] = parse(text.strip())
        except ValueError:
            raise BadInput(f"bad value {text!r} for {key}: expected {expected}") from None
    return out
