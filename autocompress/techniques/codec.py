"""The exact storage of one weight: packed integer codes, sparse indices, scales.

``encode(w, mask, cfg)`` returns plain tensors (what an artifact ships); ``decode`` rebuilds
the fake-quantised, masked weight of the train form bit for bit (an 8-bit weight bound for
the int8 kernel on a CPU without AVX512-VNNI is the exception: the train form then uses the
kernel's 7-bit re-coding of these codes, ``backends.int8.kernel_codes``); ``storage_nbytes(shape,
cfg)`` is the exact byte count of ``encode`` computed from the shape and config alone, so the
size model needs no weights. Layout:

- values: 2..8-bit codes bit-packed into uint8 as a little-endian bit stream (two 4-bit codes
  per byte, element 0 in the low bits; symmetric codes stored offset by ``2^(b-1)``);
  16 bits -> float16 values; 32 -> float32 values.
- ``scale`` float32 per output channel or per tensor; asymmetric: ``zero_point`` uint8.
  With ``codebook``: the codes index ``codebook``, ``2^b`` float32 values per layer (sorted,
  one of them 0.0; ``techniques.codebook``), and there is no scale or zero point.
- unstructured sparsity (``numel - round(sparsity * numel)`` kept values, row-major order):
  a bitmask (``ceil(numel / 8)`` bytes) or CSR (``crow`` of ``rows + 1``, ``col`` of
  ``kept``, each in the smallest sufficient integer dtype), whichever is smaller (bitmask on
  a tie). N:M (M <= 64): ``nm_rank``, one ``ceil(log2 C(M, N))``-bit number per group of M,
  the rank of its kept positions in the combinatorial number system (``sum_i C(c_i, i + 1)``
  over the sorted in-group positions ``c_0 < c_1 < ...``): the fewest bits that name any
  N-of-M choice (2:4: 3 bits per group, not 4; 2:32: 9, not 10; 4:64: 20, not 24). With
  ``nm_groups: scattered`` the groups are cut from each row in ``sparsify.nm_order``'s fixed
  order (nothing more is stored); the kept values stay in row-major order either way.

Every size above depends only on the shape and the config, never on the values, so the size
model is exact before any training.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch

from autocompress.errors import PolicyError
from autocompress.policy import LayerConfig
from autocompress.techniques.codebook import kmeans_table, nearest
from autocompress.techniques.quantize import code_range, dequantize_weight, quantize_weight
from autocompress.techniques.sparsify import mask_kind, nm_of, nm_order, pruned_count, to_group_order

Layout = Literal["dense", "bitmask", "csr", "nm"]
_INDEX_DTYPES = ((255, torch.uint8), (2**15 - 1, torch.int16), (2**31 - 1, torch.int32))


def index_dtype(max_value: int) -> torch.dtype:
    """The smallest integer dtype holding ``0..max_value`` (uint8, int16, int32, int64)."""
    for top, dt in _INDEX_DTYPES:
        if max_value <= top:
            return dt
    return torch.int64


def _dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    numel = math.prod(shape)
    rows = shape[0]
    return numel, rows, numel // rows if rows else 0


def kept_count(shape: tuple[int, ...], cfg: LayerConfig) -> int:
    """How many weight values are stored."""
    numel = math.prod(shape)
    kind = mask_kind(cfg)
    if kind == "nm":
        n, m = nm_of(cfg)
        _, _, cols = _dims(shape)
        if cols % m:
            raise PolicyError(
                f"N:M pattern {cfg.pattern!r} on a weight of shape {shape}: its input size {cols} is not "
                f"divisible by M={m}; use another pattern or M for this layer"
            )
        return numel // m * n
    if kind == "unstructured":
        return numel - pruned_count(numel, cfg.sparsity)
    return numel


def storage_layout(shape: tuple[int, ...], cfg: LayerConfig) -> Layout:
    """Which sparse layout ``encode`` uses for this shape and config."""
    kind = mask_kind(cfg)
    if kind == "none":
        return "dense"
    if kind == "nm":
        return "nm"
    numel, rows, cols = _dims(shape)
    kept = kept_count(shape, cfg)
    csr = (rows + 1) * index_dtype(kept).itemsize + kept * index_dtype(max(cols - 1, 0)).itemsize
    return "csr" if csr < (numel + 7) // 8 else "bitmask"


def nm_rank_bits(n: int, m: int) -> int:
    """Bits of one N:M group's rank: ``ceil(log2 C(M, N))`` (at least 1)."""
    return max(1, (math.comb(m, n) - 1).bit_length())


