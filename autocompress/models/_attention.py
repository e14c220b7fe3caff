"""Split torch's packed ``nn.MultiheadAttention`` into four explicit ``nn.Linear`` layers.

``nn.MultiheadAttention`` keeps q/k/v in one packed ``in_proj_weight`` that no per-layer
technique can see. :func:`split_attention` swaps each one, in place, for a
:class:`SplitMultiheadAttention` with ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj``
leaves, computing the same function (same forward signature, masks, dropout, batch layout).

Inside ``nn.TransformerEncoderLayer`` the fused fast path reads ``in_proj_weight`` directly;
the split module exposes ``in_proj_weight = in_proj_bias = None`` and
``_qkv_same_embed_dim = False`` (as torch's own MHA does when q/k/v are separate), so the
layer takes its ordinary path, which calls our forward. ``nn.TransformerEncoder``'s
nested-tensor path is switched off for the same reason.

Example::

    n = split_attention(model)   # model.mha.q_proj is now an nn.Linear
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from autocompress.errors import GraphError


class SplitMultiheadAttention(nn.Module):
    """Multi-head attention with explicit q/k/v/out ``nn.Linear`` projections."""

    in_proj_weight: torch.Tensor | None
    in_proj_bias: torch.Tensor | None

    def __init__(self, embed_dim: int, num_heads: int, *, dropout: float = 0.0,
                 bias: bool = True, batch_first: bool = False,
                 device: torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise GraphError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        kw = {"device": device, "dtype": dtype}
        self.embed_dim = self.kdim = self.vdim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.total_heads = num_heads  # before head pruning (a per-head attn_mask has this many)
        self.kept_heads: tuple[int, ...] | None = None  # original indices of the heads left
        self.dropout = dropout
        self.batch_first = batch_first
        # Attributes torch's transformer layers read to pick their fused fast path.
        self._qkv_same_embed_dim = False
        self.register_parameter("in_proj_weight", None)
        self.register_parameter("in_proj_bias", None)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **kw)

    @classmethod
    def from_mha(cls, mha: nn.MultiheadAttention, name: str = "") -> SplitMultiheadAttention:
        """An equivalent module holding copies of ``mha``'s weights."""
        where = name or type(mha).__name__
        if not mha._qkv_same_embed_dim or mha.in_proj_weight is None:
            raise GraphError(
                f"cannot split attention {where!r}: kdim={mha.kdim}, vdim={mha.vdim} differ from "
                f"embed_dim={mha.embed_dim}; only kdim == vdim == embed_dim is supported"
            )
        if mha.bias_k is not None or mha.add_zero_attn:
            raise GraphError(
                f"cannot split attention {where!r}: add_bias_kv / add_zero_attn are not "
                "supported; build it with add_bias_kv=False, add_zero_attn=False"
            )
        w = mha.in_proj_weight
        has_bias = mha.in_proj_bias is not None
        new = cls(mha.embed_dim, mha.num_heads, dropout=mha.dropout, bias=has_bias,
                  batch_first=mha.batch_first, device=w.device, dtype=w.dtype)
        e = mha.embed_dim
        with torch.no_grad():
            for i, proj in enumerate((new.q_proj, new.k_proj, new.v_proj)):
                proj.weight.copy_(w[i * e : (i + 1) * e])
                if has_bias:
                    proj.bias.copy_(mha.in_proj_bias[i * e : (i + 1) * e])  # type: ignore[index]
            new.out_proj.weight.copy_(mha.out_proj.weight)
            if has_bias:
                new.out_proj.bias.copy_(mha.out_proj.bias)
        new.train(mha.training)
        return new

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Same arguments and results as ``nn.MultiheadAttention.forward``."""
        batched = query.dim() == 3
        if not batched:  # unbatched (L, E): add a batch dim at 0
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if is_causal and attn_mask is None:
            raise RuntimeError(  # torch's own message and type, for the same call
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                "module method `generate_square_subsequent_mask` to create this mask."
            )
        b, tgt, _ = query.shape
        src = key.shape[1]
        q, k, v = (
            p(x).view(b, -1, self.num_heads, self.head_dim).transpose(1, 2)
            for p, x in ((self.q_proj, query), (self.k_proj, key), (self.v_proj, value))
        )
        use_causal = is_causal and key_padding_mask is None and not need_weights
        mask = None if use_causal else self._merge(attn_mask, key_padding_mask, b, tgt, src,
                                                  query.dtype)
        p_drop = self.dropout if self.training else 0.0
        weights: torch.Tensor | None = None
        if need_weights:
            scores = (q * math.sqrt(1.0 / self.head_dim)) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores + mask
            weights = torch.softmax(scores, dim=-1)
            if p_drop > 0.0:
                weights = F.dropout(weights, p=p_drop)
            out = weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop,
                                                 is_causal=use_causal)
        out = self.out_proj(out.transpose(1, 2).reshape(b, tgt, self.num_heads * self.head_dim))
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            return out.squeeze(0), None if weights is None else weights.squeeze(0)
        if not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def prune_heads_to(self, kept: list[int]) -> None:
        """Record that only heads ``kept`` (indices among the current ones) are left; the
        projections are sliced by ``techniques.channels``."""
        current = self.kept_heads or tuple(range(self.total_heads))
        self.kept_heads = tuple(current[i] for i in kept)
        self.num_heads = len(kept)

    def _merge(self, attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None,
               b: int, tgt: int, src: int, dtype: torch.dtype) -> torch.Tensor | None:
        """One additive float mask broadcastable to (batch, heads, tgt, src), or None."""
        mask = None
        if attn_mask is not None:
            m = _as_float(attn_mask, dtype)
            if m.dim() == 2:
                if m.shape != (tgt, src):
                    raise RuntimeError(f"2D attn_mask has shape {tuple(m.shape)}, "
                                       f"expected {(tgt, src)}")
                mask = m.view(1, 1, tgt, src)
            elif m.dim() == 3 and m.shape == (b * self.total_heads, tgt, src):
                mask = m.view(b, self.total_heads, tgt, src)
                if self.kept_heads is not None:  # a mask per original head: the pruned heads' go
                    mask = mask[:, list(self.kept_heads)]
            else:
                raise RuntimeError(f"attn_mask has shape {tuple(m.shape)}, expected {(tgt, src)} "
                                   f"or {(b * self.total_heads, tgt, src)}")
        if key_padding_mask is not None:
            kpm = _as_float(key_padding_mask, dtype).view(b, 1, 1, src)
            mask = kpm if mask is None else mask + kpm
        return mask

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


def _as_float(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Bool masks (True = not allowed) become additive -inf masks, as in torch."""
    if mask.dtype == torch.bool:
        return torch.zeros_like(mask, dtype=dtype).masked_fill_(mask, float("-inf"))
    if not torch.is_floating_point(mask):
        raise RuntimeError(f"only bool and floating attention masks are supported, "
                           f"got {mask.dtype}")
    return mask


