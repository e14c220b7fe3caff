"""The stored study: what every process sharing a study agrees on through its storage.

Storage URLs and their rules (:func:`open_storage`), heartbeats and dead workers
(:class:`Liveness`), retries of lost trials, the budget counted over every worker
(:class:`BudgetGate`), batched writes, one fine-tune per candidate (:class:`Claims`) and a
start that fails leaving nothing behind (:func:`undo_on_failure`). It knows Optuna and
policies, never models or data: the search (``autocompress.search``) sits on top of it.
Every key stored on a trial or a study, and the typed records readers get, are in
:mod:`autocompress.study.records`.
"""

from autocompress.study import records
from autocompress.study._batch import batched
from autocompress.study._budget import POLL_S, BudgetGate, Census, census
from autocompress.study._claims import Claims, Verdict, candidate_key, reuse
from autocompress.study._fresh_start import undo_on_failure
from autocompress.study._liveness import Liveness
from autocompress.study._retry import counts, give_up_and_requeue, retried_numbers
from autocompress.study._storage import (
    StorageUnavailable,
    describe,
    is_sqlite_file,
    is_storage_error,
    open_existing_storage,
    open_storage,
    retry_delay,
    safe_url,
    storage_file,
)
from autocompress.study.records import RECORD_VERSION, StudyRecord, TrialRecord

__all__ = [
    "POLL_S",
    "RECORD_VERSION",
    "BudgetGate",
    "Census",
    "Claims",
    "Liveness",
    "StorageUnavailable",
    "StudyRecord",
    "TrialRecord",
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
    "records",
    "retried_numbers",
    "retry_delay",
    "reuse",
    "safe_url",
    "storage_file",
    "undo_on_failure",
]
