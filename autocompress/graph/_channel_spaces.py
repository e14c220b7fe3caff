"""Channel spaces (union-find) and the per-tensor channel descriptions of the walk.

A tensor's description is ``Chan`` (its channel dim and the segments along it), ``Fixed``
(no prunable channels: a model input, a parameter, the output of an op we do not follow;
``reason`` says which) or None (not a tensor: shapes, ints).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from torch import fx, nn

Role = Literal["out", "through", "in"]


@dataclass(frozen=True)
class ChannelUse:
    """How one module holds a group's channels.

    ``role``: "out" = output rows of a producer, "in" = input columns of a consumer,
    "through" = per-channel parameters of a norm or depthwise conv. Channel ``c`` of the
    group owns entries ``offset + c * block ... offset + (c + 1) * block - 1`` along the
    module's axis (``block`` > 1 after a flatten: the H*W positions of a channel).
    """

    module: str
    role: Role
    offset: int
    block: int = 1


class Spaces:
    """Union-find over channel spaces, with the uses and the first blocking reason of each."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.length: list[int] = []
        self.blocked: dict[int, str] = {}
        self.uses: dict[int, set[ChannelUse]] = {}
        self.producers: dict[int, set[str]] = {}

    def new(self, length: int, blocked: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.length.append(length)
        sid = len(self.parent) - 1
        if blocked is not None:
            self.blocked[sid] = blocked
        return sid

    def find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        if ra not in self.blocked and rb in self.blocked:
            self.blocked[ra] = self.blocked[rb]

    def block(self, s: int, reason: str) -> None:
        self.blocked.setdefault(self.find(s), reason)

    def use(self, s: int, u: ChannelUse) -> None:
        self.uses.setdefault(s, set()).add(u)
        if u.role == "out":
            self.producers.setdefault(s, set()).add(u.module)


@dataclass(frozen=True)
class Seg:
    space: int
    length: int
    block: int = 1


@dataclass(frozen=True)
class Chan:
    dim: int
    segs: tuple[Seg, ...]


@dataclass(frozen=True)
class Fixed:
    reason: str


Desc = Chan | Fixed | None


def where(node: fx.Node, mod: nn.Module | None = None) -> str:
    """``"call_method view at node 'view_1' (blocks.0.attn)"``: the op, node and module."""
    stack = node.meta.get("nn_module_stack") or {}
    path = next(reversed(stack.values()))[0] if stack else ""
    if mod is not None:
        op, path = type(mod).__name__, str(node.target)
    else:
        op = op_name(node)
    text = f"{node.op} {op} at node {node.name!r}"
    return f"{text} ({path})" if path else text


def op_name(node: fx.Node) -> str:
    """The method or function name of a node: "view", "add", "relu", ..."""
    t = node.target
    return t if isinstance(t, str) else getattr(t, "__name__", repr(t))


def shape(node: fx.Node) -> tuple[int, ...]:
    return tuple(node.meta["tensor_meta"].shape)


def map_dim(src: tuple[int, ...], dst: tuple[int, ...], d: int) -> tuple[int, int] | None:
    """Where dim ``d`` of ``src`` lands after a reshape to ``dst``: (dim, entries per channel).

    None when the reshape splits the dim or merges it with a non-trivial leading dim.
    """
    channels, inner, outer = src[d], math.prod(src[d + 1 :]), math.prod(src[:d])
    for od in range(len(dst)):
        rest = math.prod(dst[od + 1 :])
        if math.prod(dst[:od]) != outer or rest == 0 or inner % rest:
            continue
        if dst[od] == channels * (inner // rest):
            return od, inner // rest
    return None
