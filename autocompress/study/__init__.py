"""The stored study: what every process sharing a study agrees on through its storage.

Storage URLs and their rules (:func:`open_storage`), heartbeats and dead workers
(:class:`Liveness`), retries of lost trials, the budget counted over every worker
(:class:`BudgetGate`), batched writes, one fine-tune per candidate (:class:`Claims`) and a
start that fails leaving nothing behind (:func:`undo_on_failure`). It knows Optuna and
policies, never models or data: the search (``autocompress.search``) sits on top of it.
"""

from autocompress.study._batch import batched
from autocompress.study._budget import POLL_S, BudgetGate, Census, census
from autocompress.study._claims import CANDIDATE, DUPLICATE_OF, POLICY, Claims, Verdict, candidate_key, reuse
from autocompress.study._fresh_start import storage_file, undo_on_failure
from autocompress.study._liveness import Liveness
from autocompress.study._retry import FAIL, UNCOUNTED, counts, give_up_and_requeue, retried_numbers
from autocompress.study._storage import (
    StorageUnavailable,
    describe,
    is_sqlite_file,
    is_storage_error,
    open_existing_storage,
    open_storage,
    retry_delay,
    safe_url,
)

__all__ = [
    "CANDIDATE",
    "DUPLICATE_OF",
    "FAIL",
    "POLICY",
    "POLL_S",
    "UNCOUNTED",
    "BudgetGate",
    "Census",
    "Claims",
    "Liveness",
    "StorageUnavailable",
    "Verdict",
    "batched",
    "candidate_key",
    "census",
    "counts",
    "describe",
    "give_up_and_requeue",
    "is_sqlite_file",
    "is_storage_error",
    "open_existing_storage",
    "open_storage",
    "retried_numbers",
    "retry_delay",
    "reuse",
    "safe_url",
    "storage_file",
    "undo_on_failure",
]
