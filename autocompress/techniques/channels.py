"""Structured channel pruning: whole channels removed from coupled groups, physically.

A group (see ``autocompress.graph.channel_groups``) is pruned as one: the channels with the
smallest L2 norm over all its producers' output rows go, and every module holding them is
sliced: producers' rows (+ bias), consumers' input columns (concat offsets and flatten
blocks included), norms' weight / bias / running statistics, depthwise convs' channels and
``groups``; attention heads go whole (a group channel is a head: its rows of q, k, v and its
columns of the output projection), and the attention module's head count follows. The result
is a smaller dense model whose forward runs as before; ratio 0
changes nothing. The same code runs on a ``meta`` copy (importance ties: the first k kept),
so the size model can price a policy without weights.

Example::

    kept = prune_channels(model, x, {"block1.expand": 0.5})   # {"block1.expand": [0, 3, ...]}
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from autocompress.errors import GraphError, PolicyError, nearest
from autocompress.graph import ChannelGroup, ChannelUse, channel_groups, set_heads


def kept_channels(channels: int, ratio: float) -> int:
    """Channels left after pruning ``ratio`` of ``channels`` (never fewer than one)."""
    return max(1, channels - round(ratio * channels))


def prune_channels(
    model: nn.Module,
    example_input: torch.Tensor | tuple[torch.Tensor, ...],
    ratios: Mapping[str, float],
) -> dict[str, list[int]]:
    """Prune ``model`` in place; ``ratios`` maps producer layer names to the pruned fraction.

    Every producer of a group must ask the same ratio (a producer left out asks 0). Returns
    the kept channel indices (sorted) of every group named in ``ratios``, keyed by the
    group's first producer. Raises PolicyError for conflicting ratios, a ratio > 0 on a
    blocked group or on a layer that produces no group, and GraphError when the model
    cannot be traced. Nothing is changed when an error is raised (but an
    ``nn.MultiheadAttention`` is split into its explicit projections first, in place, as
    ``compress`` does, so its heads can be pruned).
    """
    from autocompress.models import split_attention

    split_attention(model)
    groups = channel_groups(model, example_input)
    _check_names(model, groups, ratios)
    kept: dict[str, list[int]] = {}
    drops: dict[tuple[str, str], set[int]] = {}
    for g in groups:
        ratio = _group_ratio(g, ratios)
        if ratio is None:
            continue
        if g.blocked_by is not None:
            if ratio > 0:
                raise PolicyError(
                    f"channel ratio {ratio} on {', '.join(map(repr, g.producers))}: these "
                    f"channels cannot be pruned, blocked by {g.blocked_by}; use ratio 0 or "
                    f"another pattern for these layers"
                )
            continue
        keep = _keep(model, g, kept_channels(g.channels, ratio))
        kept[g.producers[0]] = keep
        if len(keep) < g.channels:
            _add_drops(drops, g, keep)
    for (name, role), drop in drops.items():
        _slice(name, model.get_submodule(name), role, drop)
    pruned_heads = [g for g in groups
                    if g.heads is not None and g.producers[0] in kept and len(kept[g.producers[0]]) < g.channels]
    for g in pruned_heads:
        set_heads(model.get_submodule(g.heads or ""), kept[g.producers[0]])
    if pruned_heads:
        _check_runs(model, example_input, [g.heads or "" for g in pruned_heads])
    return kept


def _check_runs(model: nn.Module, example_input: torch.Tensor | tuple[torch.Tensor, ...], heads: list[str]) -> None:
    """Run the model once after head pruning: an attention forward that hard-codes its width
    fails here, naming the module, not later in a fine-tune."""
    args = example_input if isinstance(example_input, tuple) else (example_input,)
    device = next((p.device for p in model.parameters()), None)
    if device is not None and device.type == "meta":
        args = tuple(a.to("meta") for a in args)
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*args)
    except Exception as e:
        raise GraphError(
            f"after pruning attention heads of {', '.join(map(repr, heads))} the model no longer runs "
            f"({type(e).__name__}: {e}); its forward must size the head reshape from its head count "
            "attribute (or -1), or leave these heads unpruned"
        ) from None
    finally:
        model.train(was)


def _check_names(model: nn.Module, groups: list[ChannelGroup], ratios: Mapping[str, float]) -> None:
    producers = {p for g in groups for p in g.producers}
    member_of = {m: g for g in groups for m in g.members}
    modules = dict(model.named_modules())
    for name, ratio in ratios.items():
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
            raise PolicyError(f"channel ratio of layer {name!r} must be in [0, 1), got {ratio!r}")
        if name not in modules:
            raise PolicyError(f"no layer {name!r} in the model; {nearest(name, producers)}")
        if name in producers or ratio == 0:
            continue
        hint = (
            f"it follows the channels of {', '.join(map(repr, member_of[name].producers))}; "
            f"set the ratio there"
            if name in member_of
            else "its output channels are not tracked"
        )
        raise PolicyError(
            f"channel ratio {ratio} on layer {name!r}, which produces no channel group of its "
            f"own: {hint}"
        )


def _group_ratio(g: ChannelGroup, ratios: Mapping[str, float]) -> float | None:
    """The one ratio the group's producers ask, None when none of them is named."""
    if not any(p in ratios for p in g.producers):
        return None
    values = {p: float(ratios.get(p, 0.0)) for p in g.producers}
    if len(set(values.values())) > 1:
        asked = ", ".join(
            f"{p}={ratios[p]}" if p in ratios else f"{p}=0 (not set)" for p in g.producers
        )
        raise PolicyError(
            f"channel group {g.id} ({g.channels} channels, members {', '.join(g.members)}) is "
            f"pruned as one, but its producers ask different ratios: {asked}; give them all "
            f"the same channel ratio"
        )
    return next(iter(values.values()))


