"""Engine: train one case under one seed and return its record.

The loop is split so that a front-end can drive it: `Training.step()` is one timed training step
(fetch the batch, copy it, forward, backward, optimizer step) and `Training.between()` is the untimed
work between steps (evaluation when due, budget and divergence checks). `run()` hands both to a
driver: the plain loop below, or pytest-benchmark's pedantic mode in bench/, which then times every
step itself. Either way the engine's own clocks (meter.py) produce the record's figures.

Measurement rules (DESIGN.md): throughput over steady-state steps only (a warm-up is left out);
evaluation is excluded from training time; time to target is training time until the validation
metric first reaches the workload's target, evaluated every `eval_every` samples.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from torch import nn

from dnnbench import env as envmod
from dnnbench.cases import Case
from dnnbench.data import Split, load_splits, make_loader
from dnnbench.errors import BadInput
from dnnbench.meter import PHASES, PeakMemory, SavedActivations, StepStats, calibrate, step_clock
from dnnbench.models import build_mlp, weight_matrices
from dnnbench.optimizers import build_optimizer, default_lr
from dnnbench.records import METRICS, SCHEMA_VERSION, unmeasured_record
from dnnbench.workloads import Workload, get_workload

# (step, between, warmup_steps, planned_steps) -> None; it calls between() then step() per step.
Driver = Callable[[Callable[[], None], Callable[[], None], int, int], None]

DEFAULT_THREADS = torch.get_num_threads()
MAX_CURVE_POINTS = 1000
EVAL_CHUNK = 10_000
CALIBRATION_SECONDS = 0.04  # per measure, before and after each case: ~0.2 s of a case's wall time


class StopTraining(Exception):
    """Raised by Training.between() to end a run early: budget spent (ok) or loss not finite (diverged)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def loop_driver(step: Callable[[], None], between: Callable[[], None], warmup: int, planned: int) -> None:
    """The plain driver: no timing of its own, the engine's clocks measure."""
    del warmup
    for _ in range(planned):
        between()
        step()


@dataclass(frozen=True)
class Plan:
    """A case's defaults resolved against its workload and data: what the run will actually do."""

    batch_size: int
    lr: float
    hidden: tuple[int, ...]
    epochs: int
    max_seconds: float
    eval_every: int
    n_train: int
    n_val: int
    n_test: int
    steps_per_epoch: int
    planned_steps: int
    warmup_steps: int
    drop_last: bool
    threads: int
    loss: str
    target_metric: str
    target: float | None


