"""Embedding compression: an ``nn.Embedding``'s table stored as 2..8-bit codes with a scale per
row (``granularity: per_channel``, the default: a row is a channel) or per table, float16, or a
k-means codebook, and decoded on lookup.

Only the weight is compressed: an embedding's rows are looked up, not multiplied, so activation
bits, sparsity, N:M, channels and rank do not apply: set on an embedding's entry they are refused
by name (inherited from the policy's ``default`` they are ignored). A policy's
``default`` does not reach an embedding (``Policy.resolve(..., lookups=...)``): it is compressed
where an entry names it. The deploy form (``techniques.deploy``, kernel ``"lookup"``) keeps the
integer codes (int8 / uint8 in memory) and decodes only the rows it looks up; the ONNX twin does
the same with Gather nodes over int8 codes. ``max_norm`` embeddings (which rescale looked-up rows
in place) are refused.

Example::

    policy = Policy.from_dict({"layers": {"bert.embeddings.word_embeddings": {"weight_bits": 4}}})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch
from torch import nn

from autocompress.errors import PolicyError
from autocompress.policy import LayerConfig

_WEIGHT_ONLY = "an nn.Embedding is compressed by its weight only (its rows are looked up, not multiplied)"


_NOT_FOR_LOOKUPS = ("act_bits", "act_dynamic", "sparsity", "pattern", "rank", "nm_groups")


def embedding_configs(model: nn.Module, configs: Mapping[str, LayerConfig],
                      default: LayerConfig | None) -> dict[str, LayerConfig]:
    """The embeddings' configs as they apply: fields that do not apply to a lookup and that an
    entry only inherited from the policy's ``default`` (same value) are reset; one the entry
    sets otherwise is refused, naming the layer and the field."""
    base, plain = default or LayerConfig(), LayerConfig()
    out = {}
    for name, cfg in configs.items():
        reset = {f: getattr(plain, f) for f in _NOT_FOR_LOOKUPS if getattr(cfg, f) == getattr(base, f)}
        out[name] = replace(cfg, **reset) if reset else cfg
    check_embedding_configs(model, out)
    return out


def check_embedding_configs(model: nn.Module, configs: Mapping[str, LayerConfig]) -> None:
    """Refuse, naming the layer and field, what an embedding cannot be given."""
    for name, cfg in configs.items():
        where = f"layers.{name}"
        bad = [(f, v) for f, v, ok in (
            ("act_bits", cfg.act_bits, cfg.act_bits == 32),
            ("act_dynamic", cfg.act_dynamic, not cfg.act_dynamic),
            ("sparsity", cfg.sparsity, cfg.sparsity == 0.0),
            ("pattern", cfg.pattern, cfg.pattern == "unstructured"),
            ("rank", cfg.rank, cfg.rank is None),
        ) if not ok]
        if bad:
            f, v = bad[0]
            raise PolicyError(f"{where}: {_WEIGHT_ONLY}: {f} {v!r} does not apply; set weight_bits "
                              "(2..8 with a scale per row, or 16), granularity, symmetric or codebook only")
        if cfg.is_identity:
            continue
        mod = model.get_submodule(name)
        if getattr(mod, "max_norm", None) is not None:
            raise PolicyError(f"{where}: an nn.Embedding with max_norm rescales the rows it looks up in place; "
                              "it cannot ship as stored codes; leave this layer uncompressed")


class Lookup(nn.Module):
    """Rows of integer codes decoded as they are looked up: ``(codes[i] - zp[i]) * scale[i]``."""

    codes: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor | None

    def __init__(self, codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, symmetric: bool) -> None:
        super().__init__()
        rows = codes.shape[0]
        self.per_row = scale.numel() > 1
        zp = zero_point.reshape(-1).float()
        self.register_buffer("codes", codes.round().to(torch.int8 if symmetric else torch.uint8))
        self.register_buffer("scale", scale.reshape(-1).float().expand(rows).clone() if self.per_row
                             else scale.reshape(()).float().clone())
        self.register_buffer("zero_point", None if symmetric else (
            zp.expand(rows).clone() if self.per_row else zp.reshape(()).clone()))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # also what the ONNX twin exports: Gather of codes (and scales), Cast, Sub, Mul
        rows = self.codes[ids].float()
        if self.zero_point is not None:
            rows = rows - (self.zero_point[ids].unsqueeze(-1) if self.per_row else self.zero_point)
        return rows * (self.scale[ids].unsqueeze(-1) if self.per_row else self.scale)
