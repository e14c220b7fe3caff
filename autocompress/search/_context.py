"""Everything a study's trials share: task, base model, bound space, cost models, evaluator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from autocompress.cost import file_bytes
from autocompress.evaluate import Evaluator
from autocompress.graph import channel_groups, layers
from autocompress.policy import Policy
from autocompress.search._bound import BoundSpace
from autocompress.search._early_stop import FrontStopper
from autocompress.search._latency import LatencyPredictor, latency_predictor
from autocompress.search.study_config import StudyConfig
from autocompress.tasks import Task, base_model, get_task


@dataclass
class SearchContext:
    cfg: StudyConfig
    task: Task
    base: nn.Module
    example: torch.Tensor  # a real training batch: tracing and calibration
    latency_input: torch.Tensor  # a batch of the study's latency.batch (1 unless it names one)
    bound: BoundSpace
    evaluator: Evaluator
    latency: LatencyPredictor | None
    fp32_bytes: int  # the fp32 model's artifact file
    fp32_latency_ms: float | None
    stopper: FrontStopper = field(default_factory=FrontStopper)

    def size_of(self, policy: Policy) -> int:
        """The artifact file's bytes (header included): what the size objective minimises."""
        return file_bytes(self.base, policy, self.example)

    def provenance(self) -> dict[str, object]:
        """Where a result comes from: task, base weights, latency model, package versions."""
        import optuna

        from autocompress import __version__

        return {
            "task": self.cfg.task,
            "task_settings": {k: str(v) for k, v in self.cfg.task_settings.items()},
            "seed": self.cfg.seed,
            "base_sha256": state_checksum(self.base),
            "latency_model": self.latency.model if self.latency else None,
            "latency_device": self.latency.device if self.latency else None,
            "latency_batch": self.cfg.latency_batch if self.latency else None,
            "versions": {"autocompress": __version__, "torch": torch.__version__, "optuna": optuna.__version__},
        }

    def latency_of(self, policy: Policy) -> float | None:
        if self.latency is None:
            return None
        return self.latency.predict(policy).total_ms


def state_checksum(model: nn.Module) -> str:
    """SHA-256 over the model's state tensors in key order (names, dtypes, shapes, bytes)."""
    import hashlib

    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def load_base(cfg: StudyConfig, progress: bool = True, base_state: Mapping[str, torch.Tensor] | None = None,
              task: Task | None = None) -> tuple[Task, nn.Module, torch.Tensor]:
    """The study's task, its trained base model (cached) and a real example batch.

    ``base_state``: the base weights to use instead (a Ray worker gets the driver's).
    ``task``: the study's task, when the caller has built it already.
    """
    task = task if task is not None else get_task(cfg.task, **dict(cfg.task_settings))
    if base_state is None:
        base = base_model(task, seed=cfg.seed, progress=progress)
    else:
        base = task.create_model(cfg.seed)
        base.load_state_dict(dict(base_state))
    return task, base.eval(), task.data().train.x[:64]


def bind_space(cfg: StudyConfig, base: nn.Module, example: torch.Tensor, task: Task | None = None) -> BoundSpace:
    """The study's space bound to the base model's layers and channel groups.

    For a task whose targets are the base model's own outputs (its fine-tune already is
    distillation, e.g. ``minilm-embed``), the space's distillation ranges are dropped: the
    temperature and alpha would do nothing and only dilute the sampler.
    """
    from dataclasses import replace

    from autocompress.errors import GraphError

    space = cfg.space
    if task is not None and task.targets != "labels":
        space = replace(space, distill=None)

    infos = layers(base, example)
    try:
        groups = channel_groups(base, example)
    except GraphError:  # untraceable model: the space offers no channel pruning
        groups = []
    return space.bind(infos, groups)


def build_context(cfg: StudyConfig, progress: bool = True,
                  base_state: Mapping[str, torch.Tensor] | None = None) -> SearchContext:
    task = get_task(cfg.task, **dict(cfg.task_settings))
    # The space is bound (layer names, ranks, channel groups checked) on an untrained copy
    # first: a mistake in it fails in seconds, before the base model is trained.
    bound = bind_space(cfg, task.create_model(cfg.seed).eval(), task.data().train.x[:64], task)
    task, base, example = load_base(cfg, progress, base_state, task)
    from autocompress.cost.profiling import timing_batch

    latency_input = timing_batch(example if len(example) >= cfg.latency_batch else task.data().train.x,
                                 cfg.latency_batch)
    device = cfg.latency_device
    latency = latency_predictor(device, base, latency_input, calibration=example) if device else None
    identity = Policy()
    return SearchContext(
        cfg=cfg,
        task=task,
        base=base,
        example=example,
        latency_input=latency_input,
        bound=bound,
        evaluator=Evaluator(task, base, cfg.finetune),
        latency=latency,
        fp32_bytes=file_bytes(base, identity, example),
        fp32_latency_ms=(
            latency.predict(identity).total_ms if latency else None
        ),
    )
