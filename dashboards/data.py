"""Data access for the dashboard: the storage, the studies in it, one study's trials, one trial.

Everything the page shows comes from the study storage (no model, no study file). Whatever
goes wrong (an unopenable storage, a missing study, an old study without stored policies)
becomes a :class:`DashboardError` whose message the page shows instead of a stack trace.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import optuna
import pandas as pd

from autocompress.errors import AutocompressError
from autocompress.results import (
    column_names,
    constraint_limits,
    hypervolume_curve,
    layer_table,
    objectives_of,
    study_summaries,
    trials_table,
)
from autocompress.search import stored_export
from autocompress.study import StudyRecord, TrialRecord

log = logging.getLogger(__name__)
T = TypeVar("T")
VIEW_TTL_S = 1.0  # several callbacks read the same study on one refresh: read it once


class DashboardError(AutocompressError):
    """Something the page should say in words (storage unopenable, no such study...): one
    branch of autocompress's error hierarchy, whose message the page shows."""


@dataclass(frozen=True)
class StudyView:
    """One study as the page needs it; ``message`` says why there is nothing to plot, if so."""

    name: str
    trials: pd.DataFrame  # autocompress.results._front.trials_table
    columns: tuple[str, ...]  # objective columns of ``trials``, in objective order
    directions: tuple[str, ...]
    limits: dict[str, float]
    baseline: dict[str, Any]
    hypervolume: pd.DataFrame  # columns trial, hypervolume
    message: str | None = None
    measured: dict[int, dict[str, Any]] = field(default_factory=dict)  # `autocompress apply` results

    @property
    def finished(self) -> pd.DataFrame:
        return self.trials[self.trials["state"] == "COMPLETE"] if not self.trials.empty else self.trials


@dataclass(frozen=True)
class TrialDetail:
    number: int
    row: dict[str, Any]  # the trial's row of the trials table
    layers: pd.DataFrame  # autocompress.results._browse.layer_table
    distill: dict[str, float]
    record: TrialRecord


def _message(study: str, df: pd.DataFrame, columns: tuple[str, ...]) -> str | None:
    if not {"metric", "size_kb"} <= set(columns):
        return (f"Study {study!r} was not written by `autocompress search` (its objectives are "
                f"{', '.join(columns) or 'unnamed'}); there is no compression front to browse.")
    if df.empty:
        return f"Study {study!r} has no trials yet; this page refreshes while a search runs."
    finished = df[df["state"] == "COMPLETE"]
    if finished.empty:
        failed = df[df["state"].isin(["FAIL", "PRUNED"])]
        if failed.empty:
            return f"Study {study!r} has {len(df)} trial(s) in flight and none finished yet."
        reasons = [r for r in failed["fail_reason"].tolist() if r]
        first = f" First reason: {reasons[0]}" if reasons else ""
        return f"All {len(failed)} finished trial(s) of study {study!r} failed; nothing to plot.{first}"
    if not df["feasible"].any():
        return (f"No feasible trial yet in study {study!r}: every finished trial broke a constraint "
                "(shown greyed out).")
    return None


@dataclass
class Source:
    """The storage behind the dashboard, opened on first use (and again after a failure)."""

    url: str
    storage_factory: Callable[[], optuna.storages.BaseStorage] | None = None  # tests: a ready storage
    _storage: optuna.storages.BaseStorage | None = None
    _views: dict[str, tuple[float, StudyView]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def storage(self) -> optuna.storages.BaseStorage:
        if self._storage is not None:
            return self._storage
        if self.storage_factory is not None:
            self._storage = self.storage_factory()
            return self._storage
        from autocompress.study import open_existing_storage

        try:  # a mistyped path is an error, never a new empty database
            self._storage = open_existing_storage(self.url)
        except AutocompressError as e:
            raise DashboardError(str(e)) from None
        except Exception as e:  # a driver or schema error: say what it was, keep the page up
            log.exception("cannot open storage")
            raise DashboardError(f"storage {self.url!r} cannot be opened: {type(e).__name__}: {e}") from None
        return self._storage

    def studies(self) -> pd.DataFrame:
        """autocompress.results._browse.study_summaries of the storage."""
        return _guarded(lambda: study_summaries(self.storage()), "list the studies")

    def study(self, name: str) -> optuna.Study:
        from autocompress.search import open_study

        storage = self.storage()
        try:
            return open_study(self.url, storage=storage, name=name).study
        except AutocompressError:
            raise DashboardError(f"no study {name!r} in {self.url}") from None

    def view(self, name: str) -> StudyView:
        """The study's trials table and figures' inputs, read at most once per VIEW_TTL_S."""
        with self._lock:
            hit = self._views.get(name)
            if hit is not None and time.monotonic() - hit[0] < VIEW_TTL_S:
                return hit[1]
            view = _guarded(lambda: self._read_view(name), f"read study {name!r}")
            self._views[name] = (time.monotonic(), view)
            return view

    def _read_view(self, name: str) -> StudyView:
        study = self.study(name)
        columns = tuple(column_names(study))
        message = _message(name, pd.DataFrame(), columns)
        if message and "autocompress search" in message:  # a foreign study: show nothing of it
            return StudyView(name, pd.DataFrame(), columns, (), {}, {}, pd.DataFrame(), message)
        df = trials_table(study)
        record = StudyRecord.of(study)
        return StudyView(
            name=name, trials=df, columns=columns,
            directions=tuple(o["direction"] for o in objectives_of(study)), limits=constraint_limits(study),
            baseline=record.baseline.as_dict() if record.baseline is not None else {},
            hypervolume=hypervolume_curve(study, df), message=_message(name, df, columns),
            measured={k: dict(v) for k, v in record.measured.items()},
        )

    def trial(self, name: str, number: int) -> TrialDetail:
        view = self.view(name)
        rows = view.trials[view.trials["trial"] == number] if not view.trials.empty else view.trials
        if rows.empty:
            raise DashboardError(f"study {name!r} has no trial {number}")
        t = _guarded(lambda: _frozen(self.study(name), number), f"read trial {number}")
        layers = _guarded(lambda: layer_table(t), f"read the policy of trial {number}")
        record = TrialRecord.of(t)
        distill = dict((record.policy or {}).get("distill") or {})
        return TrialDetail(number, {str(k): v for k, v in rows.iloc[0].items()}, layers, distill, record)

    def export(self, name: str, number: int) -> tuple[str, str]:
        """(file name, YAML text) of the policy file ``autocompress export`` writes."""
        policy = _guarded(lambda: stored_export(self.study(name), number, self.url), f"export trial {number}")
        return f"{safe_file_name(name)}-trial{number}.yaml", policy.to_yaml()


def safe_file_name(name: str) -> str:
    """A study name as a download file name: letters, digits, '.', '_', '-' only, no leading
    dot (a name from someone else's storage may hold '../', '/' or markup)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip("._")[:80] or "study"


def _frozen(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def _guarded(read: Callable[[], T], what: str) -> T:
    try:
        return read()
    except DashboardError:
        raise
    except AutocompressError as e:
        raise DashboardError(str(e)) from None
    except Exception as e:  # never a stack trace on the page; the server log keeps it
        log.exception("dashboard: cannot %s", what)
        raise DashboardError(f"cannot {what}: {type(e).__name__}: {e}") from None
