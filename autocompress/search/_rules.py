"""One rule of a search space (the allowed choices of the layers it selects), and distill ranges."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from autocompress import fields as f
from autocompress.errors import ConfigError
from autocompress.policy import (
    ACT_BITS,
    GRANULARITIES,
    NM_GROUPS,
    WEIGHT_BITS,
    DistillConfig,
    Granularity,
    NMGroups,
    parse_nm,
)
from autocompress.search import _selectors as selector

DEFAULT = "default"
DYNAMIC = "dynamic"  # an act_bits choice: 8-bit activations, range computed at run time (act_dynamic)
_RULE_KEYS = (
    "layers",
    "weight_bits",
    "act_bits",
    "sparsity",
    "patterns",
    "channel_ratios",
    "rank_ratios",
    "granularity",
    "symmetric",
    "codebook",
    "nm_groups",
)
_MAX_LEVELS = 64


@dataclass(frozen=True)
class Rule:
    """Allowed choices for the layers a rule selects; one-element tuples are fixed, not searched.

    ``sparsity`` levels apply to ``unstructured`` (0.0 = dense, offered whatever the patterns);
    an ``N:M`` pattern implies its own sparsity; ``channel`` uses ``channel_ratios`` (default:
    the sparsity levels), decided once per coupled channel group. ``act_bits`` may hold
    ``"dynamic"``: 8-bit activations whose range each input sets (``act_dynamic``); on a
    convolution (no dynamic kernel) it means static 8 bits, and with float weights (> 8 bits)
    the activations stay float.
    """

    layers: tuple[str, ...]
    weight_bits: tuple[int, ...] = (32,)
    act_bits: tuple[int | str, ...] = (32,)
    sparsity: tuple[float, ...] = (0.0,)
    patterns: tuple[str, ...] = ("unstructured",)
    channel_ratios: tuple[float, ...] | None = None
    rank_ratios: tuple[float | None, ...] = (None,)
    granularity: Granularity = "per_channel"
    symmetric: bool = True
    codebook: bool = False  # fixed per rule, like granularity: k-means tables at 2..8 bits
    nm_groups: NMGroups = "contiguous"  # fixed per rule: how the N:M patterns cut their groups

    @property
    def is_default(self) -> bool:
        return self.layers == (DEFAULT,)

    @property
    def channel_levels(self) -> tuple[float, ...]:
        """Channel ratios this rule allows; () when ``channel`` is not among the patterns."""
        if "channel" not in self.patterns:
            return ()
        return self.channel_ratios if self.channel_ratios is not None else self.sparsity

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"layers": DEFAULT if self.is_default else list(self.layers)}
        d["weight_bits"] = list(self.weight_bits)
        d["act_bits"] = list(self.act_bits)
        d["sparsity"] = list(self.sparsity)
        d["patterns"] = list(self.patterns)
        if self.channel_ratios is not None:
            d["channel_ratios"] = list(self.channel_ratios)
        d["rank_ratios"] = list(self.rank_ratios)
        d["granularity"] = self.granularity
        d["symmetric"] = self.symmetric
        if self.codebook:
            d["codebook"] = True
        if self.nm_groups != "contiguous":
            d["nm_groups"] = self.nm_groups
        return d


def parse_rule(raw: Any, where: str) -> Rule:
    raw = f.mapping(raw, where)
    f.check_keys(raw, _RULE_KEYS, where)
    if "layers" not in raw:
        raise ConfigError(
            f"{where}: missing `layers` (a module path, 're:<regex>', a list, or default)"
        )
    kw: dict[str, Any] = {"layers": _layers(raw["layers"], f.join(where, "layers"))}
    if "weight_bits" in raw:
        kw["weight_bits"] = _ints(raw["weight_bits"], WEIGHT_BITS, f.join(where, "weight_bits"))
    if "act_bits" in raw:
        kw["act_bits"] = _ints(raw["act_bits"], (*ACT_BITS, DYNAMIC), f.join(where, "act_bits"))
    if "sparsity" in raw:
        kw["sparsity"] = _levels(raw["sparsity"], f.join(where, "sparsity"))
    if "patterns" in raw:
        kw["patterns"] = _patterns(raw["patterns"], f.join(where, "patterns"))
    if raw.get("channel_ratios") is not None:
        kw["channel_ratios"] = _levels(raw["channel_ratios"], f.join(where, "channel_ratios"))
    if "rank_ratios" in raw:
        kw["rank_ratios"] = _ranks(raw["rank_ratios"], f.join(where, "rank_ratios"))
    if "granularity" in raw:
        kw["granularity"] = f.one_of(
            raw["granularity"], GRANULARITIES, f.join(where, "granularity")
        )
    if "symmetric" in raw:
        kw["symmetric"] = f.as_bool(raw["symmetric"], f.join(where, "symmetric"))
    if "codebook" in raw:
        kw["codebook"] = f.as_bool(raw["codebook"], f.join(where, "codebook"))
        if kw["codebook"] and not any(b <= 8 for b in kw.get("weight_bits", (32,))):
            raise ConfigError(f"{f.join(where, 'codebook')}: a codebook needs some weight_bits of 2..8 "
                              f"in this rule, got {list(kw.get('weight_bits', (32,)))}")
    if "nm_groups" in raw:
        kw["nm_groups"] = f.one_of(raw["nm_groups"], NM_GROUPS, f.join(where, "nm_groups"))
        if kw["nm_groups"] != "contiguous" and not any(parse_nm(p) for p in kw.get("patterns", ())):
            raise ConfigError(f"{f.join(where, 'nm_groups')}: {kw['nm_groups']!r} applies to N:M patterns, and "
                              f"this rule has none (patterns: {list(kw.get('patterns', ('unstructured',)))}); "
                              "add an N:M pattern such as '2:4' or drop nm_groups")
    return Rule(**kw)


def _layers(raw: Any, where: str) -> tuple[str, ...]:
    if raw == DEFAULT:
        return (DEFAULT,)
    items = f.as_list(raw, where)
    if DEFAULT in items:
        raise ConfigError(f"{where}: `default` must stand alone (layers: default), got {raw!r}")
    return tuple(selector.parse(s, f.join(where, i)) for i, s in enumerate(items))


def _dedupe(values: list[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))


def _ints(raw: Any, allowed: tuple[int | str, ...], where: str) -> tuple[Any, ...]:
    items = f.as_list(raw, where)
    for i, v in enumerate(items):
        f.one_of(v, allowed, f.join(where, i))
    return _dedupe(items)


def _levels(raw: Any, where: str) -> tuple[float, ...]:
    """A list of ratios in [0, 1), or ``{low, high, step}`` (both ends included)."""
    if isinstance(raw, dict):
        f.check_keys(raw, ("low", "high", "step"), where)
        for k in ("low", "high", "step"):
            if k not in raw:
                raise ConfigError(f"{where}: a range needs low, high and step; {k} is missing")
        lo = f.as_float(raw["low"], f.join(where, "low"), 0.0, 1.0)
        hi = f.as_float(raw["high"], f.join(where, "high"), 0.0, 1.0)
        step = f.as_float(raw["step"], f.join(where, "step"), 0.0, 1.0, open_lo=True)
        if not lo <= hi < 1.0:
            raise ConfigError(f"{where}: needs 0 <= low <= high < 1, got low={lo}, high={hi}")
        n = math.floor((hi - lo) / step + 1e-9) + 1
        if n > _MAX_LEVELS:
            raise ConfigError(
                f"{where}: {n} levels is too many to search; use a step >= {(hi - lo) / 63:.3g}"
            )
        return _dedupe([round(lo + i * step, 6) for i in range(n)])
    items = f.as_list(raw, where)
    out = []
    for i, v in enumerate(items):
        x = f.as_float(v, f.join(where, i), 0.0, 1.0)
        if x >= 1.0:
            raise ConfigError(f"{f.join(where, i)}: a ratio must be in [0, 1), got {v!r}")
        out.append(x)
    return _dedupe(out)


def _patterns(raw: Any, where: str) -> tuple[str, ...]:
    items = f.as_list(raw, where)
    for i, p in enumerate(items):
        nm = parse_nm(p) if isinstance(p, str) else None
        ok = p in ("unstructured", "channel") or (nm is not None and 0 < nm[0] < nm[1] <= 64)
        if not ok:
            raise ConfigError(
                f"{f.join(where, i)}: a pattern must be 'unstructured', 'channel' or 'N:M' with "
                f'0 < N < M <= 64 (quote it: "2:4"), got {p!r}'
            )
    return _dedupe(items)


def _ranks(raw: Any, where: str) -> tuple[float | None, ...]:
    items = [None] if raw is None else f.as_list(raw, where)
    out: list[float | None] = []
    for i, v in enumerate(items):
        if v is None:
            out.append(None)
            continue
        x = f.as_float(v, f.join(where, i), 0.0, 1.0, open_lo=True)
        out.append(x)
    return _dedupe(out)


@dataclass(frozen=True)
class DistillSpace:
    """Ranges ``(low, high)`` for the distillation temperature and alpha; low == high is fixed."""

    temperature: tuple[float, float] = (4.0, 4.0)
    alpha: tuple[float, float] = (0.5, 0.5)

    def to_dict(self) -> dict[str, list[float]]:
        return {"temperature": list(self.temperature), "alpha": list(self.alpha)}


def parse_distill(raw: Any, where: str) -> DistillSpace:
    raw = f.mapping(raw, where)
    f.check_keys(raw, ("temperature", "alpha"), where)
    base = DistillConfig()
    t = _range(raw.get("temperature", base.temperature), f.join(where, "temperature"), 0.0, 100.0)
    a = _range(raw.get("alpha", base.alpha), f.join(where, "alpha"), 0.0, 1.0)
    if t[0] <= 0:
        raise ConfigError(f"{f.join(where, 'temperature')}: must be > 0, got {list(t)}")
    return DistillSpace(t, a)


def _range(raw: Any, where: str, lo: float, hi: float) -> tuple[float, float]:
    items = f.as_list(raw, where)
    if len(items) == 1:
        items = items * 2
    if len(items) != 2:
        raise ConfigError(f"{where}: must be a number or [low, high], got {raw!r}")
    a, b = (f.as_float(v, f.join(where, i), lo, hi) for i, v in enumerate(items))
    if a > b:
        raise ConfigError(f"{where}: low must be <= high, got {raw!r}")
    return (a, b)
