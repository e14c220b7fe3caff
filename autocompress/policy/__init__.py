"""Policies: which layer gets which bit-width, sparsity and rank."""

from autocompress.policy._config import (
    ACT_BITS,
    GRANULARITIES,
    NM_GROUPS,
    WEIGHT_BITS,
    DistillConfig,
    Granularity,
    LayerConfig,
    NMGroups,
    make_layer_config,
    parse_nm,
)
from autocompress.policy._meta import PolicyMeta, Predicted, Provenance, TaskRef
from autocompress.policy._policy import Policy

__all__ = [
    "ACT_BITS",
    "GRANULARITIES",
    "NM_GROUPS",
    "WEIGHT_BITS",
    "DistillConfig",
    "Granularity",
    "LayerConfig",
    "NMGroups",
    "Policy",
    "PolicyMeta",
    "Predicted",
    "Provenance",
    "TaskRef",
    "make_layer_config",
    "parse_nm",
]
