"""Apply a policy: fresh base model -> fine-tuned train form -> real artifact, measured.

Every figure reported here is measured on the artifact written to disk and loaded back
(size of its tensors and of the file; latency of the loaded deploy form; test metric).

A policy file is data. The task it records (``meta.task``) is used only if it is a
registered task name; a ``package.module:function`` task runs someone's code, so it is
used only when the user names it (``--task``) or passes the study file (``--study``).
Measurements are recorded into a study storage the user names (``--storage``), or into the
policy's recorded one only if that is an existing SQLite study file: a policy alone never
makes ``apply`` connect to a database server or create a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from autocompress import files
from autocompress.artifact import load_artifact, save_artifact, state_bytes
from autocompress.compress import to_deploy
from autocompress.cost import size_report
from autocompress.cost.profiling import OrtTimer, timing_batch
from autocompress.errors import ConfigError
from autocompress.evaluate import Evaluator, FinetuneConfig
from autocompress.policy import Policy
from autocompress.tasks import (
    base_model,
    check_builtin_task,
    get_task,
    score_parts,
    test_metric,
    validation_metric,
)


@dataclass(frozen=True)
class TaskChoice:
    """Which task ``apply`` builds, with what settings, seed and fine-tune, and why."""

    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)


def resolve_task(policy: Policy, *, task: str | None = None, study: Any = None, data_dir: str | None = None,
                 source: str = "policy") -> TaskChoice:
    """The task to apply ``policy`` on: the study file's (``study``: a StudyConfig), the one
    the user names (``task``), or the built-in task the policy records; never user code that
    only the policy names."""
    recorded = policy.record.task
    finetune = _finetune_config(policy, None, source)
    if study is not None:
        choice = TaskChoice(study.task, dict(study.task_settings), study.seed, study.finetune)
    elif task is not None:
        same = recorded if recorded is not None and recorded.name == task else None
        choice = TaskChoice(task, dict(same.settings) if same else {}, same.seed if same else 0, finetune)
    elif recorded is None:
        raise ConfigError(f"{source}: the policy records no task (it was not exported from a study): "
                          "pass --task NAME or --study STUDY.yaml")
    else:
        check_builtin_task(recorded.name, f"{source}: meta.task.name")
        choice = TaskChoice(recorded.name, dict(recorded.settings), recorded.seed, finetune)
    if data_dir is not None:
        choice.settings["data_dir"] = data_dir
    return choice


def _finetune_config(policy: Policy, steps: int | None, source: str = "policy") -> FinetuneConfig:
    """The study's fine-tune as the policy recorded it (validated; absent fields default)."""
    from autocompress.search.study_config import parse_finetune

    cfg = parse_finetune(dict(policy.record.finetune), f"{source}: meta.finetune")
    return cfg if steps is None else replace(cfg, steps=steps)


def record_measured(policy: Policy, report: dict[str, Any], storage: str | None = None) -> str:
    """Store the measured figures beside the study the policy was exported from (best effort).

    ``storage``: the study storage the user names; without it, only the policy's recorded
    storage when that is an existing SQLite file holding the study."""

    from autocompress.search import open_study
    from autocompress.study.records import write_measured

    meta = policy.record
    study, trial = meta.study, meta.trial
    if not (study and trial is not None):
        return "measurements not recorded in a study (the policy names no study and trial)"
    url = storage or meta.storage
    if not url:
        return "measurements not recorded in a study (the policy names no storage; pass --storage URL)"
    if storage is None and not _is_recorded_sqlite_study(url, study):
        return (f"measurements not recorded: the policy names storage {url!r}, which is not an existing SQLite "
                f"study file holding {study!r}; pass --storage URL to record them there")
    try:
        s = open_study(url, name=study).study  # an existing storage only: never creates one
        write_measured(s, trial, {**report["measured"], "fp32_test_metric": report["fp32"]["test_metric"]})
    except Exception as e:  # the artifact is written either way; say why the study was not updated
        return f"measurements not recorded in study {study!r} ({type(e).__name__}: {' '.join(str(e).split())})"
    return f"measurements recorded in study {study!r} (trial {trial}); the dashboard shows them"


def _is_recorded_sqlite_study(url: str, study: str) -> bool:
    """Whether ``url`` is ``sqlite:///FILE`` for an existing Optuna database holding ``study``,
    checked read-only (opening it with Optuna would create tables in any SQLite file)."""
    import sqlite3

    if not url.startswith("sqlite:///"):
        return False
    path = Path(url[len("sqlite:///"):])
    if not path.is_file():
        return False
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT 1 FROM studies WHERE study_name = ?", (study,)).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


FORMATS = ("safetensors", "onnx", "both")


