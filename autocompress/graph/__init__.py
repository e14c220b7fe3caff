"""The model graph: compressible layers, their shapes and MACs, coupled channel groups."""

from autocompress.graph._act_links import ActLinks, activation_links
from autocompress.graph._channel_spaces import ChannelUse
from autocompress.graph._groups import ChannelGroup, channel_groups
from autocompress.graph._layers import (
    COMPRESSIBLE,
    LayerInfo,
    LayerKind,
    iter_compressible,
    kind_of,
    layers,
    lookup_names,
)
from autocompress.graph._structural_groups import set_heads, structural_groups

__all__ = [
    "COMPRESSIBLE",
    "ActLinks",
    "ChannelGroup",
    "ChannelUse",
    "LayerInfo",
    "LayerKind",
    "activation_links",
    "channel_groups",
    "iter_compressible",
    "kind_of",
    "layers",
    "lookup_names",
    "set_heads",
    "structural_groups",
]
