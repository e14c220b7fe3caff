"""Weight codec: exact byte counts, bit-exact decode, packing layout, sparse layouts."""

from __future__ import annotations

import math
import random

import pytest
import torch

from autocompress.errors import PolicyError
from autocompress.policy import LayerConfig
from autocompress.techniques.codec import (
    decode,
    encode,
    index_dtype,
    nm_positions,
    nm_rank_bits,
    nm_ranks,
    pack_bits,
    storage_layout,
    storage_nbytes,
    unpack_bits,
)
from autocompress.techniques.quantize import WeightFakeQuant
from autocompress.techniques.sparsify import magnitude_mask, mask_kind, nm_mask


def _nbytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _mask(w: torch.Tensor, cfg: LayerConfig) -> torch.Tensor | None:
    kind = mask_kind(cfg)
    if kind == "nm":
        return nm_mask(w, *cfg.nm, groups=cfg.nm_groups)  # type: ignore[misc]
    return magnitude_mask(w, cfg.sparsity) if kind == "unstructured" else None


def _train_weight(w: torch.Tensor, mask: torch.Tensor | None, cfg: LayerConfig) -> torch.Tensor:
    """What the train form computes: mask, then fake-quant."""
    wm = w if mask is None else w * mask
    if cfg.weight_bits == 32:
        return wm
    return WeightFakeQuant(cfg.weight_bits, cfg.granularity == "per_channel", cfg.symmetric)(wm)


_SHAPES = [(1, 8), (7, 12), (16, 3, 3, 3), (33, 40), (5, 4, 5), (300, 8), (8, 1, 3, 3), (4, 600),
           (6, 2, 49), (3, 128)]


def _grid(n: int) -> list[tuple[tuple[int, ...], LayerConfig]]:
    rng = random.Random(0)
    out = []
    while len(out) < n:
        shape = rng.choice(_SHAPES)
        pattern = rng.choice(["unstructured", "unstructured", "channel", "2:4", "1:8", "3:16",
                              "4:49", "5:64", "31:64"])
        nm = pattern.count(":")
        in_flat = math.prod(shape[1:])
        if nm and in_flat % int(pattern.split(":")[1]):
            continue
        cfg = LayerConfig(
            weight_bits=rng.choice([2, 3, 4, 5, 6, 8, 16, 32]),
            granularity=rng.choice(["per_channel", "per_tensor"]),
            symmetric=rng.random() < 0.5,
            pattern=pattern,
            sparsity=(1 - int(pattern.split(":")[0]) / int(pattern.split(":")[1])) if nm else
            rng.choice([0.0, 0.3, 0.5, 0.9, 0.97]),
            nm_groups="scattered" if nm and rng.random() < 0.5 else "contiguous",
        )
        out.append((shape, cfg))
    return out


@pytest.mark.parametrize("case", range(120))
def test_nbytes_exact_and_decode_bit_exact(case: int) -> None:
    shape, cfg = _grid(120)[case]
    w = torch.randn(shape, generator=torch.Generator().manual_seed(case))
    mask = _mask(w, cfg)
    tensors = encode(w, mask, cfg)
    assert _nbytes(tensors) == storage_nbytes(shape, cfg)
    assert torch.equal(decode(tensors, shape, cfg), _train_weight(w, mask, cfg).detach())


@pytest.mark.parametrize("bits", range(1, 9))
def test_pack_round_trip(bits: int) -> None:
    for n in (0, 1, 7, 8, 9, 63, 1000):
        v = torch.randint(0, 2**bits, (n,))
        packed = pack_bits(v, bits)
        assert packed.dtype == torch.uint8 and packed.numel() == (n * bits + 7) // 8
        assert torch.equal(unpack_bits(packed, bits, n), v)


def test_pack_layout_is_little_endian_bit_stream() -> None:
    assert pack_bits(torch.tensor([0x3, 0xA]), 4).tolist() == [0xA3]  # two 4-bit per byte
    assert pack_bits(torch.tensor([1, 2, 3, 0]), 2).tolist() == [0b00111001]
    # 3 bits: 5 | 6<<3 | 7<<6 -> 0b11110101, then the rest of 7 (1 bit) in the next byte
    assert pack_bits(torch.tensor([5, 6, 7]), 3).tolist() == [0b11110101, 0b1]


def test_dense_4bit_is_an_eighth_of_fp32() -> None:
    shape = (64, 128)
    cfg = LayerConfig(weight_bits=4, granularity="per_channel")
    assert storage_nbytes(shape, cfg) == 64 * 128 // 2 + 64 * 4
    assert storage_nbytes(shape, LayerConfig(weight_bits=16)) == 64 * 128 * 2
    asym = LayerConfig(weight_bits=3, granularity="per_tensor", symmetric=False)
    assert storage_nbytes(shape, asym) == 64 * 128 * 3 // 8 + 4 + 1


