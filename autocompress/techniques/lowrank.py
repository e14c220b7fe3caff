"""Low-rank factorisation: one layer becomes two thinner layers by truncated SVD.

A weight viewed as ``W (out, in * prod(kernel)) = U S V^T`` is cut to rank ``r`` and the
singular values are split evenly, ``A = sqrt(S_r) V_r^T`` and ``B = U_r sqrt(S_r)``, so
both factors have comparable scale (better conditioned for fine-tuning and quantisation).

- ``nn.Linear(in, out)`` -> ``Linear(in, r, bias=False)`` then ``Linear(r, out, bias)``.
- ``nn.ConvNd(in, out, k)`` -> ``ConvNd(in, r, k, stride, padding, dilation, bias=False)``
  then a 1x1 ``ConvNd(r, out, 1, bias)``; output shape, stride and padding are unchanged.

The result is a real smaller layer pair in both train and deploy form. On ``meta`` tensors
only the shapes are built, so the size model can plan factorised layers without weights.

Example::

    r = resolve_rank(0.25, out=64, in_flat=128)   # 16
    model.fc1 = factorize(model.fc1, r, name="fc1")
"""

from __future__ import annotations

import math
from typing import Any, Union, cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from autocompress.errors import PolicyError

_Conv = (nn.Conv1d, nn.Conv2d)
Leaf = Union[nn.Linear, nn.Conv1d, nn.Conv2d]  # noqa: UP007  (a runtime alias on py3.10)


class Factorized(nn.Module):
    """``second(first(x))``: the two leaves of a low-rank layer (``first`` has no bias)."""

    def __init__(self, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.first = first
        self.second = second

    @property
    def rank(self) -> int:
        return int(cast(torch.Tensor, self.first.weight).shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def resolve_rank(cfg_rank: int | float, out: int, in_flat: int) -> int:
    """Absolute rank from a config rank: an int is kept, a float ratio in (0, 1] gives
    ``max(1, round(ratio * min(out, in_flat)))``. Bounds are checked by :func:`factorize`."""
    if isinstance(cfg_rank, bool) or not isinstance(cfg_rank, (int, float)):
        raise PolicyError(f"rank must be an int >= 1 or a ratio in (0, 1], got {cfg_rank!r}")
    if isinstance(cfg_rank, int):
        return cfg_rank
    if not (0.0 < cfg_rank <= 1.0):
        raise PolicyError(f"a rank ratio must be in (0, 1], got {cfg_rank}")
    return max(1, round(cfg_rank * min(out, in_flat)))


def max_rank(leaf: nn.Module) -> int:
    """``min(out, in * prod(kernel))``: the largest rank :func:`factorize` accepts."""
    w = cast(torch.Tensor, leaf.weight)
    return min(int(w.shape[0]), int(math.prod(w.shape[1:])))


def factorize(leaf: nn.Module, rank: int, *, name: str | None = None) -> Factorized:
    """Replace ``leaf`` (Linear / Conv1d / Conv2d, groups == 1) by a rank-``rank`` pair.

    At full rank the pair reproduces the layer up to float rounding. ``name`` (the layer's
    path) is used in error messages. The caller puts the result where ``leaf`` was.
    """
    where = name or type(leaf).__name__
    if not isinstance(leaf, (nn.Linear, *_Conv)):
        raise PolicyError(
            f"rank on layer {where!r}: low rank needs nn.Linear, nn.Conv1d or nn.Conv2d, "
            f"got {type(leaf).__name__}"
        )
    if isinstance(leaf, _Conv) and leaf.groups != 1:
        raise PolicyError(
            f"rank on layer {where!r}: low rank needs groups == 1, got groups={leaf.groups} "
            "(grouped and depthwise convs cannot be factorised; remove rank for this layer)"
        )
    if parametrize.is_parametrized(leaf):
        raise PolicyError(
            f"rank on layer {where!r}: the layer is already parametrized; factorise before "
            "attaching masks or quantisation"
        )
    limit = max_rank(leaf)
    if isinstance(rank, bool) or not isinstance(rank, int) or not (1 <= rank <= limit):
        raise PolicyError(
            f"rank on layer {where!r}: rank must be an int in [1, {limit}] "
            f"(min(out, in * prod(kernel)) = {limit}), got rank={rank!r}"
        )
    first, second = _build(leaf, rank)
    if not leaf.weight.is_meta:
        _fill(leaf, first, second, rank)
    pair = Factorized(first, second)
    pair.train(leaf.training)
    return pair


def _build(leaf: Leaf, r: int) -> tuple[Leaf, Leaf]:
    dev, dt = leaf.weight.device, leaf.weight.dtype
    has_bias = leaf.bias is not None
    if isinstance(leaf, nn.Linear):
        return (
            nn.Linear(leaf.in_features, r, bias=False, device=dev, dtype=dt),
            nn.Linear(r, leaf.out_features, bias=has_bias, device=dev, dtype=dt),
        )
    conv: Any = type(leaf)  # Conv1d or Conv2d: same constructor, per-dim tuple types
    first = conv(
        leaf.in_channels, r, leaf.kernel_size, stride=leaf.stride, padding=leaf.padding,
        dilation=leaf.dilation, groups=1, bias=False, padding_mode=leaf.padding_mode,
        device=dev, dtype=dt,
    )
    second = conv(r, leaf.out_channels, 1, bias=has_bias, device=dev, dtype=dt)
    return first, second


def _fill(leaf: Leaf, first: Leaf, second: Leaf, r: int) -> None:
    w = leaf.weight.detach()
    mat = w.reshape(w.shape[0], -1).to(torch.float64)
    u, s, vh = torch.linalg.svd(mat, full_matrices=False)
    root = s[:r].sqrt()
    a = (root[:, None] * vh[:r]).to(w.dtype)        # (r, in_flat)
    b = (u[:, :r] * root[None, :]).to(w.dtype)      # (out, r)
    with torch.no_grad():
        first.weight.copy_(a.reshape(first.weight.shape))
        second.weight.copy_(b.reshape(second.weight.shape))
        if second.bias is not None and leaf.bias is not None:
            second.bias.copy_(leaf.bias.detach())
