"""What a task is: an architecture, data with fixed splits, a loss, a metric, base training.

A task is plain data plus a data loader; nothing is read or trained until asked
(``task.data()`` reads the data once, :func:`autocompress.tasks.base_model` trains once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from autocompress import fields as f
from autocompress.errors import ConfigError
from autocompress.models import MODELS, create_model
from autocompress.tasks._augment import Augment

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Targets = Literal["labels", "base_outputs"]


@dataclass(frozen=True)
class Split:
    """One split of a data set: inputs ``x`` (batch first: float features, or token ids) and
    targets ``y``."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ConfigError(f"split has {len(self.x)} inputs but {len(self.y)} targets")

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class TaskData:
    """Fixed splits. ``val`` is carved from the training data and is what the search selects
    on; ``test`` is only for reporting applied or exported results."""

    train: Split
    val: Split
    test: Split


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of samples whose arg-max class is the target."""
    return float((logits.argmax(dim=1) == targets).float().mean())


@dataclass(frozen=True)
class Metric:
    """A named score of (model outputs, targets) over a whole split; higher is better.

    ``parts``: for a metric that combines several scores, those scores by name (reported
    beside it; the search uses ``fn`` only).
    """

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], float]
    parts: Callable[[torch.Tensor, torch.Tensor], dict[str, float]] | None = None


ACCURACY = Metric("accuracy", accuracy)


@dataclass(frozen=True)
class TrainConfig:
    """How the base model is trained (part of its cache key)."""

    epochs: int = 20
    batch_size: int = 64
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Literal["cosine", "constant"] = "cosine"

    def __post_init__(self) -> None:
        w = "train"
        f.as_int(self.epochs, f"{w}.epochs", lo=1)
        f.as_int(self.batch_size, f"{w}.batch_size", lo=1)
        f.one_of(self.optimizer, ("adam", "sgd"), f"{w}.optimizer")
        f.one_of(self.schedule, ("cosine", "constant"), f"{w}.schedule")
        f.as_float(self.lr, f"{w}.lr", 0.0, open_lo=True)
        f.as_float(self.weight_decay, f"{w}.weight_decay", 0.0)
        f.as_float(self.momentum, f"{w}.momentum", 0.0)


@dataclass(frozen=True)
class Task:
    """A model to compress and the data to judge it on.

    - ``model``: name of a registered architecture (:mod:`autocompress.models`).
    - ``load``: reads the data and returns fixed splits; called once by :meth:`data`.
    - ``pretrained``: the registered architecture comes with its trained weights (a model
      from a package): the base model is ``create_model()`` itself, never trained or cached,
      and ``train`` is unused.
    - ``targets``: ``"labels"`` (ground truth: the fine-tune distils the base model's logits,
      with the policy's temperature and alpha, beside ``loss`` on the labels) or
      ``"base_outputs"`` (``y`` is the base model's own output on ``x``, e.g. embeddings
      judged by fidelity: the fine-tune minimises ``loss(student(x), y)``, which already is
      distillation from the base model, so the policy's temperature and alpha do not apply).
    - ``augment``: an optional training-input augmentation ``(batch, generator) -> batch``
      (e.g. :class:`autocompress.tasks.RandomShift`) that a study's fine-tunes use when they
      ask for it (``finetune.augment: true``); the base model's own training never uses it.

    Example::

        task = get_task("digits-cnn")
        data = task.data(); model = task.create_model(seed=0)
        x = task.example_input()          # real training samples, for calibration
    """

    name: str
    model: str
    load: Callable[[], TaskData] = field(repr=False)
    loss: LossFn = field(default=F.cross_entropy, repr=False)
    metric: Metric = ACCURACY
    train: TrainConfig = TrainConfig()
    pretrained: bool = False
    targets: Targets = "labels"
    augment: Augment | None = field(default=None, repr=False)
    _cache: dict[str, TaskData] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(
                f"task {self.name!r}: model {self.model!r} is not a registered architecture; "
                f"register it with autocompress.models.register_model (known: {MODELS.names()})"
            )
        if self.targets not in ("labels", "base_outputs"):
            raise ConfigError(
                f"task {self.name!r}: targets must be 'labels' or 'base_outputs', got {self.targets!r}"
            )
        if self.augment is not None and not callable(self.augment):
            raise ConfigError(
                f"task {self.name!r}: augment must be a callable (batch, generator) -> batch or None, "
                f"got {type(self.augment).__name__}"
            )

    def data(self) -> TaskData:
        """The splits, read on first use and kept."""
        if "data" not in self._cache:
            self._cache["data"] = self.load()
        return self._cache["data"]

    def create_model(self, seed: int = 0) -> nn.Module:
        """A freshly initialised model (untrained, or with its weights for a pretrained task)."""
        return create_model(self.model, seed)

    def example_input(self, batch: int = 32) -> torch.Tensor:
        """The first ``batch`` training inputs: fixed, real data (for calibration and tracing)."""
        return self.data().train.x[:batch].clone()
