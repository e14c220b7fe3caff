"""Random policies for validation and overhead fitting: bits x act bits x channels x rank."""

from __future__ import annotations

import random
from typing import Any

from torch import nn

from autocompress.graph import iter_compressible
from autocompress.policy import Policy

WEIGHT_BITS = (4, 8, 32)
ACT_BITS = (8, 32)
CHANNEL_RATIOS = (0.0, 0.25, 0.5)
RANKS: tuple[float | None, ...] = (None, None, 0.5, 0.25)


def prunable_groups(model: nn.Module, example_input: Any) -> list[tuple[str, ...]]:
    """Producer names of every channel group that may be pruned (empty if tracing fails)."""
    from autocompress.errors import GraphError
    from autocompress.graph import channel_groups

    try:
        groups = channel_groups(model, example_input)
    except GraphError:
        return []
    return [g.producers for g in groups if g.blocked_by is None and g.producers]


def channel_policy(groups: list[tuple[str, ...]], ratio: float) -> Policy:
    """Every prunable group pruned by ``ratio`` (nothing else compressed)."""
    layers = {n: {"pattern": "channel", "sparsity": ratio} for g in groups for n in g}
    return Policy.from_dict({"layers": layers})


def random_policy(model: nn.Module, groups: list[tuple[str, ...]], rng: random.Random) -> Policy:
    """Per layer: weight bits in {4, 8, 32}, act bits in {8, 32} (8-bit ones on a Linear with
    integer weights static or dynamic, ``act_dynamic``), a rank ratio or none;
    per prunable channel group: a ratio in {0, .25, .5} shared by its producers."""
    ratio_of: dict[str, float] = {}
    for g in groups:
        r = rng.choice(CHANNEL_RATIOS)
        ratio_of.update({n: r for n in g})
    layers: dict[str, dict[str, Any]] = {}
    for name, mod in iter_compressible(model):
        if isinstance(mod, nn.Embedding):  # a lookup: weight bits only
            layers[name] = {"weight_bits": rng.choice(WEIGHT_BITS)}
            continue
        entry: dict[str, Any] = {"weight_bits": rng.choice(WEIGHT_BITS), "act_bits": rng.choice(ACT_BITS)}
        if isinstance(mod, nn.Linear) and entry["weight_bits"] <= 8 and entry["act_bits"] == 8:
            entry["act_dynamic"] = rng.random() < 0.5
        if ratio_of.get(name, 0.0) > 0:
            entry.update(pattern="channel", sparsity=ratio_of[name])
        rank = rng.choice(RANKS)
        if rank is not None and getattr(mod, "groups", 1) == 1:
            entry["rank"] = rank
        layers[name] = entry
    return Policy.from_dict({"layers": layers})
