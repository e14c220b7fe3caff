"""The Pareto-front points of a stored study, each fine-tuned again as ``apply`` does (the study's
fine-tune, seed and data) and turned into its deploy form: what the benchmarks time beside the
baselines. Imported by ``bench_onnx.py`` and ``bench_minilm.py``."""

from __future__ import annotations

from torch import nn

from autocompress import Policy
from autocompress.compress import to_deploy


def front_points(study_ref: str, base: nn.Module, task: object, task_name: str) -> list[tuple[str, Policy, nn.Module]]:
    """(label, policy, fine-tuned deploy form) of every front point of a ``task_name`` study."""
    from autocompress.evaluate import Evaluator
    from autocompress.results import front_table, stored_policy
    from autocompress.search import open_study

    opened = open_study(study_ref)
    cfg = opened.config
    if cfg.task != task_name:
        raise SystemExit(f"--study: a {task_name} study is needed, got task {cfg.task!r}")
    front = set(front_table(opened.study)["trial"])
    out = []
    for t in opened.study.get_trials(deepcopy=False):
        policy = stored_policy(t) if t.number in front else None
        if policy is not None:
            trained, _ = Evaluator(task, base, cfg.finetune).finetune(policy, seed=cfg.seed)  # type: ignore[arg-type]
            out.append((f"front trial {t.number}", policy, to_deploy(trained, policy)))
    return out
