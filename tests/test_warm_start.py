"""Warm-start allocations: spread over size, inside the study's size limit."""

from __future__ import annotations

from types import SimpleNamespace

from autocompress.policy import Policy, parse_nm
from autocompress.search._bound import Unit
from autocompress.search._study_parts import Constraints
from autocompress.search._warm_start import allocations, unit_policy

PARAMS = {"a": 1000, "b": 4000}


def _size_of(policy: Policy) -> int:
    """fp32 bytes of unlisted layers; bits x kept for listed ones (a stand-in size model)."""
    cfgs = dict(policy.layers)
    total = 0
    for name, n in PARAMS.items():
        c = cfgs.get(name)
        if c is None:
            total += 4 * n
            continue
        nm = parse_nm(c.pattern)
        kept = n * nm[0] // nm[1] if nm else round(n * (1 - c.sparsity))
        total += kept * c.weight_bits // 8
    return total


def _ctx(max_size_kb: float | None) -> SimpleNamespace:
    units = tuple(Unit((n,), (4, 8, 32), (32,), (0.0, 0.5, "1:4"), (None,), "per_channel", True) for n in PARAMS)
    cfg = SimpleNamespace(constraints=Constraints(max_size_kb=max_size_kb))
    return SimpleNamespace(bound=SimpleNamespace(units=units), size_of=_size_of, cfg=cfg)


def _drops() -> dict[str, dict[str, float]]:
    # 'a' is sensitive, 'b' is not: a good allocation squeezes 'b' first
    return {"a": {"w4": 0.2, "w8": 0.01, "s0.5": 0.3, "s1:4": 0.5},
            "b": {"w4": 0.01, "w8": 0.0, "s0.5": 0.02, "s1:4": 0.05}}


def test_allocations_spread_over_size_and_squeeze_the_insensitive_layer_first() -> None:
    allocs = allocations(_ctx(None), _drops(), 8)  # type: ignore[arg-type]
    assert len(allocs) >= 3
    sizes = [_alloc_size(a) for a in allocs]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    # wherever 'a' is still fp32, 'b' has already been compressed
    assert all(a["b"].weight_bits < 32 for a in allocs if a["a"].weight_bits == 32 and a["a"].sparsity == 0.0)


def _alloc_size(a: dict) -> int:
    cfgs = []
    for u in _ctx(None).bound.units:
        cfgs += list(unit_policy(u, a[u.layers[0]].weight_bits, a[u.layers[0]].sparsity).layers)
    return _size_of(Policy(layers=tuple(cfgs)))


def test_allocations_stay_inside_the_size_limit() -> None:
    free = allocations(_ctx(None), _drops(), 8)  # type: ignore[arg-type]
    limit_kb = 4.0
    fits = allocations(_ctx(limit_kb), _drops(), 8)  # type: ignore[arg-type]
    assert any(_alloc_size(a) > limit_kb * 1024 for a in free)
    assert fits and all(_alloc_size(a) <= limit_kb * 1024 for a in fits)
    assert allocations(_ctx(0.001), _drops(), 8) == [min(free, key=_alloc_size)]  # type: ignore[arg-type]
