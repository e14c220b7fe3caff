"""The search controller: an Optuna study over the joint space, resumable from its storage.

Running the same study file again resumes: trials already finished count against the
budget, and a trial left RUNNING by a killed process is marked FAILED (its parameters are
enqueued again, so the candidate is not lost).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna

from autocompress.errors import ConfigError
from autocompress.search._context import SearchContext, build_context, state_checksum
from autocompress.search._explore import ExploringSampler
from autocompress.search._loop import replay_stopper as replay_stopper  # re-exported
from autocompress.search._loop import run_trials
from autocompress.search._progress import Progress
from autocompress.search._samplers import SAMPLERS, build_sampler
from autocompress.search.study_config import StudyConfig
from autocompress.study import Liveness, give_up_and_requeue, undo_on_failure
from autocompress.study.records import Baseline, Objective, StudyRecord, write_study_record

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)


@dataclass(frozen=True)
class SearchResult:
    study: optuna.Study
    context: SearchContext
    output_dir: Path
    trials_run: int


def make_sampler(cfg: StudyConfig, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded with ``seed`` (default: the study's seed), able to explore
    at random when it keeps re-proposing evaluated candidates (``_dedup.ExploringSampler``)."""
    seed = cfg.seed if seed is None else seed
    if cfg.sampler.name not in SAMPLERS:
        raise ConfigError(f"{cfg.source}: sampler.name must be one of {', '.join(SAMPLERS)}, got {cfg.sampler.name!r}")
    base = build_sampler(cfg.sampler.name, cfg.sampler.settings, seed)
    return ExploringSampler(base, seed=None if seed is None else seed + 1)


