"""A search space bound to one model: per-layer choice lists, ties, channel groups; sampling.

Parameter names are stable and readable, so a study can be replayed with ``FixedTrial``:

- ``<layer>.weight_bits``, ``<layer>.act_bits``, ``<layer>.rank`` (null = dense),
- ``<layer>.sparsity``: a float = unstructured level (0.0 = dense) or an ``"N:M"`` string,
- ``<producer>.channels``: the channel ratio of a coupled group, named by its first producer,
- ``distill.temperature``, ``distill.alpha``.

Tied layers use the first tied layer's name. A parameter with a single choice is not
suggested. ``<layer>.sparsity`` is suggested only when a tied layer is not channel-pruned.

What the sampler never produces (each would fail later): channel pruning of a blocked
group or of a group with a producer outside the space; N:M on a layer whose input size is
not a multiple of M; low rank on grouped convs. And two fall-backs, both deterministic:
an N:M choice on a layer that is also factorized, or whose input channels are pruned in
the same trial down to a row length that M no longer divides (or that cannot be worked
out, e.g. bound to names only), becomes unstructured at the same sparsity. When the
pruned row length is still a multiple of M, the N:M choice stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Any, Protocol

from autocompress.errors import ConfigError
from autocompress.policy import DistillConfig, Granularity, LayerConfig, NMGroups, Policy, parse_nm
from autocompress.search import _selectors as selector
from autocompress.search._rules import DYNAMIC, DistillSpace, Rule
from autocompress.techniques.channels import kept_channels

if TYPE_CHECKING:
    from optuna.trial import BaseTrial

    from autocompress.graph import LayerInfo

SparsityChoice = float | str


class GroupLike(Protocol):
    """What sampling needs of ``autocompress.graph.ChannelGroup``."""

    @property
    def producers(self) -> tuple[str, ...]: ...
    @property
    def members(self) -> tuple[str, ...]: ...
    @property
    def blocked_by(self) -> str | None: ...


class SpaceLike(Protocol):
    """What binding needs of a ``SearchSpace`` (a protocol: this module does not import it)."""

    @property
    def rules(self) -> tuple[Rule, ...]: ...
    @property
    def tie(self) -> tuple[tuple[str, ...], ...]: ...
    @property
    def distill(self) -> DistillSpace | None: ...
    @property
    def source(self) -> str: ...
    def rule_for(self, name: str, names: Sequence[str]) -> Rule | None: ...
    def is_excluded(self, name: str, names: Sequence[str]) -> bool: ...


@dataclass(frozen=True)
class Row:
    """A layer's input axis (in_features / in_channels) and its weight row length."""

    in_axis: int
    row_len: int


@dataclass(frozen=True)
class Unit:
    """One set of choices, shared by ``layers`` (several when tied); named by ``layers[0]``."""

    layers: tuple[str, ...]
    weight_bits: tuple[int, ...]
    act_bits: tuple[int | str, ...]  # ints and "dynamic" (Linear layers only, see _unit)
    sparsity: tuple[SparsityChoice, ...]
    ranks: tuple[float | None, ...]
    granularity: Granularity
    symmetric: bool
    rows: tuple[Row | None, ...] = ()  # per layer; None (or empty) = unknown
    codebook: bool = False  # k-means tables for the choices of 2..8 bits
    nm_groups: NMGroups = "contiguous"  # how its N:M choices cut groups


@dataclass(frozen=True)
class ChannelChoice:
    """The channel ratio of one prunable group, shared by all its producers."""

    producers: tuple[str, ...]
    inputs_shrunk: tuple[str, ...]  # other compressible members: their input loses channels
    ratios: tuple[float, ...]
    channels: int = 0  # the group's channel count (0 = unknown)
    blocks: tuple[int | None, ...] = ()  # per shrunk member: input entries per channel


