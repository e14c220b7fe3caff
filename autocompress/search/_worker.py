"""``autocompress worker``: one of many processes sharing a study through its storage.

Start any number on any machines (SLURM array, Kubernetes job, by hand) with the same study
file and storage URL; each runs trials until the study's budget, counted over all of them,
is spent. A worker that dies loses nothing: its trial's heartbeat stops, another worker marks
it FAILED after the grace period and the same parameters are run again.

Example::

    result = run_worker(load_study_config("studies/quickstart.yaml"), storage="postgresql://db/ac")
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import optuna

from autocompress.errors import ConfigError
from autocompress.search._controller import prepare, worker_seed
from autocompress.search._loop import run_trials
from autocompress.search._progress import Progress
from autocompress.search.study_config import StudyConfig
from autocompress.study import Census, census, undo_on_failure


@dataclass(frozen=True)
class WorkerResult:
    study: optuna.Study
    trials_run: int  # by this worker
    census: Census  # the whole study when this worker stopped


def run_worker(cfg: StudyConfig, storage: str | None = None, *, single: bool = False,
               progress: bool = False) -> WorkerResult:
    """Join the study in ``storage`` (default: the study file's) and run trials until it is done.

    ``single``: declare this the study's only worker, which SQLite requires.
    """
    if storage:
        cfg = replace(cfg, storage=storage)
    if cfg.storage.startswith("sqlite:") and not single:
        raise ConfigError(
            f"storage {cfg.storage!r} is SQLite, which locks under parallel "
            "writers; give the workers a shared postgresql://user@host/db (or a journal:///shared/"
            "path.log file on a shared file system), use `search --backend ray`, or pass "
            "--single-worker if this is the study's only worker"
        )
    with undo_on_failure(cfg.output_dir, cfg.storage):  # a failed start leaves nothing behind
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
        # Its own sampler seed: workers that ask at the same moment must not get the same candidate.
        ctx, study, liveness = prepare(cfg, progress, workers=1 if single else max(2, cfg.workers),
                                       sampler_seed=worker_seed(cfg.seed))
    deadline = None if cfg.budget.minutes is None else time.monotonic() + cfg.budget.minutes * 60.0
    bar = Progress(ctx, study, total=cfg.budget.trials, enabled=progress)
    try:
        n = run_trials(ctx, study, liveness, deadline=deadline, callbacks=[bar])
    finally:
        bar.close()
    return WorkerResult(study, n, census(study))
