"""Open a study's storage from its URL, with the rules that keep a study safe.

- ``sqlite:///path`` (the default, embedded): one worker only. Optuna's docs warn that
  SQLite locks under parallel writers, so ``workers > 1`` is refused with the alternatives.
- ``postgresql://...`` / ``mysql://...``: any number of workers; heartbeats mark the trials
  of dead workers FAILED and ``RetryFailedTrialCallback`` enqueues them again.
- ``journal:///path/to/file.log``: a journal file for shared file systems (NFS, Lustre).

An unreachable database is retried a bounded number of times, then a clear error is raised.
Heartbeat, grace period and retry delay can be shortened for tests with the environment
variables ``AUTOCOMPRESS_HEARTBEAT_S``, ``AUTOCOMPRESS_GRACE_S`` and ``AUTOCOMPRESS_RETRY_S``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import optuna

from autocompress.errors import AutocompressError, ConfigError

HEARTBEAT_S = 30
GRACE_S = 90
CONNECT_TRIES = 3
RETRY_S = 2.0
CONNECT_TIMEOUT_S = 10


class StorageUnavailable(AutocompressError):
    """The study's storage cannot be reached (at start, or during the run)."""


SQLITE_MAGIC = b"SQLite format 3\x00"


def is_sqlite_file(path: str | Path) -> bool:
    """Whether ``path`` is an SQLite database file (by its header; False if unreadable)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def heartbeat_s() -> int:
    return _env_int("AUTOCOMPRESS_HEARTBEAT_S", HEARTBEAT_S)


def grace_s() -> int:
    return _env_int("AUTOCOMPRESS_GRACE_S", GRACE_S)


def retry_delay(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): linear backoff, capped."""
    base = float(os.environ.get("AUTOCOMPRESS_RETRY_S") or RETRY_S)
    return min(base * attempt, 2.5 * base)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"environment variable {name} must be a whole number of seconds >= 1, got {raw!r}")
    return int(raw)


def storage_file(url: str) -> Path | None:
    """The local file an SQLite or journal URL names (None for a server or ``:memory:``)."""
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[-1]
    elif url.startswith("journal:"):
        path = url.split("://", 1)[-1]
    else:
        return None
    return Path(path) if path and path != ":memory:" else None


def open_storage(url: str, workers: int = 1) -> optuna.storages.BaseStorage:
    if url.startswith("sqlite:"):
        if workers > 1:
            raise ConfigError(
                f"storage {url!r}: SQLite cannot take {workers} parallel workers (it locks under "
                "concurrent writers); use postgresql://... (autocompress worker ... --storage), "
                "a journal:///shared/path.log file, or --backend ray"
            )
        db = storage_file(url)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        return _rdb(url, heartbeat=False)
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        log = storage_file(url)
        if log is None:
            raise ConfigError(f"storage {url!r}: a journal storage names a file, e.g. journal:///shared/study.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(log)))
    if "://" not in url:
        raise ConfigError(
            f"storage {url!r} is not a URL; use sqlite:///file.db, postgresql://host/db "
            "or journal:///path/file.log"
        )
    return _rdb(url, heartbeat=True)


def open_existing_storage(url: str) -> optuna.storages.BaseStorage:
    """Open a storage to *read* a study: an SQLite or journal file must exist already.

    Reading commands (pareto, export, report, dashboard) never create an empty database
    where a path was mistyped."""
    if url.startswith(("sqlite:", "journal:")):
        db = storage_file(url)
        path = str(db) if db is not None else url.split("://", 1)[-1]
        if db is None or not db.is_file():
            raise ConfigError(f"storage {url!r}: no such file {path!r}; check the path (run `autocompress search` "
                              "first to create the study)")
        if url.startswith("sqlite:") and not is_sqlite_file(path):
            raise ConfigError(f"storage {url!r}: {path} is not an SQLite database")
    return open_storage(url)


def _rdb(url: str, heartbeat: bool) -> optuna.storages.RDBStorage:
    import warnings

    from autocompress.study._retry import RequeueStale

    url = _with_driver(url)
    kwargs: dict[str, Any] = {"engine_kwargs": _engine_kwargs(url)}
    if heartbeat:
        # Dead workers stop beating; after the grace period any live worker marks their trials
        # FAILED and RequeueStale enqueues the same parameters again (at most MAX_RETRY times).
        kwargs.update(heartbeat_interval=heartbeat_s(), grace_period=grace_s())
        kwargs[_STALE_KW] = RequeueStale()
    last: Exception | None = None
    for attempt in range(1, CONNECT_TRIES + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except ImportError as e:
            raise ConfigError(f"storage {safe_url(url)!r}: the database driver is missing ({e}); install it: "
                              "pip install 'autocompress[postgres]' (psycopg 3) or psycopg2-binary") from None
        except Exception as e:  # connection refused, DNS, auth: retried, then reported
            last = e
            if attempt < CONNECT_TRIES:
                time.sleep(retry_delay(attempt))
    raise StorageUnavailable(
        f"storage {safe_url(url)!r} is unreachable after {CONNECT_TRIES} tries: {describe(last)}; "
        "check that the database server is running and the URL (host, port, database, user) is right"
    )


# Optuna >= 4.9 renamed the heartbeat callback argument; older versions only know the old name.
_STALE_KW = (
    "heartbeat_stale_trial_callback"
    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback")
    else "failed_trial_callback"
)


def _with_driver(url: str) -> str:
    """``postgresql://`` with the installed driver: psycopg 3, else psycopg2.

    SQLAlchemy's default for a bare ``postgresql://`` changed from psycopg2 to psycopg 3 (2.1),
    so name whichever is installed; an explicit ``postgresql+driver://`` is kept.
    """
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres"):
        return url
    for module, name in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{name}{sep}{rest}"
    return f"postgresql{sep}{rest}"


def _engine_kwargs(url: str) -> dict[str, Any]:
    """Connections are checked before use (a restarted server is reconnected to) and time out."""
    kw: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        kw["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    return kw


def describe(e: BaseException | None) -> str:
    """``TypeName: first line`` of the root database error (Optuna wraps some in its own)."""
    if e is None:
        return "no error"
    root = _storage_cause(e) or e
    lines = str(getattr(root, "orig", None) or root).strip().splitlines()
    return f"{type(root).__name__}: {lines[0] if lines else ''}"


def is_storage_error(e: BaseException) -> bool:
    """A failure to reach the storage (database connection), not a bug."""
    return _storage_cause(e) is not None


def _storage_cause(e: BaseException) -> BaseException | None:
    """The connection error in ``e``'s chain of causes (Optuna re-raises some as its own)."""
    import sqlalchemy.exc

    lost = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
            sqlalchemy.exc.DisconnectionError, sqlalchemy.exc.TimeoutError)
    seen: BaseException | None = e
    for _ in range(8):
        if seen is None or isinstance(seen, lost):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def safe_url(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url
