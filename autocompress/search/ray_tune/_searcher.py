"""The Ray backend: candidates run as Ray Tune trials across a cluster, driven by the study.

Ray's ``OptunaSearch`` keeps its Optuna study in memory (ray issue 48500): a killed driver
loses every result. Here a small :class:`ray.tune.search.Searcher` is a thin bridge to the
study in its persistent storage instead:

- ``suggest``: the budget rule of ``_budget`` decides; then ``study.ask()``, the space's
  ``sample(trial)`` with the study's own sampler, and the parameters (plus a snapshot of the
  early-stopping memory) go to a Ray trial with ``cpus_per_trial`` CPUs and as many threads;
  a candidate already evaluated or in flight is settled here (``_dedup``) and never sent;
- ``on_trial_complete``: the trial's user attrs, constraints and values are written with the
  ordinary ``Trial`` API (its parameters and attrs each in one transaction, ``_batch``) and
  ``study.tell`` - the storage holds the same records as with the
  Optuna backend, so ``write_outputs`` writes the same files. An errored Ray trial (a node
  lost) is FAILED and its parameters enqueued again.

Only this driver writes to the storage, so SQLite is fine; with PostgreSQL, ``autocompress
worker`` processes may share the study at the same time.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.search import Searcher

from autocompress.search._context import SearchContext
from autocompress.search._explore import GIVE_UP_AFTER, Streak
from autocompress.search._loop import Callback, ask, make_claims, replay_stopper, settle, storage_call, tell
from autocompress.search._objective import sample_candidate
from autocompress.search.ray_tune._trial import front_snapshot, ray_trial
from autocompress.study import POLL_S, BudgetGate, Liveness, StorageUnavailable, batched, give_up_and_requeue
from autocompress.study.records import NODE

CONNECT_TIMEOUT_S = 10
_DUPLICATE = object()  # a sampled candidate that was settled as a duplicate: sample again
_log = logging.getLogger("autocompress.search")


class StudySearcher(Searcher):  # type: ignore[misc]
    """Tune searcher whose suggestions come from (and results go to) an Optuna study."""

    def __init__(self, ctx: SearchContext, study: optuna.Study, liveness: Liveness,
                 deadline: float | None, callbacks: Sequence[Callback]) -> None:
        super().__init__()
        self.ctx, self.study, self.liveness = ctx, study, liveness
        self.gate = BudgetGate(ctx.cfg.budget.trials, liveness)
        self.deadline = deadline
        self.callbacks = list(callbacks)
        self.live: dict[str, optuna.trial.Trial] = {}
        self.error: BaseException | None = None
        self._next_look = 0.0
        self.claims = make_claims(ctx, liveness)
        self.streak = Streak(study.sampler)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]  # FINISHED is a str
        if self.error is not None or (self.deadline is not None and time.monotonic() >= self.deadline):
            return Searcher.FINISHED if not self.live else None
        if time.monotonic() < self._next_look:
            return None
        try:
            return self._suggest(trial_id)
        except StorageUnavailable as e:
            self.error = e
            return Searcher.FINISHED if not self.live else None

    def _suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """A new candidate for Tune; duplicates (``_dedup``) are settled here, in the driver,
        and sampling goes on (a few at most per call) until one is new."""
        for _ in range(GIVE_UP_AFTER):
            if self.streak.exhausted:
                _log.warning("the sampler proposed %d evaluated candidates in a row: stopping", self.streak.count)
                return Searcher.FINISHED if not self.live else None
            step = storage_call(self.ctx, self.gate.step, self.study, len(self.live))
            if step != "run":
                self._next_look = time.monotonic() + POLL_S
                return Searcher.FINISHED if step == "done" else None
            suggestion = self._one(trial_id)
            if suggestion is not _DUPLICATE:
                return suggestion
        return None

    def _one(self, trial_id: str) -> Any:
        ctx, study = self.ctx, self.study
        self.streak.before_ask()
        trial = storage_call(ctx, ask, study)
        self.liveness.track(trial._trial_id)
        if storage_call(ctx, self.gate.surplus, study, trial.number):
            give_up_and_requeue(study, trial._trial_id, "not run: the budget was already taken by other workers")
            self.liveness.untrack(trial._trial_id)
            return None
        storage_call(ctx, replay_stopper, ctx, study)
        try:
            with batched(trial):  # one transaction for all the parameters and the candidate key
                _, key = sample_candidate(ctx, trial)  # the study's sampler picks
        finally:
            self.streak.after_sample()
        verdict, values = settle(ctx, study, trial, self.claims, key)
        self.streak.record(verdict.kind != "new")
        if verdict.kind != "new":
            tell(ctx, study, trial, values)
            self.liveness.untrack(trial._trial_id)
            return _DUPLICATE
        self.live[trial_id] = trial
        candidate = {"number": trial.number, "params": trial.params, "front": front_snapshot(ctx.stopper)}
        return {"candidate": json.dumps(candidate)}

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        trial = self.live.pop(trial_id, None)
        if trial is None:
            return
        try:
            storage_call(self.ctx, self._record, trial, result, error)
        except optuna.exceptions.UpdateFinishedTrialError:
            _log.warning("trial %d was declared dead (late heartbeat); its parameters were enqueued again",
                         trial.number)
        except StorageUnavailable as e:
            self.error = e
        finally:
            self.liveness.untrack(trial._trial_id)

    def _record(self, trial: optuna.trial.Trial, result: dict[str, Any] | None, error: bool) -> None:
        payload = json.loads(result["payload"]) if result and "payload" in result else None
        if error or payload is None:
            reason = "the Ray trial errored (worker or node lost?); re-enqueued"
            storage_call(self.ctx, give_up_and_requeue, self.study, trial._trial_id, reason)
            return
        with batched(trial):  # one transaction for the whole record, then tell
            for key, value in payload["user_attrs"].items():
                trial.set_user_attr(key, value)
            trial.set_user_attr(NODE, payload.get("node"))
            for key, value in payload["constraints"].items():
                trial.set_constraint(key, value)
        frozen = tell(self.ctx, self.study, trial, payload["values"])
        if frozen is not None:
            for cb in self.callbacks:
                cb(self.study, frozen)

    # The search state lives in the study's storage, not in Tune's experiment folder: Tune
    # pickles its searcher there (and would fail on the database connection), so save nothing.
    def __getstate__(self) -> dict[str, Any]:
        return {"_metric": self._metric, "_mode": self._mode}

    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass

    def requeue_unfinished(self, reason: str) -> None:
        """Trials Tune never completed (the run was interrupted): FAILED, parameters enqueued again."""
        for trial_id, trial in list(self.live.items()):
            give_up_and_requeue(self.study, trial._trial_id, reason)
            self.live.pop(trial_id)


def run_ray(ctx: SearchContext, study: optuna.Study, liveness: Liveness, *, address: str | None,
            deadline: float | None, callbacks: Sequence[Callback], cpus_per_trial: int = 1) -> None:
    """Run the study's remaining trials as Ray Tune trials on the cluster at ``address``."""
    # Driver-process settings: results live in the study, so Tune's own result files and its
    # "could not fetch metrics" warnings about them are off.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    connect(address)
    searcher = StudySearcher(ctx, study, liveness, deadline, callbacks)
    state = {k: v.detach().cpu() for k, v in ctx.base.state_dict().items()}
    # Warm-start policy files live on the driver's disk; the trials never read them.
    shipped = {**ctx.cfg.to_dict(), "warm_start": False}
    trainable = tune.with_resources(
        tune.with_parameters(ray_trial, study=shipped, base=state, threads=cpus_per_trial),
        {"cpu": cpus_per_trial},
    )
    tuner = tune.Tuner(
        trainable,
        # Without max_concurrent_trials Tune starts one actor at a time for a custom searcher;
        # reused actors keep their search context (built once per worker process).
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, reuse_actors=True,
                                    max_concurrent_trials=_slots(ctx, cpus_per_trial),
                                    trial_dirname_creator=_trial_dir),
        run_config=tune.RunConfig(
            name=f"autocompress-{ctx.cfg.name}",
            callbacks=[],
            storage_path=str(ctx.cfg.output_dir / "ray"),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    with liveness:
        try:
            tuner.fit()
        finally:
            searcher.requeue_unfinished("interrupted; re-enqueued")
    if searcher.error is not None:
        raise searcher.error


def _trial_dir(trial: Any) -> str:
    return f"trial_{trial.trial_id}"  # Tune's default name embeds the whole config


def _slots(ctx: SearchContext, cpus_per_trial: int) -> int:
    """Trials at once: the study's ``workers`` if set above 1, else what the cluster's CPUs hold now."""
    if ctx.cfg.workers > 1:
        return ctx.cfg.workers
    return max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_trial))


def connect(address: str | None) -> None:
    """Join the cluster (``address``, else ``RAY_ADDRESS``, else a local Ray) once per process.

    A ``host:port`` that nothing answers on fails at once: ``ray.init`` would keep retrying.
    """
    from autocompress.errors import ConfigError

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    host, _, port = (address or "").rpartition(":")
    if host and port.isdigit() and "://" not in host:
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as e:
            raise ConfigError(
                f"--address {address!r}: no Ray cluster answers there ({e.strerror or e}); start one with "
                "`ray start --head` (docs/cluster.md), fix the address, or leave --address out for a local Ray"
            ) from None
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError as e:
        raise ConfigError(f"--address {address!r}: cannot connect to the Ray cluster: {e}") from None
