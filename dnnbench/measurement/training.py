"""Training: one case under one seed, driven step by step.

`Training.step()` is one timed training step (fetch the batch, copy it, forward, backward, optimizer
step); `Training.between()` is the untimed work between steps (evaluation when due, budget and
divergence checks). A driver (engine.py) calls them; the engine's own clocks produce the figures.
The bookkeeping lives in two small parts: `Progress` (steps, samples, step clocks, losses) and
`Validation` (the validation curve at its cadence and the first time the target was reached).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dnnbench.definitions.cases import Case
from dnnbench.definitions.workloads import Workload, get_workload
from dnnbench.measurement.clocks import PHASES, step_clock
from dnnbench.measurement.hooks import NO_HOOKS, Hooks
from dnnbench.measurement.inspect import DropoutProbe, HiddenDrift, note_dropout_example
from dnnbench.measurement.memory import PeakMemory, SavedActivations
from dnnbench.measurement.resolve import ResolvedPlan, resolve_plan
from dnnbench.measurement.setup import build, memory_format
from dnnbench.measurement.step import evaluate, training_step

DEFAULT_THREADS = torch.get_num_threads()


class StopTraining(Exception):
    """Raised by Training.between() to end a run early: budget spent (ok) or loss not finite (diverged)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Progress:
    """What the timed steps produced: counts, per-step phase times (read back per window), losses."""

    steps: int = 0
    samples: int = 0
    host_train_time: float = 0.0  # perf_counter around each step: the budget's clock
    batch_sizes: list[int] = field(default_factory=list)
    phase_rows: list[np.ndarray] = field(default_factory=list)
    pending_losses: list[torch.Tensor] = field(default_factory=list)
    loss_values: list[float] = field(default_factory=list)
    carved: list[dict[str, tuple[str, float]]] = field(default_factory=list)  # per step, from Hooks.carve
    # The wall clock around the steps (perf_counter), with the evaluation time spent so far at each mark:
    # the start of the first step, of the first steady step (after the warm-up), the end of the last.
    wall_first: tuple[float, float] | None = None
    wall_steady: tuple[float, float] | None = None
    wall_last: tuple[float, float] | None = None

    @property
    def train_time_s(self) -> float:
        return float(sum(rows.sum() for rows in self.phase_rows))

    def step_rows(self) -> np.ndarray:
        """Phase durations of every finished step, shape (steps, len(PHASES))."""
        rows = np.concatenate(self.phase_rows) if self.phase_rows else np.zeros((0, len(PHASES)))
        return rows[: len(self.batch_sizes)]


@dataclass
class Validation:
    """The validation curve at the plan's cadence and the first point where the target was reached."""

    next_eval_at: int
    curve: list[dict[str, float]] = field(default_factory=list)
    target_hit: dict[str, float] | None = None
    eval_time: float = 0.0
    last_eval_samples: int = -1


