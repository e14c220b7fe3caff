"""``autocompress validate FILE``: check a policy, search-space or study file.

The file is read once (size limit, UTF-8, safe YAML) and checked as what its content says
it is. Nothing in it is executed:

- a **policy**'s fields are validated; its layer names are checked against a task's model
  when the policy records a built-in task or ``--task`` names one. A policy recording a user
  task (``package.module:function``) is flagged: ``validate`` and ``apply`` never import it
  because a policy says so;
- a **study** must name a built-in task or a ``package.module:function`` (not imported here);
- a **search space** is validated as a whole.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from autocompress.errors import ConfigError, GraphError, PolicyError


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="a policy, search-space or study YAML file")
    p.add_argument("--task", default=None,
                   help="policy files: check the layer names against this task's model (a "
                        "package.module:function task runs that code)")


def kind_of(raw: Any, path: Path) -> str:
    """'policy', 'space' or 'study', from the parsed content."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    if "task" in raw:
        return "study"
    if raw.get("format") == "autocompress.policy" or {"layers", "default", "meta"} & set(raw):
        return "policy"
    if "rules" in raw or raw.get("format") == "autocompress.space":
        return "space"
    if set(raw) <= {"distill", "version", "format"}:
        return "policy"
    raise ConfigError(f"{path}: neither a policy (layers, default, distill, meta), a search space (rules) nor a "
                      f"study (task): its keys are {sorted(map(str, raw))[:10]}")


def run(args: argparse.Namespace) -> int:
    from autocompress import files

    path: Path = args.file
    raw = files.read_yaml(path, "config")
    kind = kind_of(raw, path)
    if kind == "policy":
        for line in _policy(raw, path, args.task):
            print(line)
    elif kind == "study":
        print(_study(raw, path))
    else:
        from autocompress.search.space import SearchSpace

        SearchSpace.from_dict(raw, str(path))
        print(f"{path}: valid search space")
    return 0


def _policy(raw: Any, path: Path, task: str | None) -> list[str]:
    from autocompress.policy import Policy
    from autocompress.search.study_config import parse_finetune
    from autocompress.tasks import TASKS, is_user_task

    p = Policy.from_dict(raw, str(path))
    parse_finetune(dict(p.record.finetune), f"{path}: meta.finetune")  # as `apply` reads it
    lines = [f"{path}: valid policy ({len(p.layers)} layer entries, default={'yes' if p.default else 'no'})"]
    recorded = p.record.task
    name = task or (recorded.name if recorded is not None else None)
    if name is None:
        lines.append(f"{path}: layer names not checked: the policy records no task; pass --task NAME "
                     "to check them against its model")
    elif task is None and is_user_task(name):
        lines.append(f"{path}: note: meta.task.name {name!r} is user code (package.module:function); a policy "
                     f"never runs code, so `apply` uses it only with --task {name} or --study; layer names not "
                     f"checked (pass --task {name} to check them, which imports it)")
    elif not is_user_task(name) and name not in TASKS.names():
        from autocompress.errors import nearest

        raise ConfigError(f"{path}: meta.task.name: unknown task {name!r}; {nearest(name, TASKS.names())}")
    else:
        lines.append(_check_layers(p, name, recorded.settings if recorded and recorded.name == name else {},
                                   recorded.seed if recorded and recorded.name == name else 0, path))
    return lines


def _check_layers(policy: Any, name: str, settings: Any, seed: int, path: Path) -> str:
    """Resolve the policy on the task's model (no training: a fresh model, zero inputs) and
    size it, which checks every layer name, rank, pattern and bit-width against real shapes."""
    from autocompress.cost import size_report
    from autocompress.graph import layers
    from autocompress.models import MODELS
    from autocompress.tasks import get_task

    t = get_task(name, **dict(settings))
    model = t.create_model(seed).eval()
    x = MODELS.get(t.model).example_input(batch=2)  # shapes only: no data is read
    names = [i.name for i in layers(model, x)]
    try:
        policy.resolve(names, strict=True)
        report = size_report(model, policy, x)
    except (PolicyError, GraphError) as e:
        raise PolicyError(f"{path}: {e} (checked against the model of task {name!r})") from None
    return (f"{path}: checked against the model of task {name!r}: {len(names)} compressible layers, artifact "
            f"{report.file:,} bytes ({report.total:,} in tensors)")


def _study(raw: Any, path: Path) -> str:
    from autocompress.search.study_config import StudyConfig
    from autocompress.tasks import TASKS, is_user_task

    # warm-start and space paths resolve from the study file's folder, as `search` does
    cfg = StudyConfig.from_dict(raw, str(path), base_dir=path.resolve().parent)
    if is_user_task(cfg.task):
        return (f"{path}: valid study {cfg.name!r} (user task {cfg.task!r}: not imported by validate; "
                "`search` imports it, so its module must be importable, e.g. on PYTHONPATH)")
    if cfg.task not in TASKS.names():
        from autocompress.errors import nearest

        raise ConfigError(f"{path}: task: unknown task {cfg.task!r}; {nearest(cfg.task, TASKS.names())}")
    return f"{path}: valid study {cfg.name!r} (task {cfg.task!r})"