def _warmup(requested: int, planned: int) -> int:
    """Steps left out of throughput statistics: as requested, but at most a quarter of the run and,
    when the run has two steps or more, at least the first (it pays for lazy allocation)."""
    if requested == 0 or planned < 2:
        return 0
    return min(requested, max(1, planned // 4))


def training_step(model: nn.Module, objective, optimizer, x, y, mark: Callable[[str], None]) -> torch.Tensor:
    """One update. Returns the data loss (without any L1 penalty), detached, on the device."""
    total, data_loss = objective(model(x), y)
    mark("forward")
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    mark("backward")
    optimizer.step()
    mark("optimizer")
    return data_loss.detach()


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, loss_fn, classification: bool) -> tuple[float, float]:
    """(metric, mean loss) on a split in eval mode: accuracy for classification, MSE for regression."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(split), EVAL_CHUNK):
        x, y = split.x[i : i + EVAL_CHUNK], split.y[i : i + EVAL_CHUNK]
        out = model(x)
        loss_sum += float(loss_fn(out, y)) * len(y)
        if classification:
            correct += int((out.argmax(1) == y).sum())
    model.train(was_training)
    mean_loss = loss_sum / len(split)
    return (correct / len(split) if classification else mean_loss), mean_loss


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _downsample(values: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> dict[str, Any]:
    """Loss curve for the record: every step when short, else means of equal buckets of steps."""
    n = len(values)
    if n <= max_points:
        return {"step": list(range(1, n + 1)), "loss": [float(v) for v in values], "bucket": 1}
    bucket = math.ceil(n / max_points)
    usable = (n // bucket) * bucket
    means = values[:usable].reshape(-1, bucket).mean(axis=1)
    return {
        "step": [int((i + 1) * bucket) for i in range(len(means))],
        "loss": [float(v) for v in means],
        "bucket": bucket,
    }


class Training:
    """One case under one seed, ready to be driven step by step."""

    def __init__(self, case: Case, seed: int, data_dir: str | None = None) -> None:
        self.case, self.seed = case, seed
        self.workload: Workload = get_workload(case.workload)
        self.classification = self.workload.task == "classification"
        self.device = torch.device(case.device)
        torch.set_num_threads(case.threads or DEFAULT_THREADS)

        splits = load_splits(self.workload, case.train_samples, case.features, data_dir)
        self.plan = self._plan(len(splits.train), len(splits.val), len(splits.test))

        torch.manual_seed(seed)  # model initialisation and dropout masks
        regularization = case.regularization
        self.model = build_mlp(
            case.features or self.workload.in_features,
            self.plan.hidden,
            self.workload.out_features,
            batchnorm="batchnorm" in regularization,
            dropout_p=case.dropout_p if "dropout" in regularization else None,
        ).to(self.device)
        self.optimizer = build_optimizer(
            case.optimizer,
            self.model.parameters(),
            self.plan.lr,
            l2=case.weight_decay if regularization == "l2" else None,
        )
        self.loss_fn = nn.CrossEntropyLoss() if self.classification else nn.MSELoss()
        self._l1 = case.l1_lambda if regularization == "l1" else 0.0
        self._weights = weight_matrices(self.model)
        self.loader = make_loader(
            case.loader,
            splits,
            self.plan.batch_size,
            seed,
            self.device,
            num_workers=case.num_workers,
            pin_memory=case.pin_memory,
            drop_last=self.plan.drop_last,
        )
        cap = case.eval_samples
        self.eval_sets = {
            "val": self._to_device(splits.val.head(cap)),
            "test": self._to_device(splits.test.head(cap)),
            "train": self._to_device(splits.train.head(cap or self.plan.n_val)),
        }

        self.clock = step_clock(case.device)
        self._iterator = None
        self._epoch = 0
        self.steps = 0
        self.samples = 0
        self._host_train_time = 0.0
        self._eval_time = 0.0
        self._next_eval_at = self.plan.eval_every
        self._last_eval_samples = -1
        self._pending_losses: list[torch.Tensor] = []
        self._loss_values: list[float] = []
        self._phase_rows: list[np.ndarray] = []
        self._batch_sizes: list[int] = []
        self._val_curve: list[dict[str, float]] = []
        self._target_hit: dict[str, float] | None = None
        self.model.train()
        self.memory = PeakMemory(case.device)  # reset last: the peak is the training's own
        self._params = list(self.model.parameters())

    # --- set-up helpers ---------------------------------------------------------------------------

    def _plan(self, n_train: int, n_val: int, n_test: int) -> Plan:
        case, w = self.case, self.workload
        batch = n_train if case.batch_size == "full" else int(case.batch_size)
        if batch > n_train:
            raise BadInput(f"batch_size {batch} exceeds the {n_train} training samples; use 'full'")
        # BatchNorm cannot train on a final batch of one sample; drop it in that one case.
        drop_last = "batchnorm" in case.regularization and n_train % batch == 1
        steps_per_epoch = n_train // batch if drop_last else math.ceil(n_train / batch)
        epochs = case.epochs or w.epochs
        planned = steps_per_epoch * epochs
        return Plan(
            batch_size=batch,
            lr=case.lr or default_lr(case.optimizer),
            hidden=case.hidden if case.hidden is not None else w.hidden,
            epochs=epochs,
            max_seconds=case.max_seconds or w.max_seconds,
            eval_every=case.eval_every or w.eval_every,
            n_train=n_train,
            n_val=n_val,
            n_test=n_test,
            steps_per_epoch=steps_per_epoch,
            planned_steps=planned,
            warmup_steps=_warmup(case.warmup_steps, planned),
            drop_last=drop_last,
            threads=torch.get_num_threads(),
            loss="cross_entropy" if self.classification else "mse",
            target_metric=w.target_metric,
            target=w.target,
        )

    def _to_device(self, split: Split) -> Split:
        return Split(split.x.to(self.device), split.y.to(self.device))

    def _objective(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        data_loss = self.loss_fn(out, y)
        if not self._l1:
            return data_loss, data_loss
        return data_loss + self._l1 * sum(w.abs().sum() for w in self._weights), data_loss

    def _next_batch(self):
        if self._iterator is None:
            self._iterator = iter(self.loader)  # DataLoader workers start here, inside the timed step
        try:
            return next(self._iterator)
        except StopIteration:
            self._epoch += 1
            self._iterator = iter(self.loader)
            return next(self._iterator)

    # --- the two halves of the loop ---------------------------------------------------------------

    def step(self) -> None:
        """One timed training step, split into the phases of meter.PHASES."""
        started = time.perf_counter()
        clock = self.clock
        clock.begin()
        x, y = self._next_batch()
        clock.mark("data_wait")
        non_blocking = self.case.pin_memory
        x = x.to(self.device, non_blocking=non_blocking)
        y = y.to(self.device, non_blocking=non_blocking)
        clock.mark("copy")
        if self.steps == 0 and self.case.device != "cuda":  # a warm-up step: measure the tensor footprint
            with SavedActivations(self._params) as saved:
                loss = training_step(self.model, self._objective, self.optimizer, x, y, clock.mark)
            self.memory.activation_bytes = saved.nbytes
            self.memory.batch_bytes = x.nbytes + y.nbytes
        else:
            loss = training_step(self.model, self._objective, self.optimizer, x, y, clock.mark)
        self._pending_losses.append(loss)
        self._batch_sizes.append(len(y))
        self.steps += 1
        self.samples += len(y)
        self._host_train_time += time.perf_counter() - started

    def between(self) -> None:
        """Untimed work before the next step: stop on budget, evaluate when due."""
        if self.steps == 0:
            return
        if self._host_train_time >= self.plan.max_seconds:
            self._close_window()
            self._evaluate_if_new()
            done = self.samples / self.plan.n_train
            raise StopTraining(
                "ok",
                f"stopped by the {self.plan.max_seconds:g} s training-time budget after "
                f"{done:.2f} of {self.plan.epochs} epochs",
            )
        if self.samples >= self._next_eval_at:
            self._close_window()
            self._evaluate_if_new()
            while self._next_eval_at <= self.samples:
                self._next_eval_at += self.plan.eval_every

    # --- windows and evaluation -------------------------------------------------------------------

    @property
    def train_time_s(self) -> float:
        return float(sum(rows.sum() for rows in self._phase_rows))

    def _close_window(self) -> None:
        """Read back the window's clocks and losses (synchronizes on CUDA) and check for divergence."""
        self._phase_rows.append(self.clock.collect())
        if self._pending_losses:
            values = torch.stack(self._pending_losses).float().cpu().numpy()
            self._pending_losses = []
            self._loss_values.extend(values.tolist())
            finite = np.isfinite(values)
            if not finite.all():
                first = int(np.argmin(finite))
                step = self.steps - len(values) + first + 1
                raise StopTraining("diverged", f"training loss became {values[first]} at step {step}")

    def _evaluate_if_new(self) -> None:
        if self._last_eval_samples == self.samples:
            return
        started = time.perf_counter()
        metric, loss = evaluate(self.model, self.eval_sets["val"], self.loss_fn, self.classification)
        self._eval_time += time.perf_counter() - started
        self._last_eval_samples = self.samples
        train_time = self.train_time_s
        self._val_curve.append(
            {
                "step": self.steps,
                "samples": self.samples,
                "epoch": self.samples / self.plan.n_train,
                "train_time_s": train_time,
                "val_metric": metric,
                "val_loss": loss,
            }
        )
        if self._target_hit is None and self.workload.reached(metric):
            self._target_hit = {
                "time_to_target_s": train_time,
                "steps_to_target": self.steps,
                "epochs_to_target": self.samples / self.plan.n_train,
            }

    # --- the record ---------------------------------------------------------------------------------

    def finish(self, status: str, reason: str, started: float) -> dict[str, Any]:
        """Close the last window, run the final evaluations and assemble the record."""
        if status == "ok":
            try:
                self._close_window()
                self._evaluate_if_new()
            except StopTraining as stop:
                status, reason = stop.status, stop.reason
        else:
            # A failed step can leave the device unusable; keep whatever was measured before it.
            with contextlib.suppress(Exception):
                self._phase_rows.append(self.clock.collect())

        metrics: dict[str, Any] = dict.fromkeys(METRICS)
        phase_fractions = self._timing_metrics(metrics)
        metrics.update(self._target_hit or {})
        if status == "ok":
            self._final_metrics(metrics)
        metrics["peak_memory_bytes"] = self.memory.peak_bytes(self.model, self.optimizer)
        metrics["process_peak_rss_bytes"] = self.memory.process_peak_bytes()
        metrics["eval_time_s"] = self._eval_time
        metrics["wall_time_s"] = time.perf_counter() - started

        w = self.workload
        if w.target is None:
            target_status = "no target (the workload has none)"
        elif self._target_hit:
            target_status = "reached"
        else:
            target_status = (
                f"not reached within the budget ({self.plan.epochs} epochs, {self.plan.max_seconds:g} s)"
                if status == "ok"
                else f"not reached ({status})"
            )
        return {
            "schema_version": SCHEMA_VERSION,
            "case_id": self.case.id,
            "seed": self.seed,
            "case": self.case.to_dict(),
            "status": status,
            "reason": reason,
            "resolved": {**asdict(self.plan), "hidden": list(self.plan.hidden), "device": self.case.device},
            "metrics": metrics,
            "phase_fractions": phase_fractions,
            "target": {
                "metric": w.target_metric,
                "value": w.target,
                "reached": self._target_hit is not None,
                "status": target_status,
                "eval_every_samples": self.plan.eval_every,
            },
            "curves": {"loss": _downsample(np.array(self._loss_values)), "val": self._val_curve},
            "memory_kind": self.memory.kind,
            "env": envmod.capture(self.case.device),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _timing_metrics(self, metrics: dict[str, Any]) -> dict[str, float] | None:
        rows = np.concatenate(self._phase_rows) if self._phase_rows else np.zeros((0, len(PHASES)))
        rows = rows[: len(self._batch_sizes)]
        metrics["steps"] = self.steps
        metrics["samples"] = self.samples
        metrics["epochs_completed"] = self.samples / self.plan.n_train
        metrics["train_time_s"] = float(rows.sum())
        if len(rows) == 0:
            return None
        warm = self.plan.warmup_steps if len(rows) > self.plan.warmup_steps else 0
        steady = rows[warm:]
        stats = StepStats(steady.sum(axis=1), np.array(self._batch_sizes[warm : len(rows)]))
        metrics["throughput_samples_per_s"] = stats.throughput
        metrics["step_time_ms_median"] = stats.percentile_ms(50)
        metrics["step_time_ms_p10"] = stats.percentile_ms(10)
        metrics["step_time_ms_p90"] = stats.percentile_ms(90)
        totals = steady.sum(axis=0)
        if totals.sum() <= 0:
            return None
        fractions = {phase: float(t / totals.sum()) for phase, t in zip(PHASES, totals, strict=True)}
        metrics["data_wait_fraction"] = fractions["data_wait"]
        return fractions

    def _final_metrics(self, metrics: dict[str, Any]) -> None:
        started = time.perf_counter()
        test_metric, test_loss = evaluate(self.model, self.eval_sets["test"], self.loss_fn, self.classification)
        train_metric, train_loss = evaluate(self.model, self.eval_sets["train"], self.loss_fn, self.classification)
        self._eval_time += time.perf_counter() - started
        metrics["final_test_loss"] = test_loss
        metrics["final_train_loss"] = train_loss
        if self.classification:
            metrics["final_test_accuracy"] = test_metric
            metrics["final_train_accuracy"] = train_metric
            metrics["generalization_gap"] = train_metric - test_metric
        else:
            metrics["generalization_gap"] = test_loss - train_loss
        vals = self._val_curve
        if vals:
            metrics["best_val_loss"] = min(v["val_loss"] for v in vals)
            if self.classification:
                metrics["best_val_accuracy"] = max(v["val_metric"] for v in vals)


def _is_oom(exc: BaseException) -> bool:
    """CUDA raises OutOfMemoryError; the CPU allocator raises a RuntimeError saying so."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def run(case: Case, seed: int, drive: Driver = loop_driver, data_dir: str | None = None) -> dict[str, Any]:
    """Train `case` under `seed` and return its record. A diverging, out-of-memory or failing case
    comes back as a record with that status; only bad input (BadInput) is raised."""
    started = time.perf_counter()
    try:
        training = Training(case, seed, data_dir)
    except BadInput:
        raise
    except Exception as exc:
        status = "oom" if _is_oom(exc) else "error"
        return unmeasured_record(case.to_dict(), case.id, seed, status, _one_line(exc), envmod.capture(case.device))

    status, reason = "ok", ""
    calibration_start = calibrate(case.device, seconds=CALIBRATION_SECONDS)
    try:
        drive(training.step, training.between, training.plan.warmup_steps, training.plan.planned_steps)
    except StopTraining as stop:
        status, reason = stop.status, stop.reason
    except Exception as exc:
        status, reason = ("oom" if _is_oom(exc) else "error"), _one_line(exc)
    try:
        record = training.finish(status, reason, started)
        # The machine's speed just before and after this case, for comparing its speed figures with
        # another run's: contention that slows the case slows these fixed measures too.
        calibration_end = calibrate(case.device, seconds=CALIBRATION_SECONDS)
        record["calibration"] = {
            "gflops_start": calibration_start["gflops"],
            "gflops_end": calibration_end["gflops"],
            "ref_start": calibration_start["ref_steps_per_s"],
            "ref_end": calibration_end["ref_steps_per_s"],
            "what": calibration_end["what"],
        }
        return record
    finally:
        del training
        if case.device == "cuda":
            torch.cuda.empty_cache()
