"""The candidate evaluator: policy -> compressed train form -> short distilled fine-tune ->
validation metric.

One :class:`Evaluator` serves a whole search: it holds the base model's weights and its
logits on the training split (the teacher is never run again), and builds every candidate
from a fresh copy, so nothing of one candidate survives into the next.

The fine-tune loss depends on what the task's targets are (``Task.targets``): with labels,
logit distillation from the base model (the policy's temperature and alpha) beside the task
loss on the labels; with the base model's own outputs (an embedding task judged by
fidelity), the task loss against those targets, which already is distillation from the base
model, so the training targets serve as the teacher's outputs and the teacher is never run.
With ``finetune.augment`` each batch goes through the task's augmentation and the teacher
(the base model, frozen, in eval mode) is run on the augmented batch instead.
"""

from __future__ import annotations

import time
from typing import Literal

import torch
from torch import nn

from autocompress.errors import ConfigError, TrialFailed
from autocompress.evaluate._config import Callback, EvalResult, FinetuneConfig
from autocompress.policy import Policy
from autocompress.tasks import Split, Task, base_model, batches, make_optimizer, make_schedule, predict, score
from autocompress.techniques.sparsify import ramp_masks

TrainOn = Literal["train", "train+val"]  # what a fine-tune trains on; a search always uses "train"
TRAIN_ON: tuple[TrainOn, ...] = ("train", "train+val")
AUGMENT_SEED_OFFSET = 1_000_003  # the augmentation's random stream is not the batch order's


