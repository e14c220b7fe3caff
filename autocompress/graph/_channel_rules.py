"""How each traced op moves channel segments: the rules behind ``channel_groups``.

Anything not listed here is an unknown op: it blocks every group it touches and its output
is Fixed. See ``_channel_spaces`` for the descriptions (Chan / Fixed / None).
"""

from __future__ import annotations

from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata

from autocompress.graph._channel_spaces import (
    Chan,
    ChannelUse,
    Desc,
    Fixed,
    Role,
    Seg,
    Spaces,
    map_dim,
    op_name,
    shape,
    where,
)

ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
    nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus, nn.Identity, nn.Dropout,
    nn.Dropout1d, nn.Dropout2d,
)  # fmt: skip
POOLS = (
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
)  # fmt: skip
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
UNARY = frozenset(
    "relu relu_ relu6 gelu silu sigmoid sigmoid_ tanh tanh_ hardswish hardsigmoid hardtanh "
    "leaky_relu elu mish softplus dropout dropout1d dropout2d contiguous clone detach float "
    "abs neg clamp clamp_min clamp_max".split()
)
BINARY = frozenset("add sub mul truediv div iadd isub imul itruediv add_ sub_ mul_ div_".split())
POOL_FNS = frozenset(
    f"{k}_pool{d}d" for k in ("max", "avg", "adaptive_avg", "adaptive_max") for d in (1, 2)
)
RESHAPES = frozenset({"flatten", "view", "reshape", "squeeze", "unsqueeze"})
REDUCTIONS = frozenset({"mean", "sum", "amax", "amin"})
CATS = frozenset({"cat", "concat", "concatenate"})


