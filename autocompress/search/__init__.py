"""Search: the declarative search space, the study file, the controller and the front."""

from autocompress.search._bound import BoundSpace, GroupLike
from autocompress.search._front import front_table, study_hypervolume, trials_table
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
    "Rule",
    "SamplerConfig",
    "SearchSpace",
    "StudyConfig",
    "WarmStart",
    "front_table",
    "load_space",
    "load_study_config",
    "study_hypervolume",
    "trials_table",
]
