"""The trial budget of a study shared by many workers: when to start a trial, wait, or stop.

The budget counts the trials in storage that judged their candidate (see
:func:`autocompress.study._retry.counts`), whichever worker ran them, like Optuna's
``MaxTrialsCallback`` but also counting trials still running, so workers do not overshoot:

- ``run``: counted + running < budget, start a trial;
- ``wait``: the budget is taken, but some trials are still running; if one of them dies its
  parameters come back as a WAITING trial that must still be run;
- ``done``: the budget is spent and nothing is running.

Two workers may both see one free slot and ask at the same moment; the later trial (by
number) is then a *surplus* trial and is given back without running (see ``surplus``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import optuna
from optuna.trial import TrialState

from autocompress.study._liveness import Liveness
from autocompress.study._retry import counts, retried_numbers

POLL_S = 2.0  # how often a waiting worker looks at the storage again
Step = Literal["run", "wait", "done"]


@dataclass(frozen=True)
class Census:
    counted: int  # finished trials that judged their candidate
    running: int
    waiting: int


def census(study: optuna.Study) -> Census:
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    return Census(
        counted=sum(counts(t, retried) for t in trials),
        running=sum(t.state == TrialState.RUNNING for t in trials),
        waiting=sum(t.state == TrialState.WAITING for t in trials),
    )


class BudgetGate:
    """Decides, from the storage alone, whether this worker may start another trial."""

    def __init__(self, budget: int | None, liveness: Liveness, poll_s: float = POLL_S) -> None:
        self.budget = budget
        self.liveness = liveness
        self.poll_s = poll_s

    def step(self, study: optuna.Study, own_running: int = 0) -> Step:
        """``own_running``: trials this process has in flight (the Ray driver has several)."""
        self.liveness.fail_stale()
        if self.budget is None:
            return "run"
        c = census(study)
        if c.counted + c.running < self.budget:
            return "run"
        # Others' running trials can only come back if their death can be detected.
        if (c.running > own_running and self.liveness.enabled) or own_running > 0:
            return "wait"
        return "done"

    def wait_for_room(self, study: optuna.Study, deadline: float | None = None) -> bool:
        """Block until a trial may start (True) or the study is done / time is up (False)."""
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            step = self.step(study)
            if step != "wait":
                return step == "run"
            time.sleep(self.poll_s)

    def surplus(self, study: optuna.Study, number: int) -> bool:
        """Whether trial ``number`` was asked after the budget was already taken."""
        if self.budget is None:
            return False
        trials = study.get_trials(deepcopy=False)
        retried = retried_numbers(trials)
        ahead = sum(
            1 for t in trials
            if t.number < number and (counts(t, retried) or t.state in (TrialState.RUNNING, TrialState.WAITING))
        )
        return ahead >= self.budget
