"""Weight sparsity as a mask: unstructured magnitude pruning and N:M patterns.

The train form keeps the dense weight and multiplies it by a boolean mask through a
``torch.nn.utils.parametrize`` parametrization, so gradients reach the original weight and
pruned entries stay exactly zero through every optimizer step. The deploy form (codec)
reads the mask back with :func:`get_mask` and stores only the kept values.

By default the mask is fixed when attached (one-shot magnitude pruning of the base weights).
A fine-tune may instead prune gradually (:func:`ramp_masks`, ``finetune.prune_schedule:
gradual``; Zhu & Gupta 2017): it starts from a denser mask of the same kind (N':M with
N' > N, or a lower unstructured sparsity) and tightens it along a cubic ramp, re-ranking
the current weights by magnitude at each update, so the network adapts while weights go.
At the ramp's end the mask is exactly the one the layer's config asks for, so its size and
format never depend on the schedule.

An N:M group is ``M`` consecutive inputs of a row by default; with ``nm_groups: scattered``
it is ``M`` inputs taken in the row's golden-ratio order (:func:`nm_order`), so each group
spans the whole row. The order is a fixed function of the row length: nothing is stored.

Masks are deterministic: ranking is by ``|w|`` with ties broken by flat index (lower index
is pruned first, kept first within an N:M group), so the same weights always give the same
mask. On ``meta`` tensors a mask of the right shape and dtype is returned (no values exist).

Example::

    attach_mask(model.fc1, LayerConfig(sparsity=0.5), name="fc1")
    model.fc1.weight  # dense weight * mask, half of it exactly zero
"""

from __future__ import annotations

import functools
import math
from typing import Literal, cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from autocompress.errors import PolicyError
from autocompress.graph import kind_of
from autocompress.policy import LayerConfig, NMGroups

MaskKind = Literal["none", "unstructured", "nm"]


class WeightMask(nn.Module):
    """Parametrization ``w -> w * mask`` with a boolean ``mask`` buffer (weight's shape).

    ``config`` is the layer config the final mask follows (N:M or unstructured sparsity), so
    :meth:`ramp` can make a denser mask of the same kind from new weights.
    """

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor, config: LayerConfig | None = None) -> None:
        super().__init__()
        if mask.dtype != torch.bool:
            raise PolicyError(f"WeightMask needs a bool mask, got dtype {mask.dtype}")
        self.register_buffer("mask", mask)
        self.config = config

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask

    @torch.no_grad()
    def ramp(self, w: torch.Tensor, progress: float, start_density: float) -> None:
        """Set the mask for ``progress`` in [0, 1] of a cubic ramp from ``start_density`` times
        the final kept share (at most all) to the final mask, ranking ``w`` by magnitude.
        ``progress >= 1`` gives exactly the config's own mask."""
        cfg = self.config
        if cfg is None or mask_kind(cfg) == "none":
            return
        left = (1.0 - min(max(progress, 0.0), 1.0)) ** 3
        if cfg.nm is not None:
            n, m = cfg.nm
            n0 = min(m, max(n, math.ceil(start_density * n)))
            kept = round(n + (n0 - n) * left)
            new = torch.ones_like(self.mask) if kept >= m else nm_mask(w, kept, m, groups=cfg.nm_groups)
        else:
            final = cfg.sparsity
            first = max(0.0, 1.0 - start_density * (1.0 - final))
            new = magnitude_mask(w, final + (first - final) * left)
        self.mask.copy_(new)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.mask.shape)}"


def pruned_count(numel: int, sparsity: float) -> int:
    """How many weights an unstructured mask of ``sparsity`` zeroes: ``round(sparsity * numel)``.

    The size model and the codec use this too, so stored and predicted counts agree.
    """
    return round(sparsity * numel)


def magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Bool mask (w's shape) zeroing exactly ``round(sparsity * numel)`` smallest ``|w|``.

    Ties are broken by flat index (the lower index is pruned first).
    """
    if isinstance(sparsity, bool) or not (0.0 <= sparsity < 1.0):
        raise PolicyError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    k = pruned_count(w.numel(), sparsity)
    if w.is_meta:
        return torch.empty(w.shape, dtype=torch.bool, device=w.device)
    flat = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
    if k > 0:
        order = torch.sort(w.detach().abs().flatten(), stable=True).indices
        flat[order[:k]] = False
    return flat.view(w.shape)


@functools.lru_cache(maxsize=64)
def nm_order(row_len: int, groups: NMGroups = "contiguous") -> torch.Tensor | None:
    """The input positions of a row in N:M group order (group ``g`` = entries ``g*M .. g*M+M-1``),
    or None for ``"contiguous"`` (the identity).

    ``"scattered"``: position ``i`` of the order is input ``(i * a) mod row_len``, with ``a``
    the first integer from ``row_len * 0.618...`` (the golden ratio's fraction) up that is
    coprime to ``row_len``: a permutation whose consecutive entries land far apart and evenly
    over the row (Weyl / Fibonacci hashing), so any M of them sample the whole row. Cached;
    callers must not modify it.
    """
    if groups == "contiguous":
        return None
    if groups != "scattered":
        raise PolicyError(f"nm_groups must be 'contiguous' or 'scattered', got {groups!r}")
    a = max(1, round(row_len * (math.sqrt(5.0) - 1.0) / 2.0))
    while math.gcd(a, row_len) != 1:
        a += 1
    return (torch.arange(row_len, dtype=torch.int64) * a) % row_len


def to_group_order(t: torch.Tensor, groups: NMGroups) -> torch.Tensor:
    """``t`` (a weight or mask) as ``(rows, row_len)`` with each row in N:M group order."""
    rows = t.shape[0]
    flat = t.reshape(rows, -1)
    order = nm_order(flat.shape[1], groups)
    return flat if order is None else flat[:, order]


def from_group_order(t: torch.Tensor, shape: tuple[int, ...] | torch.Size, groups: NMGroups) -> torch.Tensor:
    """Inverse of :func:`to_group_order`: back to input order and to ``shape``."""
    order = nm_order(t.shape[1], groups)
    if order is None:
        return t.reshape(shape)
    out = torch.empty_like(t)
    out[:, order] = t
    return out.reshape(shape)


def nm_mask(
    w: torch.Tensor, n: int, m: int, *, layer: str = "<weight>", groups: NMGroups = "contiguous"
) -> torch.Tensor:
    """Bool mask keeping the ``n`` largest ``|w|`` of every group of ``m`` input weights.

    Groups run along the flattened input dim: ``w`` is viewed as ``(out, in * prod(kernel))``
    and each row, in ``groups`` order (:func:`nm_order`), is cut into consecutive groups of
    ``m``; the row length must divide by ``m``. Within a group, ties keep the one earlier in
    group order.
    """
    if not (0 < n < m):
        raise PolicyError(f"N:M on layer {layer!r}: needs 0 < N < M, got N={n}, M={m}")
    if w.dim() < 2:
        raise PolicyError(
            f"N:M on layer {layer!r}: needs a weight with an input dim, got shape {tuple(w.shape)}"
        )
    rows = w.shape[0]
    row_len = w.numel() // rows if rows else 0
    if row_len % m != 0:
        raise PolicyError(
            f"N:M on layer {layer!r}: input size {row_len} is not divisible by M={m} "
            f"(weight shape {tuple(w.shape)}); use another pattern or M for this layer"
        )
    if w.is_meta:
        return torch.empty(w.shape, dtype=torch.bool, device=w.device)
    cut = to_group_order(w.detach().abs(), groups).reshape(rows, row_len // m, m)
    keep = torch.sort(cut, dim=-1, descending=True, stable=True).indices[..., :n]
    mask = torch.zeros(cut.shape, dtype=torch.bool, device=w.device)
    mask.scatter_(-1, keep, True)
    return from_group_order(mask.reshape(rows, row_len), w.shape, groups)


def nm_of(cfg: LayerConfig) -> tuple[int, int]:
    """(N, M) of an N:M config; for code paths that :func:`mask_kind` sent to ``"nm"``."""
    nm = cfg.nm
    if nm is None:
        raise PolicyError(f"pattern {cfg.pattern!r} is not N:M (e.g. '2:4')")
    return nm


def mask_kind(cfg: LayerConfig) -> MaskKind:
    """Which mask a config asks for; the one rule shared by masks, codec and size model.

    An N:M pattern always gives an N:M mask (its sparsity is 1 - N/M by definition);
    ``"unstructured"`` gives a magnitude mask when sparsity > 0; ``"channel"`` gives none
    (channels are removed physically by channel pruning).
    """
    if cfg.nm is not None:
        return "nm"
    if cfg.pattern == "unstructured" and cfg.sparsity > 0.0:
        return "unstructured"
    return "none"


def attach_mask(leaf: nn.Module, cfg: LayerConfig, *, name: str | None = None) -> None:
    """Register a :class:`WeightMask` on ``leaf.weight`` as ``cfg`` asks (no-op if none).

    Must run before weight quantisation, so the mask is the first parametrization and the
    quantiser sees the masked weight. ``name`` (the layer's path) is used in error messages.
    """
    where = name or type(leaf).__name__
    kind = mask_kind(cfg)
    if kind == "none":
        return
    if kind_of(leaf) is None:
        raise PolicyError(
            f"sparsity on layer {where!r}: only nn.Linear, nn.Conv1d and nn.Conv2d can be "
            f"masked, got {type(leaf).__name__}"
        )
    if parametrize.is_parametrized(leaf, "weight"):
        raise PolicyError(
            f"sparsity on layer {where!r}: its weight is already parametrized "
            f"({_param_names(leaf)}); attach the mask first, before quantisation"
        )
    with torch.no_grad():
        w = cast(torch.Tensor, leaf.weight)
        if kind == "nm":
            n, m = cfg.nm  # type: ignore[misc]  # kind == "nm" implies nm is set
            mask = nm_mask(w, n, m, layer=where, groups=cfg.nm_groups)
        else:
            mask = magnitude_mask(w, cfg.sparsity)
    parametrize.register_parametrization(leaf, "weight", WeightMask(mask, cfg))


def get_mask(leaf: nn.Module) -> torch.Tensor | None:
    """The bool mask attached to ``leaf.weight`` by :func:`attach_mask`, or None."""
    if not parametrize.is_parametrized(leaf, "weight"):
        return None
    for p in _plist(leaf):
        if isinstance(p, WeightMask):
            return p.mask
    return None


def masks_with_weights(model: nn.Module) -> list[tuple[WeightMask, torch.Tensor]]:
    """Every :class:`WeightMask` in ``model`` with the dense weight it masks."""
    out = []
    for leaf in model.modules():
        if parametrize.is_parametrized(leaf, "weight"):
            plist = _plist(leaf)
            out += [(p, plist.original) for p in plist if isinstance(p, WeightMask)]
    return out


def ramp_masks(model: nn.Module, progress: float, start_density: float) -> None:
    """Move every mask of ``model`` to ``progress`` of its gradual-pruning ramp (see
    :meth:`WeightMask.ramp`); ``progress >= 1`` leaves each exactly as its config asks."""
    for mask, dense in masks_with_weights(model):
        mask.ramp(dense, progress, start_density)


def _plist(leaf: nn.Module) -> parametrize.ParametrizationList:
    return cast(nn.ModuleDict, leaf.parametrizations)["weight"]  # type: ignore[return-value]


def _param_names(leaf: nn.Module) -> str:
    return ", ".join(type(p).__name__ for p in _plist(leaf))