def test_sparse_layout_is_the_smaller_one() -> None:
    hi = LayerConfig(sparsity=0.97)
    lo = LayerConfig(sparsity=0.5)
    assert storage_layout((8, 300), hi) == "csr"  # 9 + 72*2 bytes < 300
    assert storage_layout((300, 8), lo) == "bitmask"
    for shape in [(300, 8), (64, 1024), (3, 5)]:
        for cfg in (hi, lo):
            numel = math.prod(shape)
            kept = numel - round(cfg.sparsity * numel)
            csr = (shape[0] + 1) * index_dtype(kept).itemsize + kept * index_dtype(
                numel // shape[0] - 1).itemsize
            idx_bytes = storage_nbytes(shape, cfg) - kept * 4
            assert idx_bytes == min(csr, (numel + 7) // 8)
    wide = LayerConfig(weight_bits=5, sparsity=0.97, symmetric=False)
    w = torch.randn(2, 4000)
    mask = magnitude_mask(w, 0.97)
    tensors = encode(w, mask, wide)
    assert tensors["col"].dtype == torch.int16 and tensors["crow"].dtype == torch.uint8
    assert torch.equal(decode(tensors, (2, 4000), wide), _train_weight(w, mask, wide))
    assert storage_layout((8, 16), LayerConfig(pattern="2:4")) == "nm"
    assert storage_layout((8, 16), LayerConfig(sparsity=0.5, pattern="channel")) == "dense"


def test_index_dtype_is_smallest() -> None:
    assert index_dtype(255) == torch.uint8 and index_dtype(256) == torch.int16
    assert index_dtype(2**15) == torch.int32 and index_dtype(2**31) == torch.int64


def test_nm_groups_store_one_combinatorial_rank() -> None:
    shape = (16, 32)
    cfg = LayerConfig(weight_bits=8, pattern="2:8")
    kept, groups = 16 * 32 // 4, 16 * 32 // 8
    # C(8, 2) = 28 choices -> 5 bits per group (per-index coding would take 2 x 3 = 6)
    assert nm_rank_bits(2, 8) == 5 and nm_rank_bits(2, 4) == 3 and nm_rank_bits(1, 16) == 4
    assert nm_rank_bits(32, 64) == 61 and nm_rank_bits(4, 49) == 18
    assert storage_nbytes(shape, cfg) == kept + 16 * 4 + (groups * 5 + 7) // 8


@pytest.mark.parametrize(("n", "m"), [(1, 2), (2, 4), (3, 7), (4, 49), (32, 64), (63, 64), (1, 64)])
def test_nm_rank_round_trips_every_group(n: int, m: int) -> None:
    g = torch.Generator().manual_seed(n * 100 + m)
    scores = torch.rand(500, m, generator=g)
    mask = torch.zeros(500, m, dtype=torch.bool)
    mask.scatter_(1, scores.topk(n, dim=1).indices, True)
    mask[0] = False
    mask[0, :n] = True  # the lowest rank, 0
    mask[1] = False
    mask[1, m - n:] = True  # the highest rank, C(m, n) - 1
    ranks = nm_ranks(mask, n, m)
    assert int(ranks[0]) == 0 and int(ranks[1]) == math.comb(m, n) - 1
    assert int(ranks.max()) < 2 ** nm_rank_bits(n, m)
    back = unpack_bits(pack_bits(ranks, nm_rank_bits(n, m)), nm_rank_bits(n, m), 500)
    pos = nm_positions(back, n, m)
    rebuilt = torch.zeros(500, m, dtype=torch.bool)
    rebuilt.scatter_(1, pos, True)
    assert torch.equal(rebuilt, mask)


@pytest.mark.parametrize("bits", [9, 18, 33, 63])
def test_wide_pack_round_trips(bits: int) -> None:
    v = torch.randint(0, 2**62, (37,), generator=torch.Generator().manual_seed(bits)) & (2**bits - 1)
    packed = pack_bits(v, bits)
    assert packed.numel() == (37 * bits + 7) // 8
    assert torch.equal(unpack_bits(packed, bits, 37), v)


def test_mask_must_match_config() -> None:
    w = torch.randn(8, 8)
    cfg = LayerConfig(sparsity=0.5)
    with pytest.raises(PolicyError, match="needs its bool mask"):
        encode(w, None, cfg)
    with pytest.raises(PolicyError, match="keeps 48 of 64"):
        encode(w, magnitude_mask(w, 0.25), cfg)
    with pytest.raises(PolicyError, match="is not 2:4"):
        encode(w, magnitude_mask(w, 0.5), LayerConfig(pattern="2:4"))
