"""Export a trial as a reusable policy: replayed through the space, with provenance."""

from __future__ import annotations

from dataclasses import asdict

import optuna

from autocompress.errors import ConfigError
from autocompress.policy import Policy
from autocompress.search._context import bind_space, load_base, state_checksum
from autocompress.search.study_config import StudyConfig


def export_policy(cfg: StudyConfig, study: optuna.Study, number: int) -> Policy:
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise ConfigError(f"--trial {number}: no such trial in study {cfg.name!r} (it has {len(trials)} trials)")
    t = trials[number]
    if t.state != optuna.trial.TrialState.COMPLETE:
        raise ConfigError(f"--trial {number}: trial is {t.state.name}, only COMPLETE trials can be exported")
    _task, base, example = load_base(cfg, progress=False)
    policy = bind_space(cfg, base, example).sample(optuna.trial.FixedTrial(t.params, t.number))
    names = [o.name for o in cfg.objectives]
    predicted = {
        "metric": t.values[names.index("metric")] if t.values else None,
        "metric_name": "validation " + "metric",
        "size_bytes": t.user_attrs.get("size_bytes"),
        "latency_ms": t.user_attrs.get("latency_ms"),
        "latency_device": cfg.latency_device,
        "status": t.user_attrs.get("status"),
    }
    recorded = dict(study.user_attrs.get("provenance", {}))
    recorded["base_sha256"] = state_checksum(base)
    return policy.with_meta(
        study=cfg.name,
        trial=number,
        predicted=predicted,
        provenance=recorded,
        task={"name": cfg.task, "settings": dict(cfg.task_settings), "seed": cfg.seed},
        finetune=asdict(cfg.finetune),
    )
