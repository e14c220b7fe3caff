"""Open a study's storage from its URL, with the rules that keep a study safe.

- ``sqlite:///path`` (the default, embedded): one worker only. Optuna's docs warn that
  SQLite locks under parallel writers, so ``workers > 1`` is refused with the alternatives.
- ``postgresql://...`` / ``mysql://...``: any number of workers; heartbeats mark the trials
  of dead workers FAILED and ``RetryFailedTrialCallback`` enqueues them again.
- ``journal:///path/to/file.log``: a journal file for shared file systems (NFS, Lustre).

An unreachable database is retried a bounded number of times, then a clear error is raised.
"""

from __future__ import annotations

import time
from pathlib import Path

import optuna

from autocompress.errors import ConfigError

HEARTBEAT_S = 30
GRACE_S = 90
CONNECT_TRIES = 3


def open_storage(url: str, workers: int = 1) -> optuna.storages.BaseStorage:
    if url.startswith("sqlite:"):
        if workers > 1:
            raise ConfigError(
                f"storage {url!r}: SQLite cannot take {workers} parallel workers (it locks under "
                "concurrent writers); use postgresql://... (autocompress worker ... --storage), "
                "a journal:///shared/path.log file, or --backend ray"
            )
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return _rdb(url, heartbeat=False)
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = url.split("://", 1)[-1]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(path))
    if "://" not in url:
        raise ConfigError(
            f"storage {url!r} is not a URL; use sqlite:///file.db, postgresql://host/db "
            "or journal:///path/file.log"
        )
    return _rdb(url, heartbeat=True)


def _rdb(url: str, heartbeat: bool) -> optuna.storages.RDBStorage:
    kwargs: dict = {}
    if heartbeat:
        kwargs = {
            "heartbeat_interval": HEARTBEAT_S,
            "grace_period": GRACE_S,
            "failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=3),
        }
    last: Exception | None = None
    for attempt in range(CONNECT_TRIES):
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except ImportError as e:
            raise ConfigError(f"storage {_safe(url)!r}: the database driver is missing ({e}); "
                              "install it, e.g. pip install psycopg2-binary") from None
        except Exception as e:  # connection refused, DNS, auth: retried, then reported
            last = e
            time.sleep(min(2.0 * (attempt + 1), 5.0))
    raise ConfigError(
        f"storage {_safe(url)!r} is unreachable after {CONNECT_TRIES} tries: "
        f"{type(last).__name__}: {str(last).splitlines()[0] if last else ''}"
    )


def _safe(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url
