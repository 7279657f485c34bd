"""Hooks: the documented way to wrap or observe the training step from outside the engine.

The profiler uses one to turn each phase into a named torch.profiler range; a data-parallel or
torch.compile wrapper would override `wrap_model`. Every method has a no-op default, and the engine
calls the phase methods only when a subclass overrides them, so an unhooked step pays nothing.

    class Ranges(Hooks):
        def phase_end(self, phase): ...     # after each of clocks.PHASES, in order
    engine.run(case, seed, hooks=Ranges())
"""

from __future__ import annotations

from torch import nn


class Hooks:
    """Override what you need; the engine calls:

    - `wrap_model(model)` once, after the model is built and moved to the device, before the
      optimizer sees its parameters; return the module to train.
    - `step_begin()` at the start of every timed step, before the batch is fetched.
    - `phase_end(phase)` right after the engine's clock marks the end of each phase of the step
      (data_wait, copy, forward, backward, optimizer).
    - `carve()` at the end of every step: {new phase: (the phase it happened inside, seconds)}, time
      the hook measured inside one of the clock's phases (e.g. a gradient all-reduce inside backward),
      which the record reports as a phase of its own.
    - `steps_begin()` once, just before the first timed step (set-up and calibration done, the collector
      off), and `steps_end()` once after the last (before the final evaluation and the record), also
      when a step failed: the edges of the window a sampling profiler should see (profile.py).
    """

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return model

    def step_begin(self) -> None:
        return None

    def phase_end(self, phase: str) -> None:
        return None

    def carve(self) -> dict[str, tuple[str, float]]:
        return {}

    def steps_begin(self) -> None:
        return None

    def steps_end(self) -> None:
        return None

    @property
    def observes_steps(self) -> bool:
        """Whether this object overrides a per-step method (else the engine skips the calls)."""
        cls = type(self)
        return cls.step_begin is not Hooks.step_begin or cls.phase_end is not Hooks.phase_end

    @property
    def carves(self) -> bool:
        return type(self).carve is not Hooks.carve


NO_HOOKS = Hooks()
