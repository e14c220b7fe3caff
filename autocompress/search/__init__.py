"""Search: the declarative search space, the study file, and (lead) the controller."""

from autocompress.search._bound import BoundSpace, GroupLike
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
    "load_space",
    "load_study_config",
]
