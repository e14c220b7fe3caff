"""The search controller: an Optuna study over the joint space, resumable from its storage.

Running the same study file again resumes: trials already finished count against the
budget, and a trial left RUNNING by a killed process is marked FAILED (its parameters are
enqueued again, so the candidate is not lost).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna

from autocompress.errors import ConfigError, TrialFailed
from autocompress.search._context import SearchContext, build_context
from autocompress.search._early_stop import Completed
from autocompress.search._objective import CURVE, LATENCY, SIZE, STATUS, run_trial
from autocompress.search._progress import Progress
from autocompress.search.study_config import StudyConfig

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)


@dataclass(frozen=True)
class SearchResult:
    study: optuna.Study
    context: SearchContext
    output_dir: Path
    trials_run: int


def make_sampler(cfg: StudyConfig) -> optuna.samplers.BaseSampler:
    s = cfg.sampler
    settings = dict(s.settings)
    if s.name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=cfg.seed, **settings)
    if s.name == "tpe":
        return optuna.samplers.TPESampler(seed=cfg.seed, **settings)
    if s.name == "random":
        return optuna.samplers.RandomSampler(seed=cfg.seed)
    raise ConfigError(f"{cfg.source}: sampler.name must be nsga2, tpe or random, got {s.name!r}")


def open_study(cfg: StudyConfig, storage: str | optuna.storages.BaseStorage | None = None) -> optuna.Study:
    """Create or load the study named in ``cfg`` in its storage."""
    from autocompress.search._storage import open_storage

    study = optuna.create_study(
        study_name=cfg.name,
        storage=storage if storage is not None else open_storage(cfg.storage, cfg.workers),
        sampler=make_sampler(cfg),
        directions=list(cfg.directions),
        load_if_exists=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([_metric_label(o.name, o.device) for o in cfg.objectives])
    return study


def _metric_label(name: str, device: str | None) -> str:
    return {"metric": "metric", "size": "size_kb"}.get(name, f"latency_ms[{device}]")


def recover_stale(study: optuna.Study) -> int:
    """Mark trials left RUNNING by a killed process FAILED and enqueue their params again."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        study._storage.set_trial_user_attr(t._trial_id, "fail_reason", "interrupted; re-enqueued")
        study.enqueue_trial(t.params, skip_if_exists=False)
        n += 1
    return n


def replay_stopper(ctx: SearchContext, study: optuna.Study) -> None:
    """Rebuild the early-stopping memory from the trials already in storage."""
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if t.user_attrs.get(STATUS) == "evaluated" and t.values:
            metric = t.values[[o.name for o in ctx.cfg.objectives].index("metric")]
            curve = {int(s): float(m) for s, m in t.user_attrs.get(CURVE, [])}
            size = float(t.user_attrs.get(SIZE, 0))
            ctx.stopper.add(Completed(size, float(t.user_attrs.get(LATENCY, 0.0)), metric, curve))


def record_baseline(ctx: SearchContext, study: optuna.Study) -> None:
    """Store what reading the study later needs: objectives, fp32 baseline, provenance."""
    from autocompress.search._front import BASELINE, OBJECTIVES

    cfg = ctx.cfg
    study.set_user_attr(OBJECTIVES, [{"name": o.name, "direction": o.direction, "device": o.device}
                                     for o in cfg.objectives])
    study.set_user_attr(BASELINE, {"metric": ctx.evaluator.base_metric, "size_kb": ctx.fp32_bytes / 1024.0,
                                   "latency_ms": ctx.fp32_latency_ms})
    study.set_user_attr("provenance", ctx.provenance())


def run_search(cfg: StudyConfig, progress: bool = True) -> SearchResult:
    """Run (or resume) the study until its budget is spent; write outputs beside it.

    Example::

        result = run_search(load_study_config("studies/quickstart.yaml"))
    """
    from autocompress.search._outputs import write_outputs
    from autocompress.search._warm_start import enqueue_warm_start

    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    ctx = build_context(cfg, progress=progress)
    study = open_study(cfg)
    record_baseline(ctx, study)
    recover_stale(study)
    replay_stopper(ctx, study)
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    if done == 0 and cfg.warm_start.enabled:
        enqueue_warm_start(ctx, study)
    remaining = None if cfg.budget.trials is None else max(0, cfg.budget.trials - done)
    timeout = None if cfg.budget.minutes is None else cfg.budget.minutes * 60.0
    bar = Progress(ctx, study, total=cfg.budget.trials, enabled=progress)
    try:
        if remaining != 0:
            study.optimize(
                lambda trial: run_trial(ctx, trial),
                n_trials=remaining,
                timeout=timeout,
                catch=(TrialFailed,),
                callbacks=[bar],
                gc_after_trial=False,
            )
    finally:
        bar.close()
        write_outputs(ctx, study)
    run = len(study.get_trials(deepcopy=False, states=FINISHED)) - done
    return SearchResult(study, ctx, cfg.output_dir, run)