class Evaluator:
    """Scores policies on one task against one base model.

    Example::

        task = get_task("digits-cnn")
        ev = Evaluator(task, base_model(task), FinetuneConfig(steps=200))
        result = ev.evaluate(policy, callback=lambda step, acc: acc < 0.5)
        print(result.metric, result.history)
    """

    def __init__(
        self, task: Task, base: nn.Module, config: FinetuneConfig | None = None, *,
        train_on: TrainOn = "train",
    ) -> None:
        if train_on not in TRAIN_ON:
            raise ConfigError(f"train_on={train_on!r} is not one of {', '.join(TRAIN_ON)}; use 'train' "
                              "for a search (validation stays held out) or 'train+val' to refit a chosen policy")
        self.task = task
        self.config = config if config is not None else FinetuneConfig()
        self.train_on = train_on
        # A private copy of the weights: later changes to `base` cannot leak into candidates.
        self._state = {k: v.detach().clone() for k, v in base.state_dict().items()}
        data = task.data()
        self._train, self._val = data.train, data.val
        if train_on == "train+val":  # refit: validation is no longer held out (its metric is then optimistic)
            self._train = _joined(data.train, data.val, task.name)
        if task.targets == "base_outputs":  # y already is the teacher's output on x
            self.teacher_logits = self._train.y
        else:
            self.teacher_logits = predict(base, self._train.x).detach()
        self.base_metric = score(base, data.val, task.metric)
        self._teacher: nn.Module | None = None
        if self.config.augment:
            if task.augment is None:
                raise ConfigError(
                    f"finetune.augment is true but task {task.name!r} defines no augmentation; "
                    "give the task one (Task(augment=...), e.g. autocompress.tasks.RandomShift) "
                    "or set finetune.augment: false")
            self._teacher = self.fresh_base().eval().requires_grad_(False)

    def fresh_base(self) -> nn.Module:
        """A new copy of the base model (no hooks, no parametrizations, no graph)."""
        model = self.task.create_model()
        model.load_state_dict(self._state)
        return model

    def build(self, policy: Policy) -> nn.Module:
        """The candidate in train form, calibrated, before any fine-tune."""
        model = self.fresh_base()
        if _is_identity(policy):
            return model
        from autocompress.compress import compress

        x = self._train.x[: self.config.calibration_batch]
        return compress(model, policy, form="train", example_input=x)

    def evaluate(
        self, policy: Policy, callback: Callback | None = None, seed: int = 0
    ) -> EvalResult:
        """Compress, fine-tune with distillation, and return the validation metric.

        Deterministic for a given (policy, seed). Raises TrialFailed if the loss becomes
        NaN or infinite (the search records the trial as failed and goes on).
        """
        return self.finetune(policy, callback, seed)[1]

    def finetune(
        self, policy: Policy, callback: Callback | None = None, seed: int = 0
    ) -> tuple[nn.Module, EvalResult]:
        """Like :meth:`evaluate`, and also return the fine-tuned train-form model
        (``autocompress.to_deploy(model, policy)`` turns it into the artifact)."""
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.build(policy)
            history, steps, stopped = self._finetune(model, policy, callback, seed)
        return model.eval(), EvalResult(
            metric=history[-1][1] if history else self.base_metric,
            metric_name=self.task.metric.name,
            steps=steps,
            stopped_early=stopped,
            history=tuple(history),
            seconds=time.perf_counter() - start,
        )

    def _loss(self, out: torch.Tensor, idx: torch.Tensor, policy: Policy,
              teacher: torch.Tensor | None = None) -> torch.Tensor:
        """The fine-tune loss of one batch (see the module docstring); ``teacher``: the base
        model's outputs on an augmented batch, in place of the stored ones."""
        from autocompress.techniques.distill import distill_loss

        if self.task.targets == "base_outputs":
            return self.task.loss(out, self._train.y[idx] if teacher is None else teacher)
        return distill_loss(out, self.teacher_logits[idx] if teacher is None else teacher,
                            self._train.y[idx], policy.distill, hard_loss=self.task.loss)

    def _batch(self, idx: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch's inputs and, when augmenting, the teacher's outputs on them."""
        x = self._train.x[idx]
        if self._teacher is None or self.task.augment is None:
            return x, None
        moved = self.task.augment(x, generator)
        if not isinstance(moved, torch.Tensor) or moved.shape != x.shape:
            got = tuple(moved.shape) if isinstance(moved, torch.Tensor) else type(moved).__name__
            raise ConfigError(f"task {self.task.name!r}: its augment returned {got} for a batch of shape "
                              f"{tuple(x.shape)}; an augmentation must return a tensor of the batch's shape")
        with torch.no_grad():
            return moved, self._teacher(moved)

    def _finetune(
        self, model: nn.Module, policy: Policy, callback: Callback | None, seed: int
    ) -> tuple[list[tuple[int, float]], int, bool]:
        cfg, train, task = self.config, self._train, self.task
        history: list[tuple[int, float]] = []
        params = [p for p in model.parameters() if p.requires_grad]
        opt = make_optimizer(params, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
        sched = make_schedule(opt, cfg.schedule, cfg.steps)
        index = batches(len(train), cfg.batch_size, torch.Generator().manual_seed(seed))
        augment_rng = torch.Generator().manual_seed(seed + AUGMENT_SEED_OFFSET)
        checkpoints = set(cfg.checkpoints())
        ramp = cfg.ramp_steps()
        if ramp:
            ramp_masks(model, 0.0, cfg.prune_start_density)
        model.train()
        for step in range(1, cfg.steps + 1):
            idx = next(index)
            x, teacher = self._batch(idx, augment_rng)
            loss = self._loss(model(x), idx, policy, teacher)
            if not torch.isfinite(loss):
                raise TrialFailed(
                    f"fine-tune diverged at step {step}: loss={loss.item()} "
                    f"(optimizer={cfg.optimizer}, lr={cfg.lr}); lower finetune.lr or check "
                    "the policy's bit-widths"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ramp and (step == ramp or (step < ramp and step % cfg.prune_every == 0)):
                ramp_masks(model, step / ramp, cfg.prune_start_density)
            if step in checkpoints:
                metric = score(model, self._val, task.metric)
                history.append((step, metric))
                model.train()
                if callback is not None and callback(step, metric):
                    return history, step, step < cfg.steps
        if not history:  # a zero-step budget: score the compressed model as it is
            history.append((0, score(model, self._val, task.metric)))
        return history, cfg.steps, False


def _joined(train: Split, val: Split, task: str) -> Split:
    """The training and validation splits as one (``train_on="train+val"``)."""
    for part in ("x", "y"):
        a, b = getattr(train, part), getattr(val, part)
        if a.shape[1:] != b.shape[1:] or a.dtype != b.dtype:
            raise ConfigError(
                f"task {task!r}: cannot fine-tune on train+val: validation {part} is {b.dtype} "
                f"{tuple(b.shape[1:])} per sample but training {part} is {a.dtype} {tuple(a.shape[1:])}; "
                "refit only where both splits hold the same kind of inputs and targets")
    return Split(torch.cat([train.x, val.x]), torch.cat([train.y, val.y]))


def _is_identity(policy: Policy) -> bool:
    """No layer is compressed: the candidate is the base model itself (compress is skipped)."""
    default_id = policy.default is None or policy.default.is_identity
    return default_id and all(cfg.is_identity for _, cfg in policy.layers)


def evaluate_policy(
    task: Task,
    policy: Policy,
    *,
    config: FinetuneConfig | None = None,
    base: nn.Module | None = None,
    seed: int = 0,
    callback: Callback | None = None,
) -> EvalResult:
    """One-off evaluation (a search should keep one :class:`Evaluator` for all candidates)."""
    model = base if base is not None else base_model(task, seed)
    return Evaluator(task, model, config).evaluate(policy, callback, seed)
