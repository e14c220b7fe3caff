"""Re-running a candidate whose trial was lost, and which trials count against the budget.

A trial can end without judging its candidate: its worker died (no heartbeat), the process
was interrupted, or the budget was already spent by other workers when it started. Such a
trial is marked FAILED and its parameters are enqueued again as a new WAITING trial, with
Optuna's retry bookkeeping (``failed_trial``, ``retry_history`` system attrs, as
:class:`optuna.storages.RetryHeartbeatStaleTrialCallback` writes them). The new trial replays
the same parameters; the failed one does not count against the budget, so a lost trial is
neither lost nor counted twice. A candidate that itself fails (a diverging fine-tune) is
*not* retried and does count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autocompress.study.records import FAIL_REASON, FAILED_TRIAL, FIXED_PARAMS, RETRY_HISTORY, UNCOUNTED

MAX_RETRY = 3

_Base: Any = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", optuna.storages.RetryFailedTrialCallback)


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """The parameters a trial ran (or was enqueued) with."""
    return {**trial.system_attrs.get(FIXED_PARAMS, {}), **trial.params}


def requeue(study: optuna.Study, trial: FrozenTrial, max_retry: int = MAX_RETRY) -> bool:
    """Enqueue ``trial``'s parameters again; False when it was already retried ``max_retry`` times.

    ``trial`` keeps its own state; the caller marks it FAILED (before, if it is still running,
    so it can still take user attrs).
    """
    if not can_retry(trial, max_retry):
        return False
    history = [*trial.system_attrs.get(RETRY_HISTORY, []), trial.number]
    system_attrs = {
        "fixed_params": trial_params(trial),
        FAILED_TRIAL: trial.system_attrs.get(FAILED_TRIAL, trial.number),
        "retry_history": history,
    }
    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, system_attrs=system_attrs))
    return True


def can_retry(trial: FrozenTrial, max_retry: int = MAX_RETRY) -> bool:
    return len(trial.system_attrs.get(RETRY_HISTORY, [])) < max_retry


def give_up_and_requeue(study: optuna.Study, trial_id: int, reason: str) -> None:
    """Mark a RUNNING trial FAILED with ``reason``, enqueue its parameters again."""
    storage = study._storage
    frozen = storage.get_trial(trial_id)
    if frozen.state.is_finished():
        return
    retry = can_retry(frozen)
    why = reason if retry else f"{reason}; retried {MAX_RETRY} times, given up"
    storage.set_trial_user_attr(trial_id, FAIL_REASON, why)
    if retry:
        storage.set_trial_user_attr(trial_id, UNCOUNTED, reason)
    try:
        if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
            return
    except optuna.exceptions.UpdateFinishedTrialError:  # another worker got there first
        return
    if retry:
        requeue(study, storage.get_trial(trial_id))


class RequeueStale(_Base):  # type: ignore[misc]
    """Heartbeat callback: a dead worker's trial is enqueued again with the same parameters.

    Unlike Optuna's own callback it does not copy the dead trial's user attrs (they are
    recomputed) and it stores the parameters as ``fixed_params``, like ``enqueue_trial``.
    """

    def __init__(self, max_retry: int = MAX_RETRY) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        requeue(study, trial, self._max_retry)


def retried_numbers(trials: Iterable[FrozenTrial]) -> set[int]:
    """Numbers of trials that were enqueued again (they appear in a later retry history)."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get(RETRY_HISTORY, ()))
    return out


def counts(trial: FrozenTrial, retried: set[int]) -> bool:
    """Whether a finished trial counts against the budget (it judged a candidate not judged before).

    Not counted: a lost trial whose parameters were enqueued again, and a duplicate (its
    candidate was judged by another trial, whose result it reused)."""
    if not trial.state.is_finished() or UNCOUNTED in trial.user_attrs:
        return False
    if trial.state == TrialState.FAIL:
        return trial.number not in retried
    return True
