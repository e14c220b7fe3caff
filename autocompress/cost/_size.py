"""The exact size model: deploy-form bytes computed before anything is built.

Sums, over the deploy form's unique state tensors: every compressed leaf's encoded weight
(packed codes, scales, zero points, sparse indices or bitmask), bias and activation
quantisation parameters, from the same layout functions the encoder uses; and every other
tensor (uncompressed layers, norms, embeddings, buffers) at its own dtype, from a meta copy
on which channel pruning and low rank have been applied. Tested equal to the artifact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from autocompress.compress import ExampleInput, weight_leaves
from autocompress.cost._plan import structural_copy
from autocompress.policy import LayerConfig, Policy


def needs_deploy_module(cfg: LayerConfig) -> bool:
    """Whether a leaf with this config is replaced by a deploy module (else it stays fp32)."""
    from autocompress.techniques.sparsify import mask_kind

    return mask_kind(cfg) != "none" or cfg.weight_bits < 32 or cfg.act_bits < 32


@dataclass(frozen=True)
class SizeReport:
    """One walk over the deploy form's tensors, seen three ways.

    - ``leaves``: bytes of each compressed leaf (its deploy module's state);
    - ``other``: bytes of every tensor outside compressed leaves (each stored once);
    - ``layers``: bytes of every compressible layer, compressed or not, a factorised layer
      counted once (its two leaves summed) — what a person reading a policy wants to see.
    """

    leaves: dict[str, int]
    other: int
    layers: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.leaves.values()) + self.other


def size_report(model: nn.Module, policy: Policy, example_input: ExampleInput) -> SizeReport:
    """Sizes of ``compress(model, policy, "deploy")``, computed on a meta copy."""
    from autocompress.techniques.deploy import deploy_state_nbytes

    meta, res, _ = structural_copy(model, policy, example_input)
    leaves: dict[str, int] = {}
    layers: dict[str, int] = {}
    replaced: list[str] = []  # state-dict prefixes of the leaves a deploy module replaces
    seen: set[int] = set()  # a tensor shared by two modules is stored once
    for layer, leaf_path, leaf, cfg in weight_leaves(meta, res):
        if needs_deploy_module(cfg):
            n = leaves[leaf_path] = deploy_state_nbytes(leaf, cfg)
            replaced.append(f"{leaf_path}.")
        else:
            n = _unseen_bytes(leaf.state_dict(keep_vars=True).values(), seen)
        layers[layer] = layers.get(layer, 0) + n
    # By name, not by tensor: a weight tied to a replaced leaf (an embedding shared with the
    # output projection) is still stored where its other owner keeps it.
    prefixes = tuple(replaced)
    rest = (t for k, t in meta.state_dict(keep_vars=True).items() if not k.startswith(prefixes))
    other = _unseen_bytes(rest, set())
    return SizeReport(leaves, other, layers)


def _unseen_bytes(tensors: Iterable[torch.Tensor], seen: set[int]) -> int:
    total = 0
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def size_breakdown(model: nn.Module, policy: Policy, example_input: ExampleInput) -> dict[str, int]:
    """Deploy-form bytes per compressed leaf path, plus ``"<other>"`` for everything else."""
    r = size_report(model, policy, example_input)
    return {**r.leaves, "<other>": r.other}


def size_bytes(model: nn.Module, policy: Policy, example_input: ExampleInput) -> int:
    """Exact bytes of the tensors of ``compress(model, policy, "deploy")``, built on a meta copy.

    Example::

        nbytes = autocompress.size_bytes(model, Policy.load("p.yaml"), x)
    """
    return size_report(model, policy, example_input).total
