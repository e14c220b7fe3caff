"""autocompress: joint search over bit-widths, sparsity, low rank and distillation.

Public API::

    import autocompress as ac
    infos = ac.layers(model, x)                      # compressible layers, shapes, MACs
    policy = ac.Policy.load("policy.yaml")           # per-layer bits / sparsity / rank
    nbytes = ac.size_bytes(model, policy, x)         # exact deploy tensor bytes, nothing built
    shipped = ac.file_bytes(model, policy, x)        # exact artifact file bytes, header included
    small = ac.compress(model, policy, form="deploy", example_input=x)
"""

from autocompress.artifact import load_artifact, save_artifact
from autocompress.compress import compress, to_deploy
from autocompress.cost import LeafPlan, file_bytes, plan, size_bytes
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
    "file_bytes",
    "layers",
    "load_artifact",
    "plan",
    "save_artifact",
    "size_bytes",
    "to_deploy",
]
