"""autocompress: joint search over bit-widths, sparsity, low rank and distillation.

Public API::

    import autocompress as ac
    infos = ac.layers(model, x)                      # compressible layers, shapes, MACs
    policy = ac.Policy.load("policy.yaml")           # per-layer bits / sparsity / rank
    nbytes = ac.size_bytes(model, policy, x)         # exact deploy bytes, nothing built
    small = ac.compress(model, policy, form="deploy", example_input=x)
"""

from autocompress.artifact import load_artifact, save_artifact
from autocompress.compress import compress, to_deploy
from autocompress.cost import LeafPlan, plan, size_bytes
from autocompress.errors import AutocompressError, ConfigError, GraphError, PolicyError
from autocompress.graph import LayerInfo, layers
from autocompress.policy import DistillConfig, LayerConfig, Policy

__version__ = "0.1.0"

__all__ = [
    "AutocompressError",
    "ConfigError",
    "DistillConfig",
    "GraphError",
    "LayerConfig",
    "LayerInfo",
    "LeafPlan",
    "Policy",
    "PolicyError",
    "__version__",
    "compress",
    "layers",
    "load_artifact",
    "plan",
    "save_artifact",
    "size_bytes",
    "to_deploy",
]
