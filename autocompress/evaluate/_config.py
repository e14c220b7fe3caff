"""Settings of the candidate fine-tune and what an evaluation returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from autocompress import fields as f

# Called at each validation checkpoint with (fine-tune step, validation metric);
# returning True stops the fine-tune early (the candidate is hopeless).
Callback = Callable[[int, float], bool]
PruneSchedule = Literal["oneshot", "gradual"]
PRUNE_SCHEDULES: tuple[PruneSchedule, ...] = ("oneshot", "gradual")


@dataclass(frozen=True)
class FinetuneConfig:
    """The short fine-tune every candidate gets (distillation settings come from the policy).

    - ``steps``: the budget, in optimiser steps of ``batch_size`` training samples;
    - ``eval_every``: validation checkpoints (reported to the callback); 0 = only at the end;
    - ``calibration_batch``: training samples used to calibrate activation ranges;
    - ``prune_schedule``: ``"oneshot"`` keeps each sparsity mask as made from the base
      weights; ``"gradual"`` starts ``prune_start_density`` times denser and tightens the
      masks along a cubic ramp over the first ``prune_ramp`` share of the steps, updating
      every ``prune_every`` steps (see :mod:`autocompress.techniques.sparsify`); the masks
      end exactly as the policy asks, so sizes do not depend on the schedule.
    - ``augment``: pass each training batch through the task's augmentation
      (``Task.augment``, e.g. random 2-pixel shifts for the MNIST tasks) and run the base
      model on the augmented batch as the teacher (one more forward per step); a task
      without one is refused.
    """

    steps: int = 200
    batch_size: int = 64
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 5e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Literal["cosine", "constant"] = "cosine"
    eval_every: int = 50
    calibration_batch: int = 256
    prune_schedule: PruneSchedule = "oneshot"
    prune_ramp: float = 0.5
    prune_every: int = 100
    prune_start_density: float = 4.0
    augment: bool = False

    def __post_init__(self) -> None:
        w = "finetune"
        for name in ("steps", "eval_every"):
            f.as_int(getattr(self, name), f"{w}.{name}", lo=0)
        for name in ("batch_size", "calibration_batch", "prune_every"):
            f.as_int(getattr(self, name), f"{w}.{name}", lo=1)
        f.one_of(self.optimizer, ("adam", "sgd"), f"{w}.optimizer")
        f.one_of(self.schedule, ("cosine", "constant"), f"{w}.schedule")
        f.as_float(self.lr, f"{w}.lr", 0.0, open_lo=True)
        f.one_of(self.prune_schedule, PRUNE_SCHEDULES, f"{w}.prune_schedule")
        f.as_float(self.prune_ramp, f"{w}.prune_ramp" + " (a share of the steps)", 0.0, 1.0, open_lo=True)
        f.as_float(self.prune_start_density, f"{w}.prune_start_density"
                   + " (the first mask's kept share, as a multiple of the final one)", 1.0)
        f.as_bool(self.augment, f"{w}.augment")
        f.as_float(self.weight_decay, f"{w}.weight_decay", 0.0)
        f.as_float(self.momentum, f"{w}.momentum", 0.0)

    def ramp_steps(self) -> int:
        """The step at which gradual pruning reaches the final masks (0: one-shot pruning)."""
        if self.prune_schedule != "gradual" or self.steps == 0:
            return 0
        return max(1, round(self.prune_ramp * self.steps))

    def checkpoints(self) -> list[int]:
        """The steps after which the validation metric is measured (always the last one)."""
        every = self.eval_every or self.steps or 1
        points = list(range(every, self.steps + 1, every))
        if not points or points[-1] != self.steps:
            points.append(self.steps)
        return points


@dataclass(frozen=True)
class EvalResult:
    """The outcome of one candidate: its validation metric after the fine-tune."""

    metric: float  # validation metric at the last checkpoint reached
    metric_name: str
    steps: int  # fine-tune steps actually run
    stopped_early: bool
    history: tuple[tuple[int, float], ...]  # (step, validation metric) at each checkpoint
    seconds: float
