"""Training pieces shared by base-model training and the candidate fine-tune."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from autocompress.errors import ConfigError
from autocompress.tasks._task import Metric, Split, Task


def make_optimizer(
    params: Iterable[nn.Parameter],
    kind: str,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """Adam or SGD with momentum; never foreach/fused state shared across calls."""
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"optimizer must be 'adam' or 'sgd', got {kind!r}")


def make_schedule(
    opt: torch.optim.Optimizer, schedule: str, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine decay to zero over ``total_steps``, or a constant learning rate."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    if schedule == "cosine":
        total = max(1, total_steps)
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))
        )
    raise ConfigError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")


def batches(
    n: int, batch_size: int, generator: torch.Generator
) -> Iterator[torch.Tensor]:
    """Endless shuffled index batches (reshuffled each epoch; the last partial one dropped
    when there is more than one batch, so every step sees ``batch_size`` samples)."""
    if n < 1:
        raise ConfigError("the training split is empty")
    while True:
        order = torch.randperm(n, generator=generator)
        stop = n - n % batch_size if n > batch_size else n
        for i in range(0, stop, batch_size):
            yield order[i : i + batch_size]


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Outputs (logits, embeddings) for all of ``x`` in eval mode (the model's mode is
    restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def score(model: nn.Module, split: Split, metric: Metric, batch_size: int = 1000) -> float:
    """The metric of ``model`` on ``split``."""
    return metric.fn(predict(model, split.x, batch_size), split.y)


def score_parts(model: nn.Module, split: Split, metric: Metric, batch_size: int = 1000) -> dict[str, float]:
    """The metric of ``model`` on ``split`` and, if it combines several scores, each of them."""
    out = predict(model, split.x, batch_size)
    parts = metric.parts(out, split.y) if metric.parts is not None else {}
    return {metric.name: metric.fn(out, split.y), **parts}


def validation_metric(task: Task, model: nn.Module) -> float:
    """The task metric on the validation split (what the search selects on)."""
    return score(model, task.data().val, task.metric)


def test_metric(task: Task, model: nn.Module) -> float:
    """The task metric on the held-out test split.

    Only for reporting exported or applied results; never use it to select candidates.
    """
    return score(model, task.data().test, task.metric)


test_metric.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