@dataclass(frozen=True)
class BoundSpace:
    layers: tuple[str, ...]
    units: tuple[Unit, ...]
    channels: tuple[ChannelChoice, ...]
    distill: DistillSpace | None

    def param_names(self) -> list[str]:
        """Every parameter ``sample`` may suggest (some only conditionally)."""
        out = [f"distill.{k}" for k, (lo, hi) in _distill_items(self.distill) if lo < hi]
        out += [f"{c.producers[0]}.channels" for c in self.channels if len(c.ratios) > 1]
        for u in self.units:
            for key, ch in (
                ("weight_bits", u.weight_bits),
                ("act_bits", u.act_bits),
                ("rank", u.ranks),
                ("sparsity", u.sparsity),
            ):
                if len(ch) > 1:
                    out.append(f"{u.layers[0]}.{key}")
        return out

    def sample(self, trial: BaseTrial) -> Policy:
        """Draw one policy; only ``trial.suggest_*`` is called, in a fixed order."""
        dist = {
            k: _float(trial, f"distill.{k}", lo, hi) for k, (lo, hi) in _distill_items(self.distill)
        }
        ratio: dict[str, float] = {}
        lost: dict[str, int | None] = {}  # input entries a member loses (None = unknown)
        for c in self.channels:
            r = float(_pick(trial, f"{c.producers[0]}.channels", c.ratios))
            for p in c.producers:
                ratio[p] = r
            if r > 0:
                for m, block in zip(c.inputs_shrunk, c.blocks or (None,) * len(c.inputs_shrunk), strict=True):
                    before = lost.get(m, 0)
                    gone = None if block is None or not c.channels else (
                        (c.channels - kept_channels(c.channels, r)) * block)
                    lost[m] = None if before is None or gone is None else before + gone
        configs = {n: LayerConfig() for n in self.layers}
        for u in self.units:
            lead = u.layers[0]
            wb = _pick(trial, f"{lead}.weight_bits", u.weight_bits)
            ab, dynamic = act_choice(_pick(trial, f"{lead}.act_bits", u.act_bits), wb, u.codebook)
            rank = _pick(trial, f"{lead}.rank", u.ranks)
            needs_sparsity = any(ratio.get(n, 0.0) == 0.0 for n in u.layers)
            sp = _pick(trial, f"{lead}.sparsity", u.sparsity) if needs_sparsity else 0.0
            rows = u.rows or (None,) * len(u.layers)
            for n, row in zip(u.layers, rows, strict=True):
                unsafe = rank is not None or (n in lost and not _nm_fits(row, lost[n], sp))
                sparsity, pattern = _sparsity(ratio.get(n, 0.0), sp, unsafe)
                configs[n] = LayerConfig(
                    weight_bits=wb,
                    act_bits=ab,
                    act_dynamic=dynamic,
                    granularity=u.granularity,
                    symmetric=u.symmetric,
                    sparsity=sparsity,
                    pattern=pattern,
                    rank=rank,
                    codebook=u.codebook and wb <= 8,
                    nm_groups=u.nm_groups if parse_nm(pattern) else "contiguous",
                )
        distill = DistillConfig(**dist) if dist else DistillConfig()
        return Policy(layers=tuple((n, configs[n]) for n in self.layers), distill=distill)


def act_choice(choice: int | str, weight_bits: int, codebook: bool) -> tuple[int, bool]:
    """(act_bits, act_dynamic) of a sampled ``act_bits`` choice: ``"dynamic"`` is 8 bits with a
    run-time range where the weights are integer codes (2..8 bits, no codebook); with float
    weights there is no dynamic int8 kernel, so the activations stay float."""
    if choice != DYNAMIC:
        return int(choice), False
    if weight_bits <= 8 and not codebook:
        return 8, True
    return 32, False


def _sparsity(channel: float, choice: SparsityChoice, nm_unsafe: bool) -> tuple[float, str]:
    if channel > 0:
        return channel, "channel"
    if isinstance(choice, str):
        n, m = parse_nm(choice) or (0, 1)
        return (1.0 - n / m, "unstructured" if nm_unsafe else choice)
    return float(choice), "unstructured"


