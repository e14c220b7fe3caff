"""Heartbeats for the trials this process runs, and failing the trials of dead workers.

- RDB storages (PostgreSQL, MySQL) opened with a heartbeat use Optuna's own mechanism:
  ``record_heartbeat`` rows, ``fail_stale_trials`` and the storage's retry callback.
- A journal file has no heartbeat in Optuna; the same rule is kept with a system attr
  (``ac:heartbeat``, wall-clock seconds) on each running trial.
- SQLite has none: it takes one worker, and a run recovers what it left RUNNING at start.

A trial whose heartbeat is older than the grace period is marked FAILED and its parameters
are enqueued again (:mod:`autocompress.study._retry`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

from autocompress.study._retry import give_up_and_requeue
from autocompress.study._storage import grace_s, heartbeat_s, is_storage_error
from autocompress.study.records import HEARTBEAT

_log = logging.getLogger("autocompress.search")


class Liveness:
    """Keeps this process's running trials alive in storage; fails other workers' dead ones."""

    def __init__(self, study: optuna.Study) -> None:
        from optuna.storages import JournalStorage

        storage = study._storage
        self.study = study
        self.native = is_heartbeat_enabled(storage)
        self.by_attr = not self.native and isinstance(storage, JournalStorage)
        interval = storage.get_heartbeat_interval() if self.native else None  # type: ignore[attr-defined]
        self.interval = float(interval or heartbeat_s())
        self.grace = float(getattr(storage, "grace_period", None) or grace_s())
        self._ids: set[int] = set()
        self._lock = threading.Lock()
        self._warned = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        """Whether dead workers' trials are detected (False: SQLite, one worker only)."""
        return self.native or self.by_attr

    def __enter__(self) -> Liveness:
        """Start the heartbeat thread (one per process, beating every tracked trial)."""
        if self.enabled and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="autocompress-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def track(self, trial_id: int) -> None:
        with self._lock:
            self._ids.add(trial_id)
        self.beat(trial_id)

    def untrack(self, trial_id: int) -> None:
        with self._lock:
            self._ids.discard(trial_id)

    @contextmanager
    def beating(self, trial_id: int) -> Iterator[None]:
        """Heartbeats for ``trial_id`` while the block runs (inside ``with liveness:``)."""
        self.track(trial_id)
        try:
            yield
        finally:
            self.untrack(trial_id)

    def beat(self, trial_id: int) -> None:
        """One heartbeat; storage errors are reported once and otherwise ignored (retried)."""
        storage = self.study._storage
        try:
            if self.native:
                storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
            elif self.by_attr:
                storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
        except Exception as e:
            if not is_storage_error(e) and not isinstance(e, OSError):
                raise
            if not self._warned:
                _log.warning("heartbeat for trial id %s failed (%s); retrying", trial_id, type(e).__name__)
                self._warned = True

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = sorted(self._ids)
            for trial_id in ids:
                self.beat(trial_id)

    def fail_stale(self) -> None:
        """Mark trials whose worker stopped beating FAILED and enqueue their parameters again."""
        if self.native:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.study)
            return
        if not self.by_attr:
            return
        now = time.time()
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            with self._lock:
                mine = t._trial_id in self._ids
            last = t.system_attrs.get(HEARTBEAT)
            if last is None and t.datetime_start is not None:
                last = t.datetime_start.timestamp()
            if not mine and last is not None and now - float(last) > self.grace:
                reason = f"worker lost: no heartbeat for {now - float(last):.0f} s (grace {self.grace:.0f} s)"
                give_up_and_requeue(self.study, t._trial_id, reason)
