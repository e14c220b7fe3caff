"""The declarative search space: which choices each layer may take (``search_spaces/*.yaml``).

A file lists ``rules``; each rule selects layers and lists the allowed choices::

    format: autocompress.search_space
    version: 1
    exclude: ["re:.*downsample.*"]          # never compressed
    tie: [["re:.*\\.q_proj", "re:.*\\.k_proj"]]   # these layers share one choice
    rules:
      - layers: ["@first", "@last"]        # first / last compressible layer (model order)
        weight_bits: [8, 16]
      - layers: default
        weight_bits: [4, 8]
        act_bits: [8, 32]
        sparsity: {low: 0.0, high: 0.75, step: 0.25}   # or a list [0.0, 0.5]
        patterns: [unstructured, channel, "2:4"]
        channel_ratios: [0.0, 0.25, 0.5]   # for "channel"; default: the sparsity list
        rank_ratios: [null, 0.5]           # null = dense
    distill: {temperature: [1, 8], alpha: [0.0, 0.9]}

Which rule a layer gets (the policy's rule, so both read alike): a rule naming it exactly
(or by ``@first`` / ``@last``), first in file order; else the first rule with a ``re:``
selector that *fully* matches its path; else the ``default`` rule; else the layer is not
searched (left uncompressed). Sampling is in :mod:`autocompress.search._bound`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autocompress import fields as f
from autocompress import files
from autocompress.errors import ConfigError
from autocompress.search import _selectors as selector
from autocompress.search._rules import DistillSpace, Rule, parse_distill, parse_rule

if TYPE_CHECKING:
    from optuna.trial import BaseTrial

    from autocompress.graph import LayerInfo
    from autocompress.policy import Policy
    from autocompress.search._bound import BoundSpace, GroupLike

FORMAT = "autocompress.search_space"
VERSION = 1
_TOP = ("format", "version", "description", "rules", "exclude", "tie", "distill")

__all__ = ["FORMAT", "VERSION", "DistillSpace", "Rule", "SearchSpace", "load_space"]


@dataclass(frozen=True)
class SearchSpace:
    """Rules, ties, exclusions and the distillation ranges of one search space.

    Example::

        space = SearchSpace.load("search_spaces/joint.yaml")
        policy = space.sample(trial, layers(model, x), channel_groups(model, x))
        space.sample(FixedTrial(trial.params), ...)  # == policy: export replays it
    """

    rules: tuple[Rule, ...] = ()
    exclude: tuple[str, ...] = ()
    tie: tuple[tuple[str, ...], ...] = ()
    distill: DistillSpace | None = None
    description: str = ""
    source: str = field(default="search space", compare=False)

    def rule_for(self, name: str, names: Sequence[str]) -> Rule | None:
        """The rule that decides layer ``name`` among the model's ``names`` (see module doc)."""
        for r in self.rules:
            if any(selector.is_exact(s) and selector.matches(s, name, names) for s in r.layers):
                return r
        for r in self.rules:
            if any(s.startswith("re:") and selector.matches(s, name, names) for s in r.layers):
                return r
        return next((r for r in self.rules if r.is_default), None)

    def is_excluded(self, name: str, names: Sequence[str]) -> bool:
        return any(selector.matches(s, name, names) for s in self.exclude)

    def bind(
        self, layers: Sequence[str] | Sequence[LayerInfo], groups: Sequence[GroupLike] = ()
    ) -> BoundSpace:
        """Resolve the rules for one model: the per-layer choice lists, ties and channel groups.

        ``layers`` are names, or :class:`LayerInfo` (then choices the layer cannot take are
        dropped: N:M where the input size is not a multiple of M, low rank on grouped convs).
        """
        from autocompress.search._bound import bind

        return bind(self, layers, groups)

    def sample(
        self,
        trial: BaseTrial,
        layers: Sequence[str] | Sequence[LayerInfo],
        groups: Sequence[GroupLike] = (),
    ) -> Policy:
        """A policy drawn through ``trial.suggest_*`` only (replayable with ``FixedTrial``)."""
        return self.bind(layers, groups).sample(trial)

    # ---- plain data -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        if self.description:
            d["description"] = self.description
        if self.exclude:
            d["exclude"] = list(self.exclude)
        if self.tie:
            d["tie"] = [list(t) for t in self.tie]
        d["rules"] = [r.to_dict() for r in self.rules]
        if self.distill is not None:
            d["distill"] = self.distill.to_dict()
        return d

    @classmethod
    def from_dict(cls, raw: Any, source: str = "search space") -> SearchSpace:
        raw = f.mapping(raw, source)
        f.check_keys(raw, _TOP, source)
        if raw.get("format", FORMAT) != FORMAT:
            raise ConfigError(f"{source}: format must be {FORMAT!r}, got {raw['format']!r}")
        if raw.get("version", VERSION) != VERSION:
            raise ConfigError(f"{source}: version must be {VERSION}, got {raw['version']!r}")
        rules_raw = f.as_list(raw.get("rules"), f.join(source, "rules"), allow_scalar=False)
        rules = tuple(
            parse_rule(r, f.join(f.join(source, "rules"), i)) for i, r in enumerate(rules_raw)
        )
        if sum(r.is_default for r in rules) > 1:
            raise ConfigError(f"{source}: rules: only one rule may say `layers: default`")
        exclude = _selectors(raw.get("exclude"), f.join(source, "exclude"))
        tie_raw = raw.get("tie") or []
        tie_where = f.join(source, "tie")
        tie = tuple(
            _selectors(t, f.join(tie_where, i))
            for i, t in enumerate(
                f.as_list(tie_raw, tie_where, allow_scalar=False) if tie_raw else []
            )
        )
        distill = None
        if raw.get("distill") is not None:
            distill = parse_distill(raw["distill"], f.join(source, "distill"))
        desc = raw.get("description") or ""
        if not isinstance(desc, str):
            raise ConfigError(f"{source}: description must be a string, got {desc!r}")
        return cls(rules, exclude, tie, distill, desc, source)

    @classmethod
    def from_yaml(cls, text: str, source: str = "search space") -> SearchSpace:
        return cls.from_dict(files.load_yaml(text, source), source)

    @classmethod
    def load(cls, path: str | Path) -> SearchSpace:
        return cls.from_dict(files.read_yaml(path, "search space"), str(path))


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a ``search_spaces/*.yaml`` file."""
    return SearchSpace.load(path)


def _selectors(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = f.as_list(raw, where)
    return tuple(selector.parse(s, f.join(where, i)) for i, s in enumerate(items))
