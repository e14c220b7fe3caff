"""Base models: trained once per (task, seed, training settings, data) and cached on disk.

The cache directory is ``$AUTOCOMPRESS_CACHE`` (default ``~/.cache/autocompress``); weights
are stored with safetensors (no pickle), beside a small JSON record of how they scored.
A pretrained task's base model is its registered model as built (``Task.pretrained``):
never trained, and not copied into the cache since it can be rebuilt from its package.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from autocompress.errors import ConfigError, TrialFailed
from autocompress.tasks._task import Task
from autocompress.tasks._train import (
    batches,
    make_optimizer,
    make_schedule,
    test_metric,
    validation_metric,
)

CACHE_ENV = "AUTOCOMPRESS_CACHE"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/autocompress").expanduser()


def base_key(task: Task, seed: int) -> str:
    """``<task>-s<seed>-<hash>``: the hash covers architecture, training settings and data."""
    data = task.data()
    h = hashlib.blake2b(digest_size=8)
    h.update(json.dumps([task.model, dataclasses.asdict(task.train)], sort_keys=True).encode())
    for t in (data.train.x, data.train.y):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())
    return f"{task.name.replace(':', '_').replace('/', '_')}-s{seed}-{h.hexdigest()}"


def train_base(task: Task, seed: int = 0, progress: bool = True) -> nn.Module:
    """Train the task's model from scratch on the training split (deterministic per seed)."""
    from tqdm.auto import tqdm

    if task.pretrained:
        raise ConfigError(f"task {task.name!r} is pretrained: its base model is "
                          "task.create_model() as it is (use base_model), there is nothing to train")

    cfg, train = task.train, task.data().train
    model = task.create_model(seed)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum,
                         cfg.weight_decay)
    per_epoch = max(1, len(train) // cfg.batch_size)
    total = cfg.epochs * per_epoch
    sched = make_schedule(opt, cfg.schedule, total)
    gen = torch.Generator().manual_seed(seed)
    index = batches(len(train), cfg.batch_size, gen)
    model.train()
    bar = tqdm(range(total), desc=f"training {task.name} (seed {seed})", disable=not progress,
               leave=False)
    for step in bar:
        idx = next(index)
        loss = task.loss(model(train.x[idx]), train.y[idx])
        if not torch.isfinite(loss):
            raise TrialFailed(f"base training of {task.name!r} diverged at step {step}: "
                              f"loss={loss.item()}; lower the task's train.lr ({cfg.lr})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    return model.eval()


def base_model(
    task: Task,
    seed: int = 0,
    *,
    directory: str | os.PathLike[str] | None = None,
    progress: bool = True,
    retrain: bool = False,
) -> nn.Module:
    """The trained base model of ``task``, from the cache or trained now and cached.

    Example::

        model = base_model(get_task("digits-cnn"))   # ~20 s the first time, then instant

    A pretrained task (``task.pretrained``) returns ``task.create_model(seed)``: nothing is
    trained, read from or written to the cache, and ``retrain`` has no effect.
    """
    if task.pretrained:
        return task.create_model(seed).eval()
    root = Path(directory) if directory is not None else cache_dir()
    key = base_key(task, seed)
    weights, record = root / f"{key}.safetensors", root / f"{key}.json"
    if weights.is_file() and not retrain:
        model = task.create_model(seed)
        model.load_state_dict(load_file(str(weights)))
        return model.eval()
    start = time.perf_counter()
    model = train_base(task, seed, progress)
    seconds = time.perf_counter() - start
    root.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp")
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    os.replace(tmp, weights)  # atomic: a killed run never leaves half a file
    info: dict[str, Any] = {
        "task": task.name, "model": task.model, "seed": seed,
        "train": dataclasses.asdict(task.train), "train_seconds": round(seconds, 2),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        f"val_{task.metric.name}": validation_metric(task, model),
        f"test_{task.metric.name}": test_metric(task, model),
    }
    record.write_text(json.dumps(info, indent=2) + "\n")
    return model


def base_record(task: Task, seed: int = 0,
                directory: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The JSON record written beside a cached base model (None if not trained yet, and
    always for a pretrained task, whose base model is never trained)."""
    if task.pretrained:
        return None
    root = Path(directory) if directory is not None else cache_dir()
    path = root / f"{base_key(task, seed)}.json"
    return json.loads(path.read_text()) if path.is_file() else None
