"""Coupled channel groups for structured pruning (Torch-Pruning's dependency graph, small).

Every tensor in the traced graph carries the list of channel *segments* along its channel
dim (dim 1 for N, C, ... activations, the last dim for Linear features). A segment points
to a channel *space*; spaces that must keep the same channels (a residual add, an SE mul,
a module called twice, a depthwise conv's input and output) are unified (union-find). A
group is one unified space: pruning it slices its producers' output rows, the columns of
every consumer (with concat offsets and flatten blocks) and the norms and depthwise convs
in between. Ops that move or split a channel dim (view, transpose, matmul, attention,
slicing, unknown modules) block the groups they touch; so do model inputs and outputs.
Attention heads (and, in models torch.fx cannot trace such as Hugging Face BERT, FFN neurons)
are groups found from module structure instead (``graph._structural_groups``): a head is one
group channel spanning ``head_dim`` rows of q, k, v and columns of the output projection.

Example::

    for g in channel_groups(model, torch.randn(1, 3, 32, 32)):
        print(g.producers, g.channels, g.blocked_by or "prunable")
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from autocompress.errors import GraphError
from autocompress.graph._channel_rules import Walker
from autocompress.graph._channel_spaces import ChannelUse, Spaces


@dataclass(frozen=True)
class ChannelGroup:
    """Channels that must be pruned together; ``blocked_by`` is None when they can be."""

    id: int
    producers: tuple[str, ...]
    channels: int
    members: tuple[str, ...]
    blocked_by: str | None
    uses: tuple[ChannelUse, ...] = field(default=(), repr=False)
    heads: str | None = None  # attention module whose heads these channels are (one channel = one head)

    @property
    def prunable(self) -> bool:
        return self.blocked_by is None


def channel_groups(
    model: nn.Module, example_input: torch.Tensor | tuple[torch.Tensor, ...]
) -> list[ChannelGroup]:
    """The coupled channel groups of ``model``, in the order of their first producer.

    Only groups with at least one producer (an nn.Linear / nn.Conv1d / nn.Conv2d whose
    output channels they are) are listed. Raises GraphError when torch.fx cannot trace
    the model or the traced graph cannot run on ``example_input``, unless the model's
    transformer blocks give groups of their own (then those alone are listed).
    """
    from autocompress.graph._layers import with_split_attention
    from autocompress.graph._structural_groups import structural_groups

    model = with_split_attention(model)
    try:
        gm = _trace(model)
        args = example_input if isinstance(example_input, tuple) else (example_input,)
        _propagate_shapes(model, gm, args)
        spaces = Spaces()
        Walker(gm, spaces).run()
        found = _collect(model, spaces)
    except GraphError:
        found = []
        extra = structural_groups(model)
        if not extra:
            raise
    else:
        extra = structural_groups(model, ffn=False)
    return _merge(model, found, extra)


def _merge(model: nn.Module, traced: list[ChannelGroup],
           extra: list[tuple[tuple[str, ...], int, tuple[ChannelUse, ...], str]]) -> list[ChannelGroup]:
    """Traced groups plus structural ones; a structural group replaces traced groups that share
    a producer with it (inside attention those are blocked by the head reshape anyway)."""
    if not extra:
        return traced
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    taken = {p for prods, *_ in extra for p in prods}
    rows = [(g.producers, g.channels, g.members, g.blocked_by, g.uses, g.heads)
            for g in traced if not taken & set(g.producers)]
    for prods, channels, uses, heads in extra:
        members = tuple(sorted({u.module for u in uses}, key=order.__getitem__))
        rows.append((prods, channels, members, None, uses, heads or None))
    rows.sort(key=lambda r: order[r[0][0]])
    return [ChannelGroup(i, *r) for i, r in enumerate(rows)]


class _Tracer(fx.Tracer):
    """torch.fx's tracer, keeping split attention whole (like the nn.MultiheadAttention it
    replaces): its forward has data-dependent branches, and its projections' channels are
    tied to the head layout, so they are never channel-pruned."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        from autocompress.models import SplitMultiheadAttention

        return isinstance(m, SplitMultiheadAttention) or super().is_leaf_module(m, module_qualified_name)


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        tracer = _Tracer()
        graph = tracer.trace(model)
        return fx.GraphModule(tracer.root, graph, type(model).__name__)
    except Exception as e:  # any tracing failure means: no channel analysis for this model
        raise GraphError(
            f"channel pruning needs torch.fx symbolic tracing, which failed for "
            f"{type(model).__name__}: {type(e).__name__}: {e}. Exclude channel pruning "
            f"(pattern 'channel') for this model, or make its forward traceable"
        ) from e


def _propagate_shapes(model: nn.Module, gm: fx.GraphModule, args: tuple[torch.Tensor, ...]) -> None:
    """ShapeProp in eval mode without grad, so BatchNorm statistics are left untouched."""
    device = next((p.device for p in model.parameters()), None)
    if device is not None and device.type == "meta":
        args = tuple(a.to("meta") for a in args)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(*args)
    except Exception as e:
        raise GraphError(
            f"running the traced {type(model).__name__} on the example input failed: "
            f"{type(e).__name__}: {e}. Check the example input's shape, or exclude channel "
            f"pruning (pattern 'channel') for this model"
        ) from e
    finally:
        for m, training in modes.items():
            m.training = training


def _collect(model: nn.Module, spaces: Spaces) -> list[ChannelGroup]:
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    roots: dict[int, tuple[set[str], set[ChannelUse]]] = {}
    for s in range(len(spaces.parent)):
        prods, uses = roots.setdefault(spaces.find(s), (set(), set()))
        prods |= spaces.producers.get(s, set())
        uses |= spaces.uses.get(s, set())
    found = []
    for root, (prods, uses) in roots.items():
        if not prods:
            continue
        members = sorted({u.module for u in uses}, key=order.__getitem__)
        found.append(
            (
                tuple(sorted(prods, key=order.__getitem__)),
                spaces.length[root],
                tuple(members),
                spaces.blocked.get(root),
                tuple(sorted(uses, key=lambda u: (order[u.module], u.role, u.offset, u.block))),
            )
        )
    found.sort(key=lambda f: order[f[0][0]])
    return [ChannelGroup(i, *f) for i, f in enumerate(found)]