def _nm_fits(row: Row | None, lost: int | None, choice: SparsityChoice) -> bool:
    """Whether an N:M ``choice`` still divides the row after the input lost ``lost`` entries."""
    nm = parse_nm(choice) if isinstance(choice, str) else None
    if nm is None:
        return True
    if row is None or lost is None or row.row_len % row.in_axis:
        return False
    new_row = (row.in_axis - lost) * (row.row_len // row.in_axis)
    return new_row >= nm[1] and new_row % nm[1] == 0


def _pick(trial: BaseTrial, name: str, choices: Sequence[Any]) -> Any:
    if len(choices) == 1:
        return choices[0]
    return trial.suggest_categorical(name, list(choices))


def _float(trial: BaseTrial, name: str, lo: float, hi: float) -> float:
    return lo if lo == hi else float(trial.suggest_float(name, lo, hi))


def _distill_items(d: DistillSpace | None) -> list[tuple[str, tuple[float, float]]]:
    return [] if d is None else [("temperature", d.temperature), ("alpha", d.alpha)]


# ---- binding ---------------------------------------------------------------------------


def bind(
    space: SpaceLike, layers: Sequence[str] | Sequence[LayerInfo], groups: Sequence[GroupLike]
) -> BoundSpace:
    infos = {x.name: x for x in layers if not isinstance(x, str)}
    names = [x if isinstance(x, str) else x.name for x in layers]
    for r in space.rules:
        for s in r.layers:
            if (
                not r.is_default
                and selector.is_exact(s)
                and not s.startswith("@")
                and s not in names
            ):
                raise ConfigError(
                    f"{space.source}: rules: layer {s!r} is not a compressible layer of this model"
                )
    found: dict[str, Rule | None] = {n: space.rule_for(n, names) for n in names if not space.is_excluded(n, names)}
    for n, rule in found.items():  # like a policy's default, the default rule does not reach an embedding
        if rule is not None and rule.is_default and n in infos and infos[n].kind == "embedding":
            found[n] = None
    rules = {n: r for n, r in found.items() if r is not None}
    units = [_unit(ls, rules, infos) for ls in _tie_sets(space, [n for n in names if n in rules])]
    return BoundSpace(tuple(names), tuple(units), _channels(groups, rules, names), space.distill)


def _tie_sets(space: SpaceLike, names: list[str]) -> list[tuple[str, ...]]:
    owner: dict[str, int] = {}
    for i, sels in enumerate(space.tie):
        for n in selector.select(sels, names):
            if n in owner:
                raise ConfigError(
                    f"{space.source}: tie[{i}]: layer {n!r} is already tied by tie[{owner[n]}]; "
                    "a layer may be in one tie group only"
                )
            owner[n] = i
    sets: list[tuple[str, ...]] = []
    seen: set[int] = set()
    for n in names:
        if n not in owner:
            sets.append((n,))
        elif owner[n] not in seen:
            seen.add(owner[n])
            sets.append(tuple(m for m in names if owner.get(m) == owner[n]))
    return sets


def _unit(ls: tuple[str, ...], rules: dict[str, Rule], infos: dict[str, LayerInfo]) -> Unit:
    r = rules[ls[0]]
    sparsity: list[SparsityChoice] = [
        s for s in r.sparsity if s == 0.0 or "unstructured" in r.patterns
    ]
    for p in r.patterns:
        nm = parse_nm(p)
        if nm is not None and all(_nm_ok(infos.get(n), nm[1]) for n in ls):
            sparsity.append(p)
    ranks = r.rank_ratios
    if any(n in infos and infos[n].groups != 1 for n in ls):
        ranks = (None,)
    rows = tuple(_row(infos.get(n)) for n in ls)
    act_bits = r.act_bits
    if any(n in infos and infos[n].kind == "embedding" for n in ls):  # weight bits only (a lookup)
        return Unit(ls, r.weight_bits, (32,), (0.0,), (None,), r.granularity, r.symmetric, rows, r.codebook)
    if DYNAMIC in act_bits and any(n in infos and infos[n].kind != "linear" for n in ls):
        act_bits = tuple(dict.fromkeys(8 if a == DYNAMIC else a for a in act_bits))  # no dynamic conv kernel
    return Unit(
        ls, r.weight_bits, act_bits, tuple(sparsity) or (0.0,), ranks, r.granularity, r.symmetric, rows,
        r.codebook, r.nm_groups,
    )


def _row(info: LayerInfo | None) -> Row | None:
    if info is None or info.groups != 1:
        return None
    return Row(info.in_channels, prod(info.weight_shape[1:]))


def _block(g: GroupLike, member: str) -> int | None:
    """Input entries per group channel of ``member`` (H*W after a flatten), if known."""
    blocks = [u.block for u in getattr(g, "uses", ()) if u.module == member and u.role == "in"]
    return sum(blocks) if blocks else None


def _nm_ok(info: LayerInfo | None, m: int) -> bool:
    if info is None:
        return True
    in_flat = prod(info.weight_shape[1:])
    return in_flat >= m and in_flat % m == 0


def _channels(
    groups: Sequence[GroupLike], rules: dict[str, Rule], names: list[str]
) -> tuple[ChannelChoice, ...]:
    out: list[ChannelChoice] = []
    claimed: set[str] = set()
    for g in groups:
        prods = tuple(sorted(g.producers, key=lambda p: names.index(p) if p in names else -1))
        if (
            g.blocked_by is not None
            or not prods
            or any(p not in rules or p in claimed for p in prods)
        ):
            continue
        levels = [
            x
            for x in rules[prods[0]].channel_levels
            if all(x in rules[p].channel_levels for p in prods)
        ]
        if not any(x > 0 for x in levels):
            continue
        claimed.update(prods)
        shrunk = tuple(m for m in g.members if m in names and m not in prods)
        out.append(ChannelChoice(prods, shrunk, tuple(levels), int(getattr(g, "channels", 0) or 0),
                                 tuple(_block(g, m) for m in shrunk)))
    return tuple(out)
