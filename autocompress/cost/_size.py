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

from autocompress.artifact import TensorSpec, crc_placeholder, file_nbytes, metadata
from autocompress.compress import ExampleInput, weight_leaves
from autocompress.cost._plan import structural_copy
from autocompress.policy import LayerConfig, Policy


@dataclass(frozen=True)
class SizeReport:
    """One walk over the deploy form's tensors, seen four ways.

    - ``leaves``: bytes of each compressed leaf (its deploy module's state);
    - ``other``: bytes of every tensor outside compressed leaves (each stored once);
    - ``layers``: bytes of every compressible layer, compressed or not, a factorised layer
      counted once (its two leaves summed) — what a person reading a policy wants to see;
    - ``file``: the whole artifact file ``save_artifact`` writes, header included (tensor
      names, shapes, the policy, checksums): what a user ships, and the size objective.
    """

    leaves: dict[str, int]
    other: int
    layers: dict[str, int]
    file: int = 0

    @property
    def total(self) -> int:
        """The tensors' bytes (``size_bytes``)."""
        return sum(self.leaves.values()) + self.other

    @property
    def header(self) -> int:
        """What the file holds beyond the tensors."""
        return self.file - self.total


def size_report(model: nn.Module, policy: Policy, example_input: ExampleInput) -> SizeReport:
    """Sizes of ``compress(model, policy, "deploy")``, computed on a meta copy."""
    from autocompress.techniques.deploy import deploy_state_nbytes, needs_deploy

    meta, res, _ = structural_copy(model, policy, example_input)
    leaves: dict[str, int] = {}
    layers: dict[str, int] = {}
    replaced: dict[str, list[TensorSpec]] = {}  # state-dict prefix of a replaced leaf -> its tensors
    seen: set[int] = set()  # a tensor shared by two modules is stored once
    for layer, leaf_path, leaf, cfg in weight_leaves(meta, res):
        if needs_deploy(cfg):
            n = leaves[leaf_path] = deploy_state_nbytes(leaf, cfg)
            replaced[f"{leaf_path}." if leaf_path else ""] = _deploy_specs(leaf_path, leaf, cfg)
        else:
            n = _unseen_bytes(leaf.state_dict(keep_vars=True).values(), seen)
        layers[layer] = layers.get(layer, 0) + n
    specs, aliases = _stored_specs(meta, replaced)
    other = sum(s.nbytes for s in specs) - sum(leaves.values())
    header = metadata(policy, example_input, aliases, crc_placeholder(len(specs)))
    return SizeReport(leaves, other, layers, file_nbytes(specs, header))


def _deploy_specs(leaf_path: str, leaf: nn.Module, cfg: LayerConfig) -> list[TensorSpec]:
    """The tensors of ``to_deploy(leaf, cfg)``, in its state-dict order (see ``DeployLeaf``)."""
    from autocompress.techniques.deploy import deploy_tensor_specs

    pre = f"{leaf_path}." if leaf_path else ""
    return [TensorSpec(f"{pre}{k}", s, dt) for k, (s, dt) in deploy_tensor_specs(leaf, cfg).items()]


def _stored_specs(meta: nn.Module, replaced: dict[str, list[TensorSpec]]
                  ) -> tuple[list[TensorSpec], dict[str, str]]:
    """Every tensor the artifact stores, in state-dict order, and its aliases (tied tensors).

    By name, not by tensor: a weight tied to a replaced leaf (an embedding shared with the
    output projection) is still stored where its other owner keeps it."""
    specs: list[TensorSpec] = []
    aliases: dict[str, str] = {}
    first: dict[int, str] = {}
    done: set[str] = set()
    prefixes = sorted(replaced, key=len, reverse=True)
    for key, t in meta.state_dict(keep_vars=True).items():
        owner = next((p for p in prefixes if key.startswith(p)), None)
        if owner is not None:
            if owner not in done:
                done.add(owner)
                specs += replaced[owner]
            continue
        if t.numel() > 0 and id(t) in first:
            aliases[key] = first[id(t)]
            continue
        first[id(t)] = key
        specs.append(TensorSpec(key, tuple(t.shape), t.dtype))
    return specs, aliases


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


def file_bytes(model: nn.Module, policy: Policy, example_input: ExampleInput) -> int:
    """Exact bytes of the artifact file ``save_artifact`` writes for this policy, header included.

    Example::

        shipped = autocompress.file_bytes(model, Policy.load("p.yaml"), x)
    """
    return size_report(model, policy, example_input).file


def size_bytes(model: nn.Module, policy: Policy, example_input: ExampleInput) -> int:
    """Exact bytes of the tensors of ``compress(model, policy, "deploy")``, built on a meta copy.

    Example::

        nbytes = autocompress.size_bytes(model, Policy.load("p.yaml"), x)
    """
    return size_report(model, policy, example_input).total
