"""Apply a policy: fresh base model -> fine-tuned train form -> real artifact, measured.

Every figure reported here is measured on the artifact written to disk and loaded back
(size of its tensors and of the file; latency of the loaded deploy form; test metric).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from autocompress.artifact import load_artifact, save_artifact, state_bytes
from autocompress.compress import to_deploy
from autocompress.cost import size_bytes
from autocompress.errors import ConfigError
from autocompress.evaluate import Evaluator, FinetuneConfig
from autocompress.policy import Policy
from autocompress.tasks import base_model, get_task, score_parts, test_metric, validation_metric


def _task_of(policy: Policy, task: str | None, data_dir: str | None) -> tuple[str, dict[str, Any], int]:
    recorded = dict(policy.meta.get("task") or {})
    name = task or recorded.get("name")
    if not name:
        raise ConfigError("the policy records no task (it was not exported from a study): pass --task NAME")
    settings = dict(recorded.get("settings") or {}) if name == recorded.get("name") else {}
    if data_dir is not None:
        settings["data_dir"] = data_dir
    return name, settings, int(recorded.get("seed", 0))


def _finetune_config(policy: Policy, steps: int | None) -> FinetuneConfig:
    raw = dict(policy.meta.get("finetune") or {})
    known = set(FinetuneConfig.__dataclass_fields__)
    cfg = FinetuneConfig(**{k: v for k, v in raw.items() if k in known})
    if steps is not None:
        from dataclasses import replace

        cfg = replace(cfg, steps=steps)
    return cfg


MEASURED_PREFIX = "measured:"  # study user attr "measured:<trial>" = measured figures


def measured_figures(study_attrs: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Trial number -> figures that `apply` measured on that trial's artifact."""
    out = {}
    for key, value in study_attrs.items():
        if key.startswith(MEASURED_PREFIX) and key[len(MEASURED_PREFIX):].isdigit() and isinstance(value, dict):
            out[int(key[len(MEASURED_PREFIX):])] = value
    return out


def record_measured(policy: Policy, report: dict[str, Any]) -> str:
    """Store the measured figures beside the study the policy was exported from (best effort)."""
    import optuna

    from autocompress.search._storage import open_storage

    study, trial, url = (policy.meta.get(k) for k in ("study", "trial", "storage"))
    if not (study and isinstance(trial, int) and url):
        return "measurements not recorded in a study (the policy names no study storage)"
    try:
        s = optuna.load_study(study_name=study, storage=open_storage(url))
        s.set_user_attr(f"{MEASURED_PREFIX}{trial}", {**report["measured"],
                                                     "fp32_test_metric": report["fp32"]["test_metric"]})
    except Exception as e:  # the artifact is written either way; say why the study was not updated
        return f"measurements not recorded in study {study!r} ({type(e).__name__}: {e})"
    return f"measurements recorded in study {study!r} (trial {trial}); the dashboard shows them"


def apply_policy(policy: Policy, out_dir: Path, *, task: str | None = None, data_dir: str | None = None,
                 seed: int | None = None, steps: int | None = None, threads: int = 1,
                 refit: bool = False) -> dict[str, Any]:
    """Build, save, reload and measure the artifact of ``policy``; returns the report.

    ``refit``: fine-tune on the training *and* validation splits. Use it once a policy has
    been chosen on validation: the final model sees all the labelled data (as a paper trains
    on the whole training set), the test split stays untouched, and the report marks the
    validation metric as no longer held out (``measured.val_held_out``)."""
    from autocompress.cost.latency.profiler import measure_model
    from autocompress.search._context import state_checksum

    name, settings, recorded_seed = _task_of(policy, task, data_dir)
    seed = recorded_seed if seed is None else seed
    t = get_task(name, **settings)
    base = base_model(t, seed=seed).eval()
    checksum = state_checksum(base)
    expected = (policy.meta.get("provenance") or {}).get("base_sha256")
    data = t.data()
    example = data.train.x[:64]
    one = data.train.x[:1]
    ev = Evaluator(t, base, _finetune_config(policy, steps), train_on="train+val" if refit else "train")
    trained, result = ev.finetune(policy, seed=seed)
    deploy = to_deploy(trained)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "model.safetensors"
    info = save_artifact(deploy, policy, path, example)
    loaded = load_artifact(path, t.create_model(seed))
    with torch.no_grad():
        lat = measure_model(loaded, one, threads=threads)
        base_lat = measure_model(base, one, threads=threads)
    test_scores = score_parts(loaded, data.test, t.metric)  # the metric, and its parts if any
    parts = {k: v for k, v in test_scores.items() if k != t.metric.name}
    predicted = dict(policy.meta.get("predicted") or {})
    predicted["size_bytes_now"] = size_bytes(base, policy, example)
    return {
        "artifact": str(path),
        "task": name,
        "metric_name": t.metric.name,
        "base_sha256": checksum,
        "base_matches_export": expected is None or expected == checksum,
        "finetune_steps": result.steps,
        "finetune_data": ev.train_on,
        "predicted": predicted,
        "measured": {
            "tensor_bytes": info.tensor_bytes,
            "file_bytes": info.file_bytes,
            "latency_ms": lat,
            "latency_threads": threads,
            "val_metric": validation_metric(t, loaded),
            "val_held_out": not refit,
            "test_metric": test_scores[t.metric.name],
            **({"test_metric_parts": parts} if parts else {}),
        },
        "fp32": {
            "tensor_bytes": state_bytes(base),
            "latency_ms": base_lat,
            "test_metric": test_metric(t, base),
        },
    }
