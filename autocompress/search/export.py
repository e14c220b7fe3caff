"""Export a trial as a reusable policy: replayed through the space, with provenance.

Two routes give the same file:

- ``export_policy(cfg, study, n)`` (``autocompress export``) replays the space's ``sample`` on
  the trial's parameters with the study file's config and the base model at hand;
- ``stored_export(study, n)`` (the dashboard, which has only the storage) reads the policy
  and the resolved study config that the search stored beside the trial.

Both build the meta with :func:`export_meta`, so they can only differ if the stored policy
differs from the replayed one or the base model changed since the search (tested equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import optuna

from autocompress.errors import ConfigError
from autocompress.policy import Policy
from autocompress.search._context import bind_space, load_base, state_checksum
from autocompress.search.study_config import StudyConfig
from autocompress.study.records import STUDY_CONFIG, StudyRecord, TrialRecord


def finished_trial(study: optuna.Study, number: int, name: str) -> optuna.trial.FrozenTrial:
    """The COMPLETE trial ``number`` of ``study``, or a ConfigError saying why not."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise ConfigError(f"--trial {number}: no such trial in study {name!r} (it has {len(trials)} trials)")
    t = trials[number]
    if t.state != optuna.trial.TrialState.COMPLETE:
        raise ConfigError(f"--trial {number}: trial is {t.state.name}, only COMPLETE trials can be exported")
    return t


def export_meta(
    cfg: StudyConfig, study_attrs: Mapping[str, Any], t: optuna.trial.FrozenTrial, base_sha256: str | None,
    storage: str | None = None,
) -> dict[str, Any]:
    """The ``meta`` of an exported policy: predicted figures, provenance, task, fine-tune.

    ``storage``: the storage the study was read from (default: the study config's); it is
    where ``apply`` records its measurements."""
    names = [o.name for o in cfg.objectives]
    r = TrialRecord.of(t)
    predicted = {
        "metric": t.values[names.index("metric")] if t.values else None,
        "metric_name": "validation " + "metric",
        "size_bytes": r.size_bytes,
        "tensor_bytes": r.tensor_bytes,
        "latency_ms": r.latency_ms,
        "latency_device": cfg.latency_device,
        "status": r.status,
    }
    recorded = dict(StudyRecord.from_attrs(study_attrs).provenance)
    recorded["base_sha256"] = base_sha256
    url = storage or cfg.storage
    return {
        "study": cfg.name,
        "trial": t.number,
        # where `autocompress apply` records its measurements (never a URL with a password)
        "storage": None if "@" in url else url,
        "predicted": predicted,
        "provenance": recorded,
        "task": {"name": cfg.task, "settings": dict(cfg.task_settings), "seed": cfg.seed},
        "finetune": asdict(cfg.finetune),
    }


def export_policy(cfg: StudyConfig, study: optuna.Study, number: int, storage: str | None = None) -> Policy:
    """Trial ``number`` replayed through the space; ``storage``: the URL ``study`` was read from."""
    t = finished_trial(study, number, cfg.name)
    task, base, example = load_base(cfg, progress=False)
    policy = bind_space(cfg, base, example, task).sample(optuna.trial.FixedTrial(t.params, t.number))
    return policy.with_meta(**export_meta(cfg, study.user_attrs, t, state_checksum(base), storage))


def stored_config(study: optuna.Study) -> StudyConfig:
    """The resolved study config the search stored in the study (no study file needed)."""
    raw = StudyRecord.of(study).study_config
    if raw is None:
        raise ConfigError(f"study {study.study_name!r} stores no {STUDY_CONFIG!r} (it was run by an older "
                          "autocompress); export it with `autocompress export STUDY.yaml --trial N`")
    # warm-start policy files are checked to exist when a config loads, but play no part in an export
    return StudyConfig.from_dict({**raw, "warm_start": False}, source=f"study {study.study_name!r}")


def stored_export(study: optuna.Study, number: int, storage: str | None = None) -> Policy:
    """The policy ``autocompress export`` writes for trial ``number``, from the storage alone
    (``storage``: the URL ``study`` was read from)."""
    cfg = stored_config(study)
    t = finished_trial(study, number, cfg.name)
    raw = TrialRecord.of(t).policy
    if raw is None:
        raise ConfigError(f"trial {number} stores no policy (it was run by an older autocompress); "
                          "export it with `autocompress export STUDY.yaml --trial N`")
    sha = StudyRecord.of(study).provenance.get("base_sha256") or None
    policy = Policy.from_dict(dict(raw), source=f"trial {number} policy")
    return policy.with_meta(**export_meta(cfg, study.user_attrs, t, sha, storage))
