"""Write a trial's many small records in one storage transaction.

Optuna stores every parameter, user attr and system attr (constraints) with its own
transaction: on an RDB storage each one is a session, a trial lookup and a commit (SQLite: a
journal file and fsyncs; PostgreSQL: a round trip). A candidate here has ~20 parameters and
~12 attrs, so the Ray driver, which writes every trial of the cluster, made ~35 commits per
trial (docs/benchmarks-history.md, issue 6: batched, its storage wall time per trial fell by a sixth; its
CPU, mostly SQLAlchemy's per-statement work, hardly changed).

:func:`batched` swaps a write-behind stand-in into ``trial.storage`` for a block: the
``Trial`` API works unchanged (its own cache is updated as usual), the writes are kept, and at
the end of the block they go to the storage together, in one transaction on an
:class:`optuna.storages.RDBStorage` (with the same checks as Optuna's own calls: the trial
must still be running, a parameter's distribution must match the study's) and one by one on
any other storage. A block that raises writes nothing. One transaction needs Optuna's
private RDB helpers; where an Optuna release lacks them, the writes go one by one (slower,
same records); :func:`fast_path` says which.

Example::

    trial = study.ask()
    with batched(trial):
        space.sample(trial)          # ~20 suggest_* calls, one commit
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution


@dataclass
class _Writes:
    params: list[tuple[str, float, BaseDistribution]] = field(default_factory=list)
    user: dict[str, Any] = field(default_factory=dict)
    system: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.params or self.user or self.system)


class _WriteBehind:
    """Stands in for a storage inside :func:`batched`: keeps a trial's writes, forwards reads."""

    def __init__(self, storage: optuna.storages.BaseStorage, trial_id: int) -> None:
        self._storage, self._trial_id, self.writes = storage, trial_id, _Writes()

    def _own(self, trial_id: int) -> None:
        if trial_id != self._trial_id:
            raise RuntimeError(f"batched writes of trial id {self._trial_id} got a write for trial id {trial_id}")

    def set_trial_param(self, trial_id: int, name: str, value: float, distribution: BaseDistribution) -> None:
        self._own(trial_id)
        self.writes.params.append((name, value, distribution))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._own(trial_id)
        self.writes.user[key] = value

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._own(trial_id)
        self.writes.system[key] = value

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        attrs = dict(self._storage.get_trial_system_attrs(trial_id))
        return {**attrs, **self.writes.system} if trial_id == self._trial_id else attrs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


@contextmanager
def batched(trial: optuna.trial.Trial) -> Iterator[None]:
    """Collect ``trial``'s parameter and attr writes in the block; write them together after it."""
    real = trial.storage
    proxy = _WriteBehind(real, trial._trial_id)
    trial.storage = proxy  # type: ignore[assignment]
    try:
        yield
    finally:
        trial.storage = real
    if proxy.writes:
        write(real, trial._trial_id, proxy.writes)


def write(storage: optuna.storages.BaseStorage, trial_id: int, writes: _Writes) -> None:
    """Store ``writes`` for ``trial_id``: one transaction where :func:`fast_path` allows."""
    rdb = _rdb_backend(storage)
    if rdb is not None:
        _write_rdb(rdb, trial_id, writes)
        return
    for name, value, dist in writes.params:
        storage.set_trial_param(trial_id, name, value, dist)
    for key, value in writes.user.items():
        storage.set_trial_user_attr(trial_id, key, value)
    for key, value in writes.system.items():
        storage.set_trial_system_attr(trial_id, key, value)


def fast_path(storage: optuna.storages.BaseStorage) -> bool:
    """Whether :func:`write` stores ``storage``'s batches in one transaction."""
    return _rdb_backend(storage) is not None


def _rdb_backend(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    backend = getattr(storage, "_backend", storage)  # optuna wraps an RDBStorage in a cache
    if not isinstance(backend, optuna.storages.RDBStorage):
        return None
    return backend if _helpers_fit(type(backend)) else None


@functools.lru_cache(maxsize=8)
def _helpers_fit(cls: type) -> bool:
    """Whether ``cls`` (an RDBStorage class) has the private helpers :func:`_write_rdb` calls, with
    the arguments it passes; checked once per class, not per write."""
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session  # noqa: F401

        param = list(inspect.signature(cls._set_trial_param_without_commit).parameters)  # type: ignore[attr-defined]
        attr = list(inspect.signature(cls._set_trial_attr_without_commit).parameters)  # type: ignore[attr-defined]
    except (ImportError, AttributeError, TypeError, ValueError):
        return False
    return (param[:6] == ["self", "session", "trial_id", "param_name", "param_value_internal", "distribution"]
            and attr[:6] == ["self", "session", "model_cls", "trial_id", "key", "value"]
            and hasattr(models, "TrialUserAttributeModel") and hasattr(models, "TrialSystemAttributeModel"))


def _write_rdb(backend: optuna.storages.RDBStorage, trial_id: int, writes: _Writes) -> None:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(backend.scoped_session) as session:
        for name, value, dist in writes.params:  # checks the trial is running and the distribution fits
            backend._set_trial_param_without_commit(session, trial_id, name, value, dist)
        for key, value in writes.user.items():
            backend._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)
        for key, value in writes.system.items():
            backend._set_trial_attr_without_commit(session, models.TrialSystemAttributeModel, trial_id, key, value)