def _keep(model: nn.Module, g: ChannelGroup, k: int) -> list[int]:
    """The k channels with the largest L2 norm over all producers' rows, sorted."""
    if k >= g.channels:
        return list(range(g.channels))
    weights = [model.get_parameter(f"{p}.weight") for p in g.producers]
    if any(w.is_meta for w in weights):
        return list(range(k))
    score = torch.zeros(g.channels, dtype=torch.float64)
    for w in weights:
        score += w.detach().to("cpu", torch.float64).reshape(g.channels, -1).pow(2).sum(1)
    order = torch.sort(score, descending=True, stable=True).indices[:k]
    return sorted(order.tolist())


def _add_drops(drops: dict[tuple[str, str], set[int]], g: ChannelGroup, keep: list[int]) -> None:
    gone = sorted(set(range(g.channels)) - set(keep))
    for u in g.uses:
        entries = drops.setdefault((u.module, u.role), set())
        entries.update(_entries(u, gone))


def _entries(u: ChannelUse, channels: list[int]) -> list[int]:
    return [u.offset + c * u.block + j for c in channels for j in range(u.block)]


def _slice(name: str, mod: nn.Module, role: str, drop: set[int]) -> None:
    if parametrize.is_parametrized(mod):
        raise GraphError(
            f"layer {name!r} already carries parametrizations (masks / fake quant); channel "
            f"pruning must run first, on the plain model"
        )
    size = _axis_size(mod, role)
    keep = [i for i in range(size) if i not in drop]
    n = len(keep)
    if role == "in":
        _take(mod, ("weight",), 1, keep)
        _set_sizes(mod, in_features=n, in_channels=n)
        return
    _take(mod, ("weight", "bias", "running_mean", "running_var"), 0, keep)
    if role == "out":
        _set_sizes(mod, out_features=n, out_channels=n)
    elif isinstance(mod, nn.GroupNorm):
        mod.num_groups = n if mod.num_groups == mod.num_channels else 1
        mod.num_channels = n
    else:  # through: depthwise conv, BatchNorm, LayerNorm
        _set_sizes(mod, in_channels=n, out_channels=n, groups=n, num_features=n)
        if isinstance(mod, nn.LayerNorm):
            mod.normalized_shape = (n,)


def _axis_size(mod: nn.Module, role: str) -> int:
    if isinstance(mod, nn.LayerNorm):
        return int(mod.normalized_shape[0])
    if isinstance(mod, nn.GroupNorm):
        return mod.num_channels
    if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return mod.num_features
    weight = mod.get_parameter("weight")
    return int(weight.shape[1] if role == "in" else weight.shape[0])


def _take(mod: nn.Module, names: tuple[str, ...], dim: int, keep: list[int]) -> None:
    for name in names:
        t = getattr(mod, name, None)
        if not isinstance(t, torch.Tensor):
            continue
        new = t.detach().index_select(dim, torch.tensor(keep, dtype=torch.long, device=t.device))
        if isinstance(t, nn.Parameter):
            setattr(mod, name, nn.Parameter(new, requires_grad=t.requires_grad))
        else:
            setattr(mod, name, new)


def _set_sizes(mod: nn.Module, **sizes: int) -> None:
    """Update the size attributes the module has (in_features, out_channels, groups, ...)."""
    for attr, value in sizes.items():
        if hasattr(mod, attr):
            setattr(mod, attr, value)
