"""One fine-tune per candidate, however many workers share the study.

A *candidate* is what decides a fine-tune's result: the sampled policy (without provenance),
the study's fine-tune settings and its seed; its key (:func:`candidate_key`) is stored on
the trial (``candidate`` user attr) as soon as the policy is sampled.

Samplers do propose a candidate again (TPE on categorical spaces, NSGA-II's crossover), and
workers that ask at the same moment may be given the same one. Before a worker fine-tunes,
:class:`Claims` decides from the storage alone who owns the candidate, with one rule that
every worker applies the same way: **the lowest-numbered live trial holding the key owns it**.

- A worker first waits until every lower-numbered RUNNING trial has stored its key (sampling
  takes milliseconds; a worker that died while sampling is declared dead by its heartbeat).
  A lower-numbered WAITING trial (enqueued: a retry, a full warm-start point) is keyed by
  replaying its fixed parameters through the space. So two workers never both believe they
  own a key. A trial enqueued with only some parameters cannot be keyed while it waits; once
  sampled it yields to any live trial holding its key (``anywhere``).
- ``done``: a COMPLETE trial holds the key: its result is reused (same values, curve and
  status), the trial is marked ``duplicate_of`` it and does not count against the budget.
- ``failed``: a counted FAILED trial holds it (a diverging fine-tune: deterministic, it would
  diverge again): this trial is FAILED too, uncounted.
- ``running``: a lower-numbered RUNNING or WAITING trial holds it: this trial is FAILED,
  uncounted, and the worker samples again.
- ``new``: nobody holds it: fine-tune.

What a worker does after several duplicates in a row (sample at random, then stop) is the
search's business: ``autocompress.search._explore``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from autocompress.policy import Policy
from autocompress.study._retry import retried_numbers
from autocompress.study.records import (
    CANDIDATE,
    DUPLICATE_OF,
    FIXED_PARAMS,
    NODE,
    NODE_SECONDS,
    NODE_STARTED,
    POLICY,
    UNCOUNTED,
    WORKER,
)

POLL_S = 0.2
_log = logging.getLogger("autocompress.search")

Kind = Literal["new", "done", "failed", "running"]


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    twin: FrozenTrial | None = None

    @property
    def twin_number(self) -> int | None:
        if self.twin is None:
            return None
        return int(self.twin.user_attrs.get(DUPLICATE_OF, self.twin.number))


def candidate_key(policy: Policy, finetune: Any, seed: int) -> str:
    """Key of (policy settings, fine-tune config, seed): equal keys, equal fine-tune results."""
    payload = {"policy": policy.without_meta().to_dict(), "finetune": asdict(finetune), "seed": seed}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


class Claims:
    """Decides whether this worker fine-tunes a freshly sampled candidate (see the module doc).

    ``replay``: the policy of a parameter set (the bound space's ``sample`` on a FixedTrial),
    used to key enqueued trials; ``key_of_policy`` turns a policy into its key.
    """

    def __init__(self, replay: Callable[[dict[str, Any]], Policy], key_of_policy: Callable[[Policy], str],
                 fail_stale: Callable[[], object] = lambda: None, *, max_wait_s: float = 600.0,
                 poll_s: float = POLL_S) -> None:
        self.replay, self.key_of_policy, self.fail_stale = replay, key_of_policy, fail_stale
        self.max_wait_s, self.poll_s = max_wait_s, poll_s
        self._waiting_keys: dict[int, str | None] = {}  # trial id -> key (fixed params never change)

    def key_of(self, t: FrozenTrial) -> str | None:
        """The candidate key a trial holds; None while it is still being sampled."""
        key = t.user_attrs.get(CANDIDATE)
        if isinstance(key, str):
            return key
        if t.state == TrialState.WAITING:
            if t._trial_id not in self._waiting_keys:
                self._waiting_keys[t._trial_id] = self._replayed(t.system_attrs.get(FIXED_PARAMS) or {})
            return self._waiting_keys[t._trial_id]
        raw = t.user_attrs.get(POLICY)  # a trial written before keys were stored
        if isinstance(raw, dict) and t.state.is_finished():
            try:
                return self.key_of_policy(Policy.from_dict(raw))
            except Exception:
                return None
        return None

    def _replayed(self, params: dict[str, Any]) -> str | None:
        try:
            return self.key_of_policy(self.replay(dict(params)))
        except Exception:  # parameters the space no longer takes: that trial will fail on its own
            return None

    def decide(self, study: optuna.Study, number: int, key: str, anywhere: bool = False) -> Verdict:
        """``anywhere``: also yield to a higher-numbered RUNNING trial holding the key. For a
        trial that was enqueued with only some parameters (a warm start): while it waited its key
        could not be known, so a later trial may have taken the candidate meanwhile."""
        start = time.monotonic()
        while True:
            verdict, pending = self._look(study.get_trials(deepcopy=False), number, key, anywhere)
            if verdict is not None or not pending:
                return verdict or Verdict("new")
            if time.monotonic() - start > self.max_wait_s:
                _log.warning("trial %d: trials %s are still being sampled after %.0f s; running it anyway",
                             number, pending, self.max_wait_s)
                return Verdict("new")
            self.fail_stale()  # a worker that died while sampling is declared dead here
            time.sleep(self.poll_s)

    def _look(self, trials: Sequence[FrozenTrial], number: int, key: str,
              anywhere: bool) -> tuple[Verdict | None, list[int]]:
        done = failed = ahead = None
        pending: list[int] = []
        retried = retried_numbers(trials)
        for t in trials:
            if t.number == number:
                continue
            if t.state == TrialState.COMPLETE:
                if done is None and t.values is not None and self.key_of(t) == key:
                    done = t
            elif t.state == TrialState.FAIL:
                counted = UNCOUNTED not in t.user_attrs and t.number not in retried
                if failed is None and counted and t.user_attrs.get(CANDIDATE) == key:
                    failed = t
            elif t.number < number and t.state in (TrialState.RUNNING, TrialState.WAITING):
                k = self.key_of(t)
                if k is None and t.state == TrialState.RUNNING:
                    pending.append(t.number)
                elif k == key and ahead is None:
                    ahead = t
            elif anywhere and t.state == TrialState.RUNNING and ahead is None and t.user_attrs.get(CANDIDATE) == key:
                ahead = t
        if done is not None:
            return Verdict("done", done), []
        if failed is not None:
            return Verdict("failed", failed), []
        if ahead is not None:
            return Verdict("running", ahead), []
        return None, pending


def reuse(trial: optuna.trial.BaseTrial, twin: FrozenTrial) -> list[float]:
    """Give ``trial`` the result of ``twin`` (same candidate): values, figures, constraints."""
    skip = {CANDIDATE, POLICY, DUPLICATE_OF, UNCOUNTED, WORKER, NODE, NODE_STARTED, NODE_SECONDS}
    for key, value in twin.user_attrs.items():
        if key not in skip:
            trial.set_user_attr(key, value)
    for key, value in (getattr(twin, "constraints", None) or {}).items():
        trial.set_constraint(key, value)
    number = int(twin.user_attrs.get(DUPLICATE_OF, twin.number))
    trial.set_user_attr(DUPLICATE_OF, number)
    trial.set_user_attr(UNCOUNTED, f"the same candidate as trial {number}; its result was reused")
    return list(twin.values or [])
