"""Search: the declarative search space, the study file, the controller and its workers.

What is stored about a study lives in ``autocompress.study`` (below this package); reading
results from a storage, in ``autocompress.results``. ``front_table``, ``study_hypervolume``
and ``trials_table`` are re-exported from there for existing callers.
"""

from autocompress.results import front_table, study_hypervolume, trials_table
from autocompress.search._bound import BoundSpace, GroupLike
from autocompress.search._context import SearchContext, build_context, state_checksum
from autocompress.search._controller import SearchResult, make_sampler, run_search, worker_seed
from autocompress.search._open import OpenedStudy, open_study
from autocompress.search._worker import WorkerResult, run_worker
from autocompress.search.export import export_policy, stored_export
from autocompress.search.space import DistillSpace, Rule, SearchSpace, load_space
from autocompress.search.study_config import (
    Budget,
    Constraints,
    FinetuneConfig,
    Objective,
    SamplerConfig,
    StudyConfig,
    WarmStart,
    load_study_config,
)

__all__ = [
    "BoundSpace",
    "Budget",
    "Constraints",
    "DistillSpace",
    "FinetuneConfig",
    "GroupLike",
    "Objective",
    "OpenedStudy",
    "Rule",
    "SamplerConfig",
    "SearchContext",
    "SearchResult",
    "SearchSpace",
    "StudyConfig",
    "WarmStart",
    "WorkerResult",
    "build_context",
    "export_policy",
    "front_table",
    "load_space",
    "load_study_config",
    "make_sampler",
    "open_study",
    "run_search",
    "run_worker",
    "state_checksum",
    "stored_export",
    "study_hypervolume",
    "trials_table",
    "worker_seed",
]
