"""Warm start: a per-layer sensitivity pass, then allocations at several size budgets.

1. Sensitivity (HAWQ / AIMET style): compress one unit (a layer, or tied layers) at a time
   to each of its weight-bit and sparsity choices, and measure the validation-metric drop
   with no fine-tune. Cached with the study (``sensitivity.json``).
2. Allocation: assuming drops add up across units, minimise ``sum drop + lam * sum bytes``
   over per-unit choices. That Lagrangian separates by unit, so each ``lam`` is solved
   exactly by a per-unit argmin; sweeping ``lam`` traces the lower convex hull of
   (size, predicted drop). A spread of these allocations is enqueued as the first trials,
   together with the study's uniform ``uniform_bits`` policies.

Sizes come from the exact size model, so each allocation's size is exact, not estimated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import optuna

from autocompress.policy import LayerConfig, Policy, parse_nm
from autocompress.search._bound import Unit
from autocompress.search._context import SearchContext
from autocompress.search._rules import DYNAMIC

CACHE = "sensitivity.json"
MAX_WARM = 8


@dataclass(frozen=True)
class Option:
    weight_bits: int
    sparsity: float | str


def unit_policy(u: Unit, wb: int, sp: float | str) -> Policy:
    """Only this unit compressed (weight-only quantisation, no act quant), with the unit's
    granularity, symmetry and codebook choice, so its size is the size the sampler's choice will have."""
    g, sym, cb = u.granularity, u.symmetric, u.codebook and wb <= 8
    if isinstance(sp, str):
        n, m = parse_nm(sp) or (1, 2)
        cfg = LayerConfig(weight_bits=wb, pattern=sp, sparsity=1 - n / m, granularity=g, symmetric=sym,
                          codebook=cb, nm_groups=u.nm_groups)
    else:
        cfg = LayerConfig(weight_bits=wb, sparsity=float(sp), granularity=g, symmetric=sym, codebook=cb)
    return Policy(layers=tuple((n, cfg) for n in u.layers))


def sensitivity(ctx: SearchContext) -> dict[str, dict[str, float]]:
    """Metric drop per unit per single choice ('w4', 's0.5', 's2:4'), no fine-tune; cached."""
    path = ctx.cfg.output_dir / CACHE
    key = json.dumps([[u.layers, u.weight_bits, [str(s) for s in u.sparsity]] for u in ctx.bound.units])
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved["drops"]
    from autocompress.tasks import score

    base = ctx.evaluator.base_metric
    val = ctx.task.data().val
    drops: dict[str, dict[str, float]] = {}
    for u in ctx.bound.units:
        d: dict[str, float] = {}
        for wb in u.weight_bits:
            if wb < 32:
                d[f"w{wb}"] = base - score(ctx.evaluator.build(unit_policy(u, wb, 0.0)), val, ctx.task.metric)
        for sp in u.sparsity:
            if sp not in (0.0, "0.0"):
                d[f"s{sp}"] = base - score(ctx.evaluator.build(unit_policy(u, 32, sp)), val, ctx.task.metric)
        drops[u.layers[0]] = d
    path.write_text(json.dumps({"key": key, "drops": drops}, indent=1))
    return drops


def allocations(ctx: SearchContext, drops: dict[str, dict[str, float]], count: int) -> list[dict[str, Option]]:
    """Up to ``count`` allocations spread over size, each optimal for some lambda.

    Only allocations within the study's ``max_size_kb`` are kept (a larger one would be
    rejected untrained); if none fits, the smallest one is returned.
    """
    identity = ctx.size_of(Policy())
    table: list[list[tuple[float, float, Option]]] = []  # per unit: (drop, delta bytes, option)
    for u in ctx.bound.units:
        d = drops[u.layers[0]]
        rows = []
        for wb, sp in product(u.weight_bits, u.sparsity):
            drop = d.get(f"w{wb}", 0.0) + d.get(f"s{sp}", 0.0)
            delta = ctx.size_of(unit_policy(u, wb, sp)) - identity
            rows.append((max(drop, 0.0), float(delta), Option(wb, sp)))
        table.append(rows)
    seen: dict[tuple, tuple[float, dict[str, Option]]] = {}
    for lam in np.logspace(-9, -2, 60):
        pick = [min(rows, key=lambda r: (r[0] + lam * r[1], r[1])) for rows in table]
        sig = tuple((o.weight_bits, o.sparsity) for _, _, o in pick)
        total = identity + sum(p[1] for p in pick)
        seen.setdefault(sig, (total, {u.layers[0]: p[2] for u, p in zip(ctx.bound.units, pick, strict=True)}))
    ordered = sorted(seen.values(), key=lambda v: v[0])
    limit = ctx.cfg.constraints.max_size_kb
    if limit is not None:
        ordered = [v for v in ordered if v[0] <= limit * 1024.0] or ordered[:1]
    if len(ordered) <= count:
        return [a for _, a in ordered]
    idx = np.unique(np.linspace(0, len(ordered) - 1, count).round().astype(int))
    return [ordered[i][1] for i in idx]


def _act_order(choice: int | str) -> float:
    """``act_bits`` choices by bits: ``"dynamic"`` (8 bits, run-time range) just above static 8."""
    return 8.5 if choice == DYNAMIC else float(choice)


def params_for(ctx: SearchContext, alloc: dict[str, Option], act_low: bool) -> dict[str, Any]:
    """Trial parameters (the space's own names) for one allocation; others left to the sampler."""
    params: dict[str, Any] = {}
    for u in ctx.bound.units:
        o = alloc.get(u.layers[0])
        if o is None:
            continue
        lead = u.layers[0]
        if len(u.weight_bits) > 1:
            params[f"{lead}.weight_bits"] = o.weight_bits
        if len(u.sparsity) > 1:
            params[f"{lead}.sparsity"] = o.sparsity
        if len(u.act_bits) > 1:
            low = min(u.act_bits, key=_act_order)
            params[f"{lead}.act_bits"] = low if act_low and o.weight_bits <= 8 else max(u.act_bits, key=_act_order)
        if len(u.ranks) > 1 and None in u.ranks:
            params[f"{lead}.rank"] = None
    for c in ctx.bound.channels:
        if len(c.ratios) > 1 and 0.0 in c.ratios:
            params[f"{c.producers[0]}.channels"] = 0.0
    return params


def uniform(ctx: SearchContext, bits: int) -> dict[str, Option]:
    return {u.layers[0]: Option(bits if bits in u.weight_bits else max(u.weight_bits),
                                0.0 if 0.0 in u.sparsity else u.sparsity[0])
            for u in ctx.bound.units}


def enqueue_warm_start(ctx: SearchContext, study: optuna.Study) -> int:
    """Enqueue the warm-start trials; returns how many."""
    budget = ctx.cfg.budget.trials or 50
    count = max(1, min(MAX_WARM, budget // 5))
    queued = [params_for(ctx, uniform(ctx, b), act_low=True) for b in ctx.cfg.warm_start.uniform_bits]
    allocs = allocations(ctx, sensitivity(ctx), count)
    for i, a in enumerate(allocs):
        queued.append(params_for(ctx, a, act_low=bool(i % 2)))
    unique = {json.dumps(p, sort_keys=True): p for p in queued}
    for p in unique.values():
        study.enqueue_trial(p, skip_if_exists=True)
    return len(unique)
