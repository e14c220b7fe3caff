"""A compressible leaf, described once: its op kind, weight shape and (for a convolution) its
frozen geometry. Kernel choice, the deploy module and the int8 backend read this one typed
record instead of re-reading the ``nn.Module`` or passing loose dicts.

Example::

    spec = LeafSpec.of(model.conv1)
    spec.kind, spec.weight_shape, spec.conv.stride, spec.conv.depthwise
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autocompress.errors import PolicyError
from autocompress.graph import LayerKind, kind_of


@dataclass(frozen=True)
class ConvArgs:
    """What a convolution's deploy module and kernels need of it (ints per spatial dim)."""

    stride: tuple[int, ...]
    padding: str | tuple[int, ...]  # as the layer has it ("same", "valid" or ints)
    int_padding: tuple[int, ...] | None  # the same as ints; None where no symmetric ints exist
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    reversed_padding: tuple[int, ...]  # F.pad's order, for padding modes other than zeros
    depthwise: bool

    @classmethod
    def of(cls, conv: Any) -> ConvArgs:
        k = tuple(conv.kernel_size)
        d = tuple(conv.dilation)
        pad = conv.padding
        int_pad: tuple[int, ...] | None
        if pad == "valid":
            int_pad = (0,) * len(k)
        elif pad == "same":
            totals = [di * (ki - 1) for di, ki in zip(d, k, strict=True)]
            int_pad = tuple(t // 2 for t in totals) if all(t % 2 == 0 for t in totals) else None
        else:
            int_pad = tuple(pad)
        return cls(stride=tuple(conv.stride), padding=pad if isinstance(pad, str) else tuple(pad),
                   int_padding=int_pad, dilation=d, groups=int(conv.groups), padding_mode=str(conv.padding_mode),
                   reversed_padding=tuple(conv._reversed_padding_repeated_twice),
                   depthwise=conv.groups > 1 and conv.groups == conv.in_channels)


@dataclass(frozen=True)
class LeafSpec:
    """One Linear / Conv1d / Conv2d / Embedding leaf: kind, weight shape, and its conv geometry (or None)."""

    kind: LayerKind
    weight_shape: tuple[int, ...]
    conv: ConvArgs | None = None

    @classmethod
    def of(cls, leaf: nn.Module, weight_shape: tuple[int, ...] | None = None) -> LeafSpec:
        kind = kind_of(leaf)
        if kind is None:
            raise PolicyError(f"a compressible leaf is an nn.Linear/Conv1d/Conv2d/Embedding, got {type(leaf).__name__}")
        shape = weight_shape if weight_shape is not None else tuple(_weight(leaf).shape)
        return cls(kind, tuple(shape), None if kind in ("linear", "embedding") else ConvArgs.of(leaf))


def run_op(spec: LeafSpec, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The leaf's dense op on ``x`` with weight ``w`` (its padding mode and geometry applied)."""
    if spec.kind == "linear":
        return F.linear(x, w, bias)
    if spec.kind == "embedding":
        return F.embedding(x, w)
    c = spec.conv
    if c is None:
        raise RuntimeError(f"a {spec.kind} leaf without its conv geometry")
    padding: Any = c.padding
    if c.padding_mode != "zeros":
        x = F.pad(x, c.reversed_padding, mode=c.padding_mode)
        padding = 0
    fn: Any = F.conv2d if spec.kind == "conv2d" else F.conv1d
    return fn(x, w, bias, c.stride, padding, c.dilation, c.groups)


def _weight(leaf: nn.Module) -> Any:
    from torch.nn.utils import parametrize

    m: Any = leaf
    return m.parametrizations["weight"].original if parametrize.is_parametrized(leaf, "weight") else m.weight


__all__ = ["ConvArgs", "LeafSpec", "run_op"]