def _only_new_axes(index: object) -> bool:
    """``x[:, :, None, None]``: an index that only adds unit dims (an unsqueeze)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or i == slice(None) for i in items)


class Walker:
    """Walks a shape-propagated GraphModule once, filling ``spaces``."""

    def __init__(self, gm: fx.GraphModule, spaces: Spaces) -> None:
        self.gm, self.spaces = gm, spaces
        self.desc: dict[fx.Node, Desc] = {}
        self.module_space: dict[str, int] = {}
        self.module_input: dict[str, Desc] = {}

    def run(self) -> None:
        for node in self.gm.graph.nodes:
            self.desc[node] = self.visit(node)

    def visit(self, node: fx.Node) -> Desc:
        if node.op == "output":
            for n in self.tensors(node):
                reason = f"model output (node {n.name!r}): returned channels are fixed"
                self.block(self.desc[n], reason)
            return None
        if "tensor_meta" not in node.meta:
            return None  # sizes, ints, None: reading a shape never constrains pruning
        if node.op == "placeholder":
            return Fixed(f"model input {node.name!r}")
        if node.op == "get_attr":
            return Fixed(f"parameter or buffer {node.target!r}")
        mod = self.gm.get_submodule(str(node.target)) if node.op == "call_module" else None
        if not isinstance(node.meta["tensor_meta"], TensorMetadata):
            return self.unknown(node, mod)  # tuple / list outputs (split, chunk, attention)
        if mod is not None:
            return self.module(node, mod)
        return self.function(node)

    # --- helpers -----------------------------------------------------------------------
    def tensors(self, node: fx.Node) -> list[fx.Node]:
        found: list[fx.Node] = []
        fx.node.map_arg((node.args, node.kwargs), found.append)
        return [n for n in found if self.desc.get(n) is not None]

    def block(self, d: Desc, reason: str) -> None:
        if isinstance(d, Chan):
            for s in d.segs:
                self.spaces.block(s.space, reason)

    def unknown(self, node: fx.Node, mod: nn.Module | None = None) -> Fixed:
        reason = where(node, mod)
        for n in self.tensors(node):
            self.block(self.desc[n], reason)
        return Fixed(reason)

    def unify(self, a: tuple[Seg, ...], b: tuple[Seg, ...], node: fx.Node) -> None:
        if [(s.length, s.block) for s in a] != [(s.length, s.block) for s in b]:
            reason = f"{where(node)} combines channels split in different segments"
            self.block(Chan(0, a + b), reason)
            return
        for x, y in zip(a, b, strict=True):
            self.spaces.union(x.space, y.space)

    def record(self, name: str, role: Role, d: Chan) -> None:
        offset = 0
        for s in d.segs:
            self.spaces.use(s.space, ChannelUse(name, role, offset, s.block))
            offset += s.length * s.block

    def match(self, name: str, x: Desc, node: fx.Node) -> None:
        """A module called again must see the same channels (one space per module)."""
        prev = self.module_input.setdefault(name, x)
        if isinstance(prev, Chan) and isinstance(x, Chan):
            self.unify(prev.segs, x.segs, node)
        elif prev != x:
            reason = f"{where(node)}: module {name!r} is called on prunable and fixed inputs"
            self.block(prev, reason)
            self.block(x, reason)

    def produce(self, name: str, length: int, dim: int, blocked: str | None = None) -> Chan:
        if name not in self.module_space:
            self.module_space[name] = self.spaces.new(length, blocked)
            self.spaces.use(self.module_space[name], ChannelUse(name, "out", 0))
        return Chan(dim, (Seg(self.module_space[name], length),))

    def first(self, node: fx.Node) -> tuple[fx.Node, Desc] | None:
        ins = self.tensors(node)
        if len(ins) != 1 or not node.args or node.args[0] is not ins[0]:
            return None
        return ins[0], self.desc[ins[0]]

    # --- modules -----------------------------------------------------------------------
    def module(self, node: fx.Node, mod: nn.Module) -> Desc:
        arg = self.first(node)
        if arg is None:
            return self.unknown(node, mod)
        src, x = arg
        name, nd = str(node.target), len(shape(src))
        flat = isinstance(x, Chan) and all(s.block == 1 for s in x.segs)
        if isinstance(mod, nn.Linear):
            self.consume(node, name, x, dim=nd - 1, ok=isinstance(x, Chan))
            return self.produce(name, mod.out_features, len(shape(node)) - 1)
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            return self.conv(node, mod, x, flat)
        if isinstance(mod, NORMS):
            return self.norm(node, mod, x, nd, flat)
        if isinstance(mod, ACTIVATIONS) or (isinstance(mod, nn.PReLU) and mod.num_parameters == 1):
            return x
        if isinstance(mod, POOLS):
            return self.pool(node, x, nd, flat)
        if isinstance(mod, nn.Flatten):
            return self.reshape(node, src, x)
        return self.unknown(node, mod)

    def consume(self, node: fx.Node, name: str, x: Desc, dim: int, ok: bool) -> None:
        if isinstance(x, Chan) and x.dim != dim:
            self.block(x, f"{where(node)} reads dim {dim} but the channels are dim {x.dim}")
        elif isinstance(x, Chan) and ok:
            self.record(name, "in", x)
        self.match(name, x, node)

    def conv(self, node: fx.Node, mod: nn.Conv1d | nn.Conv2d, x: Desc, flat: bool) -> Desc:
        name, groups = str(node.target), mod.groups
        if groups == 1:
            self.consume(node, name, x, dim=1, ok=flat)
            if isinstance(x, Chan) and not flat:
                self.block(x, f"{where(node)} reads flattened channels")
            return self.produce(name, mod.out_channels, 1)
        if groups == mod.in_channels == mod.out_channels:  # depthwise: out channel c = in c
            if isinstance(x, Chan) and x.dim == 1 and flat:
                self.record(name, "through", x)
                self.match(name, x, node)
                return x
            return self.unknown(node, mod) if isinstance(x, Chan) else x
        reason = f"{where(node, mod)}: grouped conv (groups={groups}) ties channels in groups"
        self.block(x, reason)
        return self.produce(name, mod.out_channels, 1, blocked=reason)

    def norm(self, node: fx.Node, mod: nn.Module, x: Desc, nd: int, flat: bool) -> Desc:
        if not isinstance(x, Chan):
            return x
        if isinstance(mod, nn.LayerNorm):
            ok = len(mod.normalized_shape) == 1 and x.dim == nd - 1
        elif isinstance(mod, nn.GroupNorm):
            ok = x.dim == 1 and mod.num_groups in (1, mod.num_channels)
        else:
            ok = x.dim == 1
        if not (ok and flat):
            return self.unknown(node, mod)
        self.record(str(node.target), "through", x)
        self.match(str(node.target), x, node)
        return x

    def pool(self, node: fx.Node, x: Desc, nd: int, flat: bool) -> Desc:
        if isinstance(x, Chan) and not (x.dim == 1 and nd >= 3 and flat):
            return self.unknown(node)
        return x

    # --- functions and methods ---------------------------------------------------------
    def function(self, node: fx.Node) -> Desc:
        op = op_name(node).lstrip("_")
        arg = self.first(node)
        if op in BINARY:
            return self.broadcast(node, self.tensors(node))
        if op in CATS:
            return self.cat(node)
        if arg is None:
            return self.unknown(node)
        src, x = arg
        if op in UNARY or (op == "getitem" and isinstance(x, Fixed)):
            return x
        if op in RESHAPES or (op == "getitem" and _only_new_axes(node.args[1])):
            return self.reshape(node, src, x)
        if op in REDUCTIONS:
            return self.reduce(node, src, x)
        if op in POOL_FNS:
            flat = isinstance(x, Chan) and all(s.block == 1 for s in x.segs)
            return self.pool(node, x, len(shape(src)), flat)
        return self.unknown(node)

    def broadcast(self, node: fx.Node, ins: list[fx.Node]) -> Desc:
        """Elementwise ops (add, mul, ...) with broadcasting: the channels must coincide."""
        out = shape(node)
        chans = [(n, d) for n in ins if isinstance(d := self.desc[n], Chan)]
        if not chans:
            first = self.desc[ins[0]] if ins else None
            return first if isinstance(first, Fixed) else Fixed(where(node))
        dims = {d.dim + len(out) - len(shape(n)) for n, d in chans}
        if len(dims) > 1:
            return self.unknown(node)
        od, lead = dims.pop(), None
        for n, d in chans:
            if shape(n)[d.dim] != out[od]:
                self.block(d, f"{where(node)} broadcasts these channels")
            elif lead is None:
                lead = d
            else:
                self.unify(lead.segs, d.segs, node)
        if lead is None:
            return Fixed(where(node))
        for n in ins:
            fixed, sh = self.desc[n], shape(n)
            k = od - (len(out) - len(sh))
            if isinstance(fixed, Fixed) and k >= 0 and sh[k] != 1:
                self.block(lead, f"{where(node)} combines these channels with {fixed.reason}")
        return Chan(od, lead.segs)

    def cat(self, node: fx.Node) -> Desc:
        items = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if not isinstance(items, (list, tuple)) or not isinstance(dim, int):
            return self.unknown(node)
        parts = [n for n in items if isinstance(n, fx.Node) and self.desc.get(n) is not None]
        if len(parts) != len(items):
            return self.unknown(node)
        dim %= len(shape(node))
        chans = [d for n in parts if isinstance(d := self.desc[n], Chan)]
        if not any(d.dim == dim for d in chans):
            return self.broadcast(node, parts)  # along another dim: every part, same channels
        if not all(d.dim == dim for d in chans):
            return self.unknown(node)
        segs: list[Seg] = []
        for n in parts:
            d = self.desc[n]
            if isinstance(d, Chan):
                segs.extend(d.segs)
            elif isinstance(d, Fixed):
                reason = f"{where(node)} concatenates them with {d.reason}"
                segs.append(Seg(self.spaces.new(shape(n)[dim], reason), shape(n)[dim]))
        return Chan(dim, tuple(segs))

    def reshape(self, node: fx.Node, src: fx.Node, x: Desc) -> Desc:
        """flatten / view / reshape / (un)squeeze: fine while the channel dim stays whole."""
        if not isinstance(x, Chan):
            return x
        mapped = map_dim(shape(src), shape(node), x.dim)
        if mapped is None:
            return self.unknown(node)
        od, inner = mapped
        sizes = list(node.args[1:])
        if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
            sizes = list(sizes[0])
        literal = sizes[od] if node.target in ("view", "reshape") and len(sizes) > od else None
        if isinstance(literal, int) and literal != -1:
            self.block(x, f"{where(node)} hard-codes the channel size {literal}; use x.shape")
        return Chan(od, tuple(Seg(s.space, s.length, s.block * inner) for s in x.segs))

    def reduce(self, node: fx.Node, src: fx.Node, x: Desc) -> Desc:
        """mean / sum over spatial or token dims keeps the channels; over channels blocks."""
        if not isinstance(x, Chan):
            return x
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keep = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        dims = (dims,) if isinstance(dims, int) else dims
        if not isinstance(dims, (tuple, list)) or not all(isinstance(d, int) for d in dims):
            return self.unknown(node)
        nd = len(shape(src))
        axes = {d % nd for d in dims}
        if x.dim in axes:
            return self.unknown(node)
        od = x.dim if keep else x.dim - sum(1 for a in axes if a < x.dim)
        return Chan(od, x.segs)
