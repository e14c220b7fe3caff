"""The exact size model: deploy-form bytes computed before anything is built.

Sums, over the deploy form's unique state tensors: every compressed leaf's encoded weight
(packed codes, scales, zero points, sparse indices or bitmask), bias and activation
quantisation parameters, from the same layout functions the encoder uses; and every other
tensor (uncompressed layers, norms, embeddings, buffers) at its own dtype, from a meta copy
on which channel pruning and low rank have been applied. Tested equal to the artifact.
"""

from __future__ import annotations

from torch import nn

from autocompress.compress import ExampleInput, weight_leaves
from autocompress.cost._plan import structural_copy
from autocompress.policy import LayerConfig, Policy


def needs_deploy_module(cfg: LayerConfig) -> bool:
    """Whether a leaf with this config is replaced by a deploy module (else it stays fp32)."""
    from autocompress.techniques.sparsify import mask_kind

    return mask_kind(cfg) != "none" or cfg.weight_bits < 32 or cfg.act_bits < 32


def size_breakdown(model: nn.Module, policy: Policy, example_input: ExampleInput) -> dict[str, int]:
    """Deploy-form bytes per compressed leaf path, plus ``"<other>"`` for everything else."""
    from autocompress.techniques.deploy import deploy_state_nbytes

    meta, res, _ = structural_copy(model, policy, example_input)
    out: dict[str, int] = {}
    replaced: set[int] = set()
    for _layer, leaf_path, leaf, cfg in weight_leaves(meta, res):
        if needs_deploy_module(cfg):
            out[leaf_path] = deploy_state_nbytes(leaf, cfg)
            replaced.update(id(t) for t in leaf.state_dict(keep_vars=True).values())
    other = 0
    seen: set[int] = set()
    for t in meta.state_dict(keep_vars=True).values():
        if id(t) in replaced or id(t) in seen:
            continue
        seen.add(id(t))
        other += t.numel() * t.element_size()
    out["<other>"] = other
    return out


def size_bytes(model: nn.Module, policy: Policy, example_input: ExampleInput) -> int:
    """Exact bytes of the tensors of ``compress(model, policy, "deploy")``, built on a meta copy.

    Example::

        nbytes = autocompress.size_bytes(model, Policy.load("p.yaml"), x)
    """
    return sum(size_breakdown(model, policy, example_input).values())
