"""Settings of the candidate fine-tune and what an evaluation returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from autocompress.errors import ConfigError

# Called at each validation checkpoint with (fine-tune step, validation metric);
# returning True stops the fine-tune early (the candidate is hopeless).
Callback = Callable[[int, float], bool]


@dataclass(frozen=True)
class FinetuneConfig:
    """The short fine-tune every candidate gets (distillation settings come from the policy).

    - ``steps``: the budget, in optimiser steps of ``batch_size`` training samples;
    - ``eval_every``: validation checkpoints (reported to the callback); 0 = only at the end;
    - ``calibration_batch``: training samples used to calibrate activation ranges.
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

    def __post_init__(self) -> None:
        for name in ("steps", "eval_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"finetune.{name} must be an integer >= 0, got {value!r}")
        for name in ("batch_size", "calibration_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"finetune.{name} must be an integer >= 1, got {value!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ConfigError(f"finetune.optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(
                f"finetune.schedule must be 'cosine' or 'constant', got {self.schedule!r}"
            )
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ConfigError(f"finetune.lr must be a number > 0, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ConfigError(f"finetune.weight_decay must be >= 0, got {self.weight_decay!r}")

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