@functools.lru_cache(maxsize=64)
def _binomials(m: int, n: int) -> torch.Tensor:
    """``T[c, j] = C(c, j)`` for ``c < m``, ``j <= n`` as int64 (exact for M <= 64); cached,
    never modified by its callers."""
    return torch.tensor([[math.comb(c, j) for j in range(n + 1)] for c in range(m)], dtype=torch.int64)


def nm_ranks(mask: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Rank of every group's kept positions (``mask`` viewed as groups of ``m``; ``n`` kept each)."""
    pos = mask.reshape(-1, m).nonzero()[:, 1].view(-1, n)  # sorted within each group
    table = _binomials(m, n)
    return table[pos, torch.arange(1, n + 1)].sum(dim=1)


def nm_positions(ranks: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Inverse of :func:`nm_ranks`: (groups, n) sorted in-group positions."""
    table = _binomials(m, n)
    rest = ranks.clone()
    out = torch.empty((ranks.numel(), n), dtype=torch.int64)
    for i in range(n - 1, -1, -1):  # greedy: the largest c with C(c, i + 1) <= rest
        col = table[:, i + 1].contiguous()
        c = torch.searchsorted(col, rest, right=True) - 1
        out[:, i] = c
        rest -= col[c]
    return out


def tensor_specs(
    shape: tuple[int, ...], cfg: LayerConfig
) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Name -> (shape, dtype) of every tensor ``encode`` returns for this shape and config."""
    numel, rows, cols = _dims(shape)
    kept = kept_count(shape, cfg)
    bits = cfg.weight_bits
    specs: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
    if bits <= 8 and cfg.codebook:
        specs["codes"] = (((kept * bits + 7) // 8,), torch.uint8)
        specs["codebook"] = ((2**bits,), torch.float32)
    elif bits <= 8:
        nscale = rows if cfg.granularity == "per_channel" else 1
        specs["codes"] = (((kept * bits + 7) // 8,), torch.uint8)
        specs["scale"] = ((nscale,), torch.float32)
        if not cfg.symmetric:
            specs["zero_point"] = ((nscale,), torch.uint8)
    else:
        specs["values"] = ((kept,), torch.float16 if bits == 16 else torch.float32)
    layout = storage_layout(shape, cfg)
    if layout == "bitmask":
        specs["bitmask"] = (((numel + 7) // 8,), torch.uint8)
    elif layout == "csr":
        specs["crow"] = ((rows + 1,), index_dtype(kept))
        specs["col"] = ((kept,), index_dtype(max(cols - 1, 0)))
    elif layout == "nm":
        n, m = nm_of(cfg)
        specs["nm_rank"] = (((numel // m * nm_rank_bits(n, m) + 7) // 8,), torch.uint8)
    return specs


def storage_nbytes(shape: tuple[int, ...], cfg: LayerConfig) -> int:
    """Exact bytes of ``encode(w, mask, cfg)`` for a weight of ``shape``."""
    return sum(math.prod(s) * dt.itemsize for s, dt in tensor_specs(tuple(shape), cfg).values())


def pack_bits(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned integers < 2^bits (bits <= 63) -> uint8 little-endian bit stream of
    ceil(n*bits/8) bytes (value i in bits ``[i*bits, (i+1)*bits)``, least significant first)."""
    n = values.numel()
    if bits > 8:
        b = ((values.reshape(-1, 1).to(torch.int64) >> torch.arange(bits)) & 1).to(torch.uint8)
        flat = torch.zeros((n * bits + 7) // 8 * 8, dtype=torch.uint8)
        flat[: n * bits] = b.reshape(-1)
        return (flat.view(-1, 8).to(torch.int64) << torch.arange(8)).sum(dim=1).to(torch.uint8)
    if bits == 8:
        return values.reshape(-1).to(torch.uint8)
    v = torch.zeros((n + 7) // 8 * 8, dtype=torch.int64)
    v[:n] = values.reshape(-1).to(torch.int64)
    acc = (v.view(-1, 8) << (torch.arange(8) * bits)).sum(dim=1)  # 8 values = `bits` bytes
    out = ((acc[:, None] >> (torch.arange(bits) * 8)) & 255).to(torch.uint8).reshape(-1)
    return out[: (n * bits + 7) // 8].clone()


def unpack_bits(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: ``n`` int64 values."""
    if bits > 8:
        raw = packed.reshape(-1).to(torch.int64)
        b = ((raw[:, None] >> torch.arange(8)) & 1).reshape(-1)[: n * bits].view(n, bits)
        return (b << torch.arange(bits)).sum(dim=1)
    if bits == 8:
        return packed.reshape(-1)[:n].to(torch.int64)
    groups = (n + 7) // 8
    b = torch.zeros(groups * bits, dtype=torch.int64)
    b[: packed.numel()] = packed.reshape(-1).to(torch.int64)
    acc = (b.view(groups, bits) << (torch.arange(bits) * 8)).sum(dim=1)
    return ((acc[:, None] >> (torch.arange(8) * bits)) & (2**bits - 1)).reshape(-1)[:n]


def _check_mask(mask: torch.Tensor | None, shape: tuple[int, ...], cfg: LayerConfig) -> None:
    kind = mask_kind(cfg)
    if kind == "none":
        return
    if mask is None or tuple(mask.shape) != shape or mask.dtype != torch.bool:
        raise PolicyError(
            f"encoding a {kind} sparse weight of shape {shape} needs its bool mask of the same "
            f"shape, got {None if mask is None else (tuple(mask.shape), mask.dtype)}"
        )
    kept, want = int(mask.sum()), kept_count(shape, cfg)
    if kept != want:
        raise PolicyError(
            f"mask keeps {kept} of {math.prod(shape)} weights but sparsity={cfg.sparsity} "
            f"pattern={cfg.pattern!r} means {want}; build the mask with the same config"
        )
    if kind == "nm":
        n, m = nm_of(cfg)
        if not bool((to_group_order(mask, cfg.nm_groups).reshape(-1, m).sum(dim=1) == n).all()):
            raise PolicyError(f"mask is not {cfg.pattern}: some group of {m} keeps != {n}")


def encode(
    w: torch.Tensor, mask: torch.Tensor | None, cfg: LayerConfig
) -> dict[str, torch.Tensor]:
    """Encode the (masked) weight ``w`` as ``cfg`` says; see the module doc for the layout."""
    shape = tuple(w.shape)
    _check_mask(mask, shape, cfg)
    w = w.detach().float()
    layout = storage_layout(shape, cfg)
    if layout != "dense":
        w = w * mask  # type: ignore[operator]
    out: dict[str, torch.Tensor] = {}
    keep = None if layout == "dense" else mask.reshape(-1)  # type: ignore[union-attr]
    bits = cfg.weight_bits
    if bits <= 8 and cfg.codebook:
        table = kmeans_table(w, bits)  # w is masked: the same values the train form's table sees
        flat = nearest(table, w).reshape(-1)
        out["codes"] = pack_bits(flat if keep is None else flat[keep], bits)
        out["codebook"] = table.float().contiguous()
    elif bits <= 8:
        qmin, _ = code_range(bits, cfg.symmetric)
        codes, scale, zp = quantize_weight(w, bits, cfg.granularity == "per_channel", cfg.symmetric)
        flat = (codes.reshape(-1) - qmin).to(torch.int64)  # offset to unsigned
        out["codes"] = pack_bits(flat if keep is None else flat[keep], bits)
        out["scale"] = scale.float().contiguous()
        if not cfg.symmetric:
            out["zero_point"] = zp.to(torch.uint8)
    else:
        dt = torch.float16 if bits == 16 else torch.float32
        flat_w = w.reshape(-1)
        out["values"] = (flat_w if keep is None else flat_w[keep]).to(dt).clone()
    _, rows, cols = _dims(shape)
    if layout == "bitmask":
        out["bitmask"] = pack_bits(keep.to(torch.int64), 1)  # type: ignore[union-attr]
    elif layout == "csr":
        specs = tensor_specs(shape, cfg)
        m2 = mask.reshape(rows, cols)  # type: ignore[union-attr]
        crow = torch.zeros(rows + 1, dtype=torch.int64)
        crow[1:] = m2.sum(dim=1).cumsum(0)
        out["crow"] = crow.to(specs["crow"][1])
        out["col"] = m2.nonzero()[:, 1].to(specs["col"][1])
    elif layout == "nm":
        n, m = nm_of(cfg)
        grouped = to_group_order(mask, cfg.nm_groups)  # type: ignore[arg-type]
        out["nm_rank"] = pack_bits(nm_ranks(grouped, n, m), nm_rank_bits(n, m))
    return out


def kept_positions(
    tensors: dict[str, torch.Tensor], shape: tuple[int, ...], cfg: LayerConfig
) -> torch.Tensor | None:
    """Flat indices of the stored values (row-major), or None for a dense weight."""
    layout = storage_layout(shape, cfg)
    numel, rows, cols = _dims(shape)
    if layout == "dense":
        return None
    if layout == "bitmask":
        return unpack_bits(tensors["bitmask"], 1, numel).nonzero()[:, 0]
    if layout == "csr":
        counts = tensors["crow"].to(torch.int64).diff()
        row = torch.repeat_interleave(torch.arange(rows), counts)
        return row * cols + tensors["col"].to(torch.int64)
    n, m = nm_of(cfg)
    groups = numel // m
    ranks = unpack_bits(tensors["nm_rank"], nm_rank_bits(n, m), groups)
    idx = torch.arange(groups).repeat_interleave(n) * m + nm_positions(ranks, n, m).reshape(-1)
    order = nm_order(cols, cfg.nm_groups)
    if order is None:
        return idx
    row, col = idx // cols, order[idx % cols]  # group order -> input order
    return torch.sort(row * cols + col).values  # row-major, as the values are stored


def decode_codes(
    tensors: dict[str, torch.Tensor], shape: tuple[int, ...], cfg: LayerConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes as float integers of ``shape``, scale, zero point) for 2..8-bit weights.

    Pruned positions get the code of 0.0 (the zero point).
    """
    bits = cfg.weight_bits
    if bits > 8:
        raise PolicyError(f"a {bits}-bit weight has no integer codes (only 2..8 bits)")
    if cfg.codebook:
        raise PolicyError("codebook weights have table indices, not affine codes; use decode()")
    qmin, _ = code_range(bits, cfg.symmetric)
    kept = kept_count(shape, cfg)
    vals = unpack_bits(tensors["codes"], bits, kept).float() + qmin
    scale = tensors["scale"].float()
    zp = tensors["zero_point"].float() if "zero_point" in tensors else torch.zeros_like(scale)
    pos = kept_positions(tensors, shape, cfg)
    if pos is None:
        return vals.reshape(shape), scale, zp
    rows = shape[0]
    zero_code = zp.expand(rows) if zp.numel() == 1 else zp
    full = zero_code.repeat_interleave(math.prod(shape) // rows)
    full[pos] = vals
    return full.reshape(shape), scale, zp


def decode(
    tensors: dict[str, torch.Tensor], shape: tuple[int, ...], cfg: LayerConfig
) -> torch.Tensor:
    """The fp32 weight the train form computes (mask applied, fake-quantised)."""
    shape = tuple(shape)
    if cfg.weight_bits <= 8 and cfg.codebook:
        table = tensors["codebook"].float()
        vals = table[unpack_bits(tensors["codes"], cfg.weight_bits, kept_count(shape, cfg))]
    elif cfg.weight_bits <= 8:
        return dequantize_weight(*decode_codes(tensors, shape, cfg))
    else:
        vals = tensors["values"].float()
    pos = kept_positions(tensors, shape, cfg)
    if pos is None:
        return vals.reshape(shape).clone()
    full = torch.zeros(math.prod(shape), dtype=torch.float32)
    full[pos] = vals
    return full.reshape(shape)