def apply_policy(policy: Policy, out_dir: Path, *, task: str | None = None, data_dir: str | None = None,
                 seed: int | None = None, steps: int | None = None, threads: int = 1,
                 refit: bool = False, study: Any = None, source: str = "policy",
                 format: str = "safetensors") -> dict[str, Any]:
    """Build, save, reload and measure the artifact of ``policy``; returns the report.

    Writes ``out_dir/model.safetensors`` and, beside it, ``out_dir/policy.yaml`` (the policy
    with its provenance; the artifact's header holds only what loading needs). The folder is
    checked before any work. ``task`` / ``study``: see :func:`resolve_task`.

    ``refit``: fine-tune on the training *and* validation splits. Use it once a policy has
    been chosen on validation: the final model sees all the labelled data (as a paper trains
    on the whole training set), the test split stays untouched, and the report marks the
    validation metric as no longer held out (``measured.val_held_out``).

    ``format``: ``safetensors`` (the artifact), ``onnx`` (also ``model.onnx``, run and measured
    in ONNX Runtime: its file, latency and test metric go to ``report["onnx"]``, beside an fp32
    ONNX export of the base model) or ``both`` (the same as ``onnx``: the safetensors artifact
    is always written, it is what the ONNX file is exported from)."""
    if format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if format != "safetensors":
        _require_onnx()
    choice = resolve_task(policy, task=task, study=study, data_dir=data_dir, source=source)
    out_dir, created = files.check_output_dir(out_dir, "artifact")
    try:
        return _apply(policy, out_dir, choice, seed, steps, threads, refit, onnx=format != "safetensors")
    except BaseException:
        if created:
            files.remove_if_empty(out_dir)
        raise


def _require_onnx() -> None:
    import importlib.util

    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        raise ConfigError("--format onnx needs the onnx extra: pip install 'autocompress[onnx]'")


def _measure_onnx(loaded: Any, base: Any, t: Any, out_dir: Path, example: torch.Tensor, one: torch.Tensor,
                  threads: int) -> dict[str, Any]:
    """Export the loaded artifact (and the fp32 base) to ONNX; measure both in ONNX Runtime."""
    import tempfile

    from autocompress.cost.profiling import measure_model
    from autocompress.runtime import OrtModel, export_onnx

    path = export_onnx(loaded, out_dir / "model.onnx", example)
    session = OrtModel(path, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:  # the fp32 base in the same runtime, for the ratio
        base_path = export_onnx(base, Path(tmp) / "fp32.onnx", example)
        base_ms = measure_model(OrtModel(base_path, threads=threads), one, threads=threads)
        base_bytes = base_path.stat().st_size
    with torch.no_grad():
        diff = float((session(example) - loaded(example)).abs().max())
    return {"path": str(path), "file_bytes": path.stat().st_size, "runtime": "onnxruntime",
            "latency_ms": measure_model(session, one, threads=threads), "latency_threads": threads,
            "test_metric": test_metric(t, session), "max_abs_diff_vs_artifact": diff,
            "fp32_file_bytes": base_bytes, "fp32_latency_ms": base_ms}


def _apply(policy: Policy, out_dir: Path, choice: TaskChoice, seed: int | None, steps: int | None,
           threads: int, refit: bool, onnx: bool = False) -> dict[str, Any]:
    from autocompress.cost.profiling.profiler import measure_model
    from autocompress.search import state_checksum

    seed = choice.seed if seed is None else seed
    finetune = choice.finetune if steps is None else replace(choice.finetune, steps=steps)
    t = get_task(choice.name, **choice.settings)
    base = base_model(t, seed=seed).eval()
    checksum = state_checksum(base)
    expected = policy.record.provenance.base_sha256
    data = t.data()
    example = data.train.x[:64]
    prov = policy.record.provenance
    batch = max(prov.latency_batch or 1, 1)  # measured at the batch the study optimised
    one = timing_batch(data.train.x, batch)
    on_ort = prov.latency_model == OrtTimer.MODEL  # the study timed candidates in ONNX Runtime
    ev = Evaluator(t, base, finetune, train_on="train+val" if refit else "train")
    trained, result = ev.finetune(policy, seed=seed)
    deploy = to_deploy(trained, policy)
    path = out_dir / "model.safetensors"
    info = save_artifact(deploy, policy, path, example)
    policy.save(out_dir / "policy.yaml")
    loaded = load_artifact(path, t.create_model(seed))
    with torch.no_grad():
        if on_ort:  # measured where the search measured: the artifact exported, in ONNX Runtime
            timer = OrtTimer(base, one, example, threads=threads)
            lat, base_lat = timer.time_model(loaded), timer.time_model(base)
        else:
            lat = measure_model(loaded, one, threads=threads)
            base_lat = measure_model(base, one, threads=threads)
    test_scores = score_parts(loaded, data.test, t.metric)  # the metric, and its parts if any
    parts = {k: v for k, v in test_scores.items() if k != t.metric.name}
    predicted = dict(policy.meta.get("predicted") or {})
    now = size_report(base, policy, example)
    predicted["file_bytes_now"], predicted["tensor_bytes_now"] = now.file, now.total
    report: dict[str, Any] = {
        "artifact": str(path),
        "task": choice.name,
        "metric_name": t.metric.name,
        "base_sha256": checksum,
        "base_matches_export": expected is None or expected == checksum,
        "finetune_steps": result.steps,
        "finetune_data": ev.train_on,
        "predicted": predicted,
        "measured": {
            "file_bytes": info.file_bytes,
            "tensor_bytes": info.tensor_bytes,
            "latency_ms": lat,
            "latency_threads": threads,
            "latency_batch": batch,
            "latency_runtime": "onnxruntime" if on_ort else "torch",
            "val_metric": validation_metric(t, loaded),
            "val_held_out": not refit,
            "test_metric": test_scores[t.metric.name],
            **({"test_metric_parts": parts} if parts else {}),
        },
        "fp32": {
            "tensor_bytes": state_bytes(base),
            "file_bytes": size_report(base, Policy(), example).file,
            "latency_ms": base_lat,
            "test_metric": test_metric(t, base),
        },
    }
    if onnx:  # the same loaded artifact and base, measured in ONNX Runtime
        report["onnx"] = _measure_onnx(loaded, base, t, out_dir, example, one, threads)
    return report