def split_attention(model: nn.Module) -> int:
    """Replace every ``nn.MultiheadAttention`` in ``model`` in place; return how many.

    A module reachable under several paths is replaced by one shared split module.
    Raises GraphError naming the module if it cannot be split (kdim/vdim != embed_dim).
    """
    found = [(n, m) for n, m in model.named_modules(remove_duplicate=False)
             if isinstance(m, nn.MultiheadAttention)]
    if isinstance(model, nn.MultiheadAttention):
        raise GraphError("split_attention replaces submodules; wrap the nn.MultiheadAttention "
                         "in a parent module or use SplitMultiheadAttention.from_mha")
    new: dict[int, SplitMultiheadAttention] = {}
    for name, mha in found:  # build all first, so a failure leaves the model unchanged
        if id(mha) not in new:
            new[id(mha)] = SplitMultiheadAttention.from_mha(mha, name)
    for name, mha in found:
        parent_name, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attr, new[id(mha)])
    for mod in model.modules():
        # Its nested-tensor path reads self_attn.in_proj_weight, which no longer exists.
        if isinstance(mod, nn.TransformerEncoder) and any(
            isinstance(getattr(layer, "self_attn", None), SplitMultiheadAttention)
            for layer in mod.layers
        ):
            mod.use_nested_tensor = False
    return len(new)
