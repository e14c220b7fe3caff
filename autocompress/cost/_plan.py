"""The plan of a deploy form: every weight leaf's shapes, MACs, precision and kernel.

Built without training and without real weights: the structural steps (channel pruning,
low rank) run on a ``meta`` copy of the model, so shapes are exact and nothing is computed.
Size and latency models read this plan.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from autocompress.compress import ExampleInput, apply_structure, normalise, resolve, weight_leaves
from autocompress.graph import layers
from autocompress.policy import Policy
from autocompress.techniques.kernels import Kernel


@dataclass(frozen=True)
class LeafPlan:
    """One weight-bearing leaf of the deploy form (a factorized layer gives two)."""

    layer: str
    leaf: str
    kind: Literal["linear", "conv1d", "conv2d"]  # embeddings are not planned (lookups, in the rest)
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    groups: int
    stride: tuple[int, ...]
    has_bias: bool
    weight_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    macs: int
    calls: int
    weight_bits: int
    act_bits: int
    sparsity: float
    pattern: str
    kernel: Kernel
    codebook: bool = False  # weight_bits index a k-means table (decoded to fp32 at load)
    act_dynamic: bool = False  # 8-bit input range computed at run time (kernel int8-dynamic)


def to_meta(x: ExampleInput) -> ExampleInput:
    if isinstance(x, tuple):
        return tuple(t.to("meta") for t in x)
    return x.to("meta")


def meta_copy(model: nn.Module) -> nn.Module:
    """A ``meta`` copy of ``model`` that keeps its tied tensors tied.

    ``Module.to("meta")`` converts every module's parameters and buffers one by one, so a
    tensor two modules share (an embedding tied to the output projection) would become two
    tensors and be counted twice; the ties are put back after the conversion.
    """
    copied = normalise(copy.deepcopy(model))  # deepcopy keeps ties
    slots: dict[int, list[tuple[dict[str, Any], str]]] = {}
    for mod in copied.modules():
        for table in (mod._parameters, mod._buffers):
            for name, t in table.items():
                if t is not None:
                    slots.setdefault(id(t), []).append((table, name))
    meta = copied.to("meta")
    for group in slots.values():
        first_table, first_name = group[0]
        for table, name in group[1:]:
            table[name] = first_table[first_name]
    return meta


def structural_copy(model: nn.Module, policy: Policy, example_input: ExampleInput):
    """(meta model after channel pruning and low rank, resolved configs, meta input)."""
    meta = meta_copy(model)
    res = resolve(meta, policy)
    x = to_meta(example_input)
    apply_structure(meta, res, x)
    return meta, res, x


def plan(model: nn.Module, policy: Policy, example_input: ExampleInput) -> list[LeafPlan]:
    """Per-leaf plan of ``compress(model, policy, "deploy")``, computed on a meta copy."""
    from autocompress.techniques.kernels import leaf_kernel

    meta, res, x = structural_copy(model, policy, example_input)
    infos = {i.name: i for i in layers(meta, x)}
    out = []
    for layer_name, leaf_path, leaf, cfg in weight_leaves(meta, res):
        info = infos[leaf_path]
        if info.kind == "embedding":  # a lookup: no MACs; its time stays in the fitted rest, as before
            continue
        out.append(
            LeafPlan(
                layer=layer_name,
                leaf=leaf_path,
                kind=info.kind,
                in_channels=info.in_channels,
                out_channels=info.out_channels,
                kernel_size=info.kernel_size,
                groups=info.groups,
                stride=tuple(getattr(leaf, "stride", ())),
                has_bias=info.has_bias,
                weight_shape=info.weight_shape,
                input_shape=info.input_shape,
                output_shape=info.output_shape,
                macs=info.macs,
                calls=info.calls,
                weight_bits=cfg.weight_bits,
                act_bits=cfg.act_bits,
                sparsity=cfg.sparsity,
                pattern=cfg.pattern,
                kernel=leaf_kernel(leaf, cfg),
                codebook=cfg.codebook,
                act_dynamic=cfg.act_dynamic,
            )
        )
    return out