def worker_seed(study_seed: int, identity: str | None = None) -> int:
    """A sampler seed for one of several workers: derived from the study's seed and a worker
    identity (host, process, a random token), so workers asking together get different
    candidates. The ``search`` process itself keeps the study's seed (a single-process search
    is reproducible)."""
    import hashlib
    import os
    import secrets
    import socket

    identity = identity or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
    digest = hashlib.sha256(f"{study_seed}|{identity}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def open_study(cfg: StudyConfig, storage: str | optuna.storages.BaseStorage | None = None,
               sampler_seed: int | None = None) -> optuna.Study:
    """Create or load the study named in ``cfg`` in its storage."""
    from autocompress.study import open_storage

    study = optuna.create_study(
        study_name=cfg.name,
        storage=storage if storage is not None else open_storage(cfg.storage, cfg.workers),
        sampler=make_sampler(cfg, sampler_seed),
        directions=[optuna.study.StudyDirection[d.upper()] for d in cfg.directions],
        load_if_exists=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([_metric_label(o.name, o.device, o.batch) for o in cfg.objectives])
    return study


def _metric_label(name: str, device: str | None, batch: int = 1) -> str:
    from autocompress.search._latency import device_label

    return {"metric": "metric", "size": "size_kb"}.get(name, f"latency_ms[{device_label(str(device), batch)}]")


def recover_stale(study: optuna.Study) -> int:
    """Mark trials left RUNNING by a killed process FAILED and enqueue their params again.

    Only for storages without heartbeats (SQLite), where this process is the only worker:
    with heartbeats, a RUNNING trial may belong to a live worker (see ``_liveness``).
    """
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in running:
        give_up_and_requeue(study, t._trial_id, "interrupted; re-enqueued")
    return len(running)


def record_baseline(ctx: SearchContext, study: optuna.Study) -> None:
    """Store what reading the study later needs: objectives, fp32 baseline, provenance, config."""
    cfg = ctx.cfg
    write_study_record(
        study,
        objectives=[Objective(o.name, o.direction, o.device) for o in cfg.objectives],
        baseline=Baseline(ctx.evaluator.base_metric, ctx.fp32_bytes / 1024.0, ctx.fp32_latency_ms),
        provenance=ctx.provenance(),
        study_config=cfg.to_dict(),  # the dashboard exports without the study file
    )


def check_same_base(ctx: SearchContext, study: optuna.Study) -> None:
    """A worker joining a study must fine-tune from the same base weights as the others."""
    theirs = StudyRecord.of(study).provenance.get("base_sha256")
    ours = state_checksum(ctx.base)
    if theirs and theirs != ours:
        raise ConfigError(
            f"study {ctx.cfg.name!r}: its trials used base weights {theirs[:12]}, this process has "
            f"{ours[:12]} (task {ctx.cfg.task!r}, seed {ctx.cfg.seed}); give every worker the same "
            f"base-model cache (AUTOCOMPRESS_CACHE on a shared path, or copy the cached files)"
        )


def prepare(cfg: StudyConfig, progress: bool = True, workers: int | None = None,
            sampler_seed: int | None = None) -> tuple[SearchContext, optuna.Study, Liveness]:
    """Open (or join) the study, build the context, recover what dead processes left, warm start.

    The storage is opened first, so an unreachable database fails before any model is built.
    """
    from autocompress.search._warm_start import enqueue_warm_start
    from autocompress.study import open_storage

    storage = open_storage(cfg.storage, cfg.workers if workers is None else workers)
    ctx = build_context(cfg, progress=progress)
    study = open_study(cfg, storage, sampler_seed)
    check_same_base(ctx, study)
    record_baseline(ctx, study)
    liveness = Liveness(study)
    if liveness.enabled:
        liveness.fail_stale()
    else:  # SQLite: this process is the study's only worker, so RUNNING means interrupted
        recover_stale(study)
    if cfg.warm_start.enabled and not study.get_trials(deepcopy=False):
        enqueue_warm_start(ctx, study)
    return ctx, study, liveness


def require_ray() -> None:
    """Ray is an optional extra: a clear error, before any work, when it is missing."""
    import importlib.util

    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.tune") is None:
        raise ConfigError("backend 'ray' needs Ray Tune, which is not installed: pip install 'autocompress[ray]' "
                          "(ray[tune]>=2.9), or use backend: optuna")


def run_search(cfg: StudyConfig, progress: bool = True, address: str | None = None,
               cpus_per_trial: int = 1) -> SearchResult:
    """Run (or resume) the study until its budget is spent; write outputs beside it.

    ``cfg.backend`` picks who runs the trials: this process (``optuna``; other
    ``autocompress worker`` processes may share the study), or a Ray cluster at ``address``
    (``ray``; this process is then the only one writing to the storage).

    Example::

        result = run_search(load_study_config("studies/quickstart.yaml"))
    """
    if cfg.backend == "ray":  # before any work: Ray installed, the cluster answers
        require_ray()
        from autocompress.search.ray_tune import connect

        connect(address)
    with undo_on_failure(cfg.output_dir, cfg.storage):  # a failed start leaves nothing behind
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
        ctx, study, liveness = prepare(cfg, progress, workers=1 if cfg.backend == "ray" else None)
    before = len(study.get_trials(deepcopy=False, states=FINISHED))
    deadline = None if cfg.budget.minutes is None else time.monotonic() + cfg.budget.minutes * 60.0
    bar = Progress(ctx, study, total=cfg.budget.trials, enabled=progress)
    finished = False
    try:
        if cfg.backend == "ray":
            from autocompress.search.ray_tune import run_ray

            run_ray(ctx, study, liveness, address=address, deadline=deadline, callbacks=[bar],
                    cpus_per_trial=cpus_per_trial)
        else:
            run_trials(ctx, study, liveness, deadline=deadline, callbacks=[bar])
        finished = True
    finally:
        bar.close()
        _write_outputs(ctx, study, must=finished)
    run = len(study.get_trials(deepcopy=False, states=FINISHED)) - before
    return SearchResult(study, ctx, cfg.output_dir, run)


def _write_outputs(ctx: SearchContext, study: optuna.Study, must: bool) -> None:
    """Tables and plots; when the run is already failing (storage gone), that error wins."""
    from autocompress.search._outputs import write_outputs

    try:
        write_outputs(ctx, study)
    except Exception:
        if must:
            raise
