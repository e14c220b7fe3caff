"""The trial loop shared by ``autocompress search`` (Optuna backend) and ``autocompress worker``.

One process runs trials one after another until the study's budget, counted over every
worker, is spent (:mod:`autocompress.study._budget`):

1. wait for room; 2. ``study.ask()`` (a WAITING trial, e.g. a retry, comes first);
3. with heartbeats, sample the policy and evaluate it (:func:`run_trial`), the early-stopping
memory first rebuilt from every worker's completed trials; 4. ``study.tell()``, retried a
few times if the storage hiccups.

A diverging candidate is FAILED with its reason and the loop goes on. Ctrl-C marks the trial
in flight FAILED and enqueues its parameters again. A storage that stays unreachable stops
the loop with :class:`StorageUnavailable`; the trial in flight stays RUNNING in storage and is
retried once its heartbeat is stale (or, on SQLite, when the command is run again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autocompress.errors import TrialFailed
from autocompress.search._context import SearchContext
from autocompress.search._early_stop import Completed, FrontStopper
from autocompress.search._explore import Streak
from autocompress.search._objective import run_trial, sample_candidate
from autocompress.study import (
    BudgetGate,
    Claims,
    Liveness,
    StorageUnavailable,
    Verdict,
    candidate_key,
    describe,
    give_up_and_requeue,
    is_storage_error,
    retry_delay,
    reuse,
    safe_url,
)
from autocompress.study.records import (
    DUPLICATE_OF,
    EVALUATED,
    FAIL_REASON,
    FIXED_PARAMS,
    UNCOUNTED,
    WORKER,
    TrialRecord,
)

Callback = Callable[[optuna.Study, FrozenTrial], None]
TELL_TRIES = 4
_log = logging.getLogger("autocompress.search")


def replay_stopper(ctx: SearchContext, study: optuna.Study) -> None:
    """Rebuild the early-stopping memory from the trials in storage (every worker's)."""
    old = ctx.stopper
    ctx.stopper = FrontStopper(margin=old.margin, min_curves=old.min_curves)
    metric_at = [o.name for o in ctx.cfg.objectives].index("metric")
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        r = TrialRecord.of(t)
        if r.status == EVALUATED and r.values and r.duplicate_of is None:
            ctx.stopper.add(Completed(float(r.size_bytes or 0), r.latency_ms or 0.0, r.values[metric_at],
                                      dict(r.curve)))


def run_trials(
    ctx: SearchContext,
    study: optuna.Study,
    liveness: Liveness,
    *,
    deadline: float | None = None,
    callbacks: Sequence[Callback] = (),
) -> int:
    """Run trials until the budget (all workers) is spent or ``deadline`` (monotonic) passes.

    Returns how many trials this process finished.
    """
    gate = BudgetGate(ctx.cfg.budget.trials, liveness)
    claims = make_claims(ctx, liveness)
    streak = Streak(study.sampler)
    done = 0
    with liveness:
        while storage_call(ctx, gate.wait_for_room, study, deadline):
            if streak.exhausted:
                _log.warning("the sampler proposed %d candidates in a row that were already evaluated (a random "
                             "one included): the space holds no new candidate it finds; stopping", streak.count)
                break
            frozen = run_one(ctx, study, gate, liveness, claims, streak)
            if frozen is None:
                continue
            done += 1
            for cb in callbacks:
                cb(study, frozen)
    return done


def make_claims(ctx: SearchContext, liveness: Liveness) -> Claims:
    """The duplicate check of this study's candidates (``_dedup``)."""
    cfg = ctx.cfg
    return Claims(replay=lambda params: ctx.bound.sample(optuna.trial.FixedTrial(params)),
                  key_of_policy=lambda p: candidate_key(p, cfg.finetune, cfg.seed),
                  fail_stale=liveness.fail_stale)


def was_partly_enqueued(study: optuna.Study, trial: optuna.trial.Trial) -> bool:
    """Whether ``trial`` was enqueued with some of its parameters, the sampler picking the rest."""
    fixed = study._storage.get_trial(trial._trial_id).system_attrs.get(FIXED_PARAMS)
    return fixed is not None and set(fixed) != set(trial.params)


def settle(ctx: SearchContext, study: optuna.Study, trial: optuna.trial.Trial, claims: Claims,
           key: str) -> tuple[Verdict, list[float] | None]:
    """Decide whether a sampled candidate is new; for a duplicate, record why and what to tell."""
    verdict = storage_call(ctx, claims.decide, study, trial.number, key,
                           was_partly_enqueued(study, trial))
    if verdict.kind == "done":
        return verdict, reuse(trial, verdict.twin)  # type: ignore[arg-type]
    if verdict.kind != "new":
        what = "is being evaluated by" if verdict.kind == "running" else "failed in"
        reason = f"not run: the same candidate {what} trial {verdict.twin_number}"
        trial.set_user_attr(DUPLICATE_OF, verdict.twin_number)
        trial.set_user_attr(UNCOUNTED, reason)
        trial.set_user_attr(FAIL_REASON, reason)
    return verdict, None


def run_one(ctx: SearchContext, study: optuna.Study, gate: BudgetGate, liveness: Liveness,
            claims: Claims | None = None, streak: Streak | None = None) -> FrozenTrial | None:
    """Ask, evaluate and tell one trial; None if it was given back (surplus, or taken over) or
    was a duplicate (its result reused, or another trial evaluates the same candidate)."""
    claims = claims or make_claims(ctx, liveness)
    streak = streak or Streak(study.sampler)
    streak.before_ask()
    trial = storage_call(ctx, ask, study)
    with liveness.beating(trial._trial_id):
        if storage_call(ctx, gate.surplus, study, trial.number):
            reason = "not run: the budget was already taken by other workers"
            storage_call(ctx, give_up_and_requeue, study, trial._trial_id, reason)
            return None
        values: list[float] | None = None
        duplicate = False
        try:
            storage_call(ctx, replay_stopper, ctx, study)
            trial.set_user_attr(WORKER, worker_id())
            policy, key = sample_candidate(ctx, trial)
            streak.after_sample()
            verdict, values = settle(ctx, study, trial, claims, key)
            duplicate = verdict.kind != "new"
            streak.record(duplicate)
            if not duplicate:
                values = run_trial(ctx, trial, policy)
        except TrialFailed as e:
            _log.warning("trial %d failed: %s", trial.number, e)
        except optuna.exceptions.UpdateFinishedTrialError:
            _log.warning("trial %d was declared dead by another worker (late heartbeat); "
                         "its parameters were enqueued again", trial.number)
            return None
        except KeyboardInterrupt:
            storage_call(ctx, give_up_and_requeue, study, trial._trial_id, "interrupted; re-enqueued")
            raise
        except Exception as e:
            if is_storage_error(e):
                raise _unavailable(ctx, e, trial.number) from None
            trial.set_user_attr(FAIL_REASON, f"{type(e).__name__}: {e}")
            study.tell(trial, state=TrialState.FAIL)
            raise
        finally:
            streak.after_sample()
        frozen = tell(ctx, study, trial, values)
        return None if duplicate else frozen


def tell(ctx: SearchContext, study: optuna.Study, trial: optuna.trial.Trial,
         values: list[float] | None) -> FrozenTrial | None:
    """``study.tell`` with bounded retries; None when another worker already failed the trial."""

    def once() -> FrozenTrial | None:
        try:
            if values is None:
                return study.tell(trial, state=TrialState.FAIL)
            return study.tell(trial, values)
        except optuna.exceptions.UpdateFinishedTrialError:
            _log.warning("trial %d was declared dead by another worker (late heartbeat); "
                         "its parameters were enqueued again", trial.number)
            return None

    return storage_call(ctx, once, number=trial.number)


def ask(study: optuna.Study) -> optuna.trial.Trial:
    """``study.ask()``; the heartbeat is ours (``Liveness``), so Optuna's warning is moot."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        return study.ask()


def worker_id() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def storage_call(ctx: SearchContext, fn: Callable[..., Any], *args: Any, number: int | None = None) -> Any:
    """Call ``fn``, retrying storage errors a few times, then failing with a clear message
    (naming trial ``number`` when one was running)."""
    last: Exception | None = None
    for attempt in range(1, TELL_TRIES + 1):
        try:
            return fn(*args)
        except Exception as e:
            if not is_storage_error(e):
                raise
            last = e
            if attempt < TELL_TRIES:
                time.sleep(retry_delay(attempt))
    raise _unavailable(ctx, last, number)


def _unavailable(ctx: SearchContext, e: BaseException | None, number: int | None) -> StorageUnavailable:
    where = f" while trial {number} was running" if number is not None else ""
    return StorageUnavailable(
        f"storage {safe_url(ctx.cfg.storage)!r} became unreachable{where} ({describe(e)}); finished trials "
        "are safe in it; run the same command again once it is back (the trial in flight is retried)"
    )