class Training:
    """One case under one seed, ready to be driven step by step."""

    def __init__(
        self,
        case: Case,
        seed: int,
        data_dir: str | None = None,
        hooks: Hooks = NO_HOOKS,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.case, self.seed = case, seed
        self.rank, self.world = shard
        self.notes: dict[str, str] = {}  # what a figure could not be measured for, by key (record's resolved)
        self.workload: Workload = get_workload(case.workload)
        self.device = torch.device(case.device)
        torch.set_num_threads(case.threads or DEFAULT_THREADS)
        splits = self.workload.load_splits(case.train_samples, case.features, data_dir, case.protocol)
        self.plan: ResolvedPlan = resolve_plan(
            case, self.workload, len(splits.train), len(splits.val), len(splits.test), torch.get_num_threads()
        )
        self.setup = build(case, self.plan, self.workload, splits, seed, hooks, shard)
        self._layout = memory_format(case)
        self.clock = step_clock(case.device)
        self.hooks = hooks
        self._observed = hooks.observes_steps
        self._carves = hooks.carves
        self._mark = self._hooked_mark if self._observed else self.clock.mark
        self.progress = Progress()
        self.validation = Validation(next_eval_at=self.plan.eval_every)
        self._iterator = None
        self.drift = HiddenDrift(self.setup.eval_model, self.setup.eval_sets["val"].x)
        self.dropout = DropoutProbe(self.setup.eval_model)
        if any(isinstance(m, torch.nn.Dropout) for m in self.setup.eval_model.modules()):
            self.notes.update(note_dropout_example())
        self.memory = PeakMemory(case.device)  # reset last: the peak is the training's own
        self._params = list(self.setup.model.parameters())

    def _hooked_mark(self, phase: str) -> None:
        self.clock.mark(phase)
        self.hooks.phase_end(phase)

    def _next_batch(self):
        if self._iterator is None:
            self._iterator = iter(self.setup.loader)  # DataLoader workers start here, inside the timed step
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = iter(self.setup.loader)
            return next(self._iterator)

    # --- the two halves of the loop ---------------------------------------------------------------

    def step(self) -> None:
        """One timed training step, split into the phases of clocks.PHASES."""
        started = time.perf_counter()
        mark, s, p = self._mark, self.setup, self.progress
        if p.steps == 0:
            p.wall_first = (started, self.validation.eval_time)
        if p.steps == self.plan.warmup_steps:
            p.wall_steady = (started, self.validation.eval_time)
        self.clock.begin()
        if self._observed:
            self.hooks.step_begin()
        x, y = self._next_batch()
        mark("data_wait")
        non_blocking = self.case.pin_memory
        x = x.to(self.device, non_blocking=non_blocking)
        if self._layout is not None:  # channels_last: NHWC, as the model's weights
            x = x.contiguous(memory_format=self._layout)
        y = y.to(self.device, non_blocking=non_blocking)
        mark("copy")
        if p.steps == 0 and self.case.device != "cuda":  # a warm-up step: measure the tensor footprint
            with SavedActivations(self._params) as saved:
                loss = training_step(s.model, s.objective, s.optimizer, x, y, mark, s.autocast)
            self.memory.activation_bytes = saved.nbytes
            self.memory.batch_bytes = x.nbytes + y.nbytes
        else:
            loss = training_step(s.model, s.objective, s.optimizer, x, y, mark, s.autocast)
        if self._carves:
            p.carved.append(self.hooks.carve())
        p.pending_losses.append(loss)
        p.batch_sizes.append(len(y) * self.world)  # samples of the step over all ranks
        p.steps += 1
        p.samples += len(y) * self.world
        ended = time.perf_counter()
        p.host_train_time += ended - started
        p.wall_last = (ended, self.validation.eval_time)

    def between(self) -> None:
        """Untimed work before the next step: stop on budget, evaluate when due."""
        p, v = self.progress, self.validation
        if p.steps == 0:
            return
        if p.host_train_time >= self.plan.max_seconds:
            self.close_window()
            self.evaluate_if_new()
            done = p.samples / self.plan.n_train
            raise StopTraining(
                "ok",
                f"stopped by the {self.plan.max_seconds:g} s training-time budget after "
                f"{done:.2f} of {self.plan.epochs} epochs",
            )
        if p.samples >= v.next_eval_at:
            self.close_window()
            self.evaluate_if_new()
            while v.next_eval_at <= p.samples:
                v.next_eval_at += self.plan.eval_every
            self.stop_if_done()

    def stop_if_done(self) -> None:
        """After an evaluation: stop at the target when the case asks to, or early when the validation loss
        has not fallen for `patience` evaluations (the note: stop when it no longer falls)."""
        v, epochs = self.validation, self.progress.samples / self.plan.n_train
        if self.case.stop_at_target and v.target_hit is not None:
            raise StopTraining("ok", f"stopped at the target after {epochs:.2f} epochs")
        losses = [point["val_loss"] for point in v.curve]
        if self.case.patience and losses:
            best = int(np.argmin(losses))
            if len(losses) - 1 - best >= self.case.patience:
                raise StopTraining(
                    "ok",
                    f"stopped early after {epochs:.2f} epochs: the validation loss has not fallen for "
                    f"{self.case.patience} evaluations (best at evaluation {best + 1})",
                )

    # --- a group of ranks (distributed.py overrides these; one process is a group of one) ----------

    def synchronize(self) -> None:
        """Where every rank of a data-parallel group meets; nothing to wait for alone."""

    def group_figures(self) -> dict[str, Any] | None:
        """What the record adds about the other ranks (their step times, the backend); None alone."""
        return None

    # --- windows and evaluation -------------------------------------------------------------------

    def close_window(self) -> None:
        """Read back the window's clocks and losses (synchronizes on CUDA) and check for divergence."""
        p = self.progress
        p.phase_rows.append(self.clock.collect())
        if p.pending_losses:
            values = torch.stack(p.pending_losses).float().cpu().numpy()
            p.pending_losses = []
            p.loss_values.extend(values.tolist())
            finite = np.isfinite(values)
            if not finite.all():
                first = int(np.argmin(finite))
                step = p.steps - len(values) + first + 1
                raise StopTraining("diverged", f"training loss became {values[first]} at step {step}")

    def evaluate_if_new(self) -> None:
        """Evaluate on the validation split unless nothing was trained since the last evaluation."""
        p, v = self.progress, self.validation
        if v.last_eval_samples == p.samples:
            return
        started = time.perf_counter()
        metric, loss = self.evaluate("val")
        drift = self.drift.step()  # evaluation work too: its time is left out of the training figures
        v.eval_time += time.perf_counter() - started
        v.last_eval_samples = p.samples
        train_time = p.train_time_s
        v.curve.append(
            {
                "step": p.steps,
                "samples": p.samples,
                "epoch": p.samples / self.plan.n_train,
                "train_time_s": train_time,
                "val_metric": metric,
                "val_loss": loss,
                **self.gradient_norms(),
                **drift,
            }
        )
        if v.target_hit is None and self.workload.reached(metric):
            v.target_hit = {
                "time_to_target_s": train_time,
                "steps_to_target": p.steps,
                "epochs_to_target": p.samples / self.plan.n_train,
            }

    def gradient_norms(self) -> dict[str, float]:
        """The last step's weight-gradient norms of the first layer and of the layer into the last hidden
        one (with two hidden layers or more): where a gradient vanishes toward the input, the first is the
        smaller. Read between steps, from the gradients the optimizer just used."""
        weights = self.setup.weights
        if len(weights) < 3 or weights[0].grad is None or weights[-2].grad is None:
            return {}
        return {
            "grad_norm_first_layer": float(weights[0].grad.norm()),
            "grad_norm_last_hidden": float(weights[-2].grad.norm()),
        }

    def evaluate(self, split: str) -> tuple[float, float]:
        """(metric, loss) of the model on one of the evaluation sets: val, test or train."""
        s = self.setup
        return evaluate(s.eval_model, s.eval_sets[split], self.workload.task, s.loss_fn, s.autocast)
