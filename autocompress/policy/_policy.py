"""The policy: an ordered map from layer names / ``re:`` patterns to LayerConfig.

Which entry wins for a layer (documented rule, tested):

1. an entry whose key is exactly the layer's module path;
2. otherwise the first ``re:`` entry, in file order, whose pattern *fully* matches the path;
3. otherwise ``default``;
4. otherwise no compression.

An entry lists only the fields it changes; the others come from ``default`` (then from
:class:`LayerConfig`'s own defaults). Entries never merge with each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autocompress import files
from autocompress.errors import PolicyError, nearest
from autocompress.policy._config import DistillConfig, LayerConfig, make_layer_config
from autocompress.policy._meta import PolicyMeta

FORMAT = "autocompress.policy"
VERSION = 1
_TOP_KEYS = ("format", "version", "default", "layers", "distill", "meta")


@dataclass(frozen=True)
class Policy:
    """Per-layer compression settings plus distillation settings.

    Example::

        policy = Policy.from_dict({
            "default": {"weight_bits": 8},
            "layers": {"fc3": {"weight_bits": 32}, "re:conv.*": {"sparsity": 0.5}},
        })
        policy.save("policy.yaml"); assert Policy.load("policy.yaml") == policy
    """

    layers: tuple[tuple[str, LayerConfig], ...] = ()
    default: LayerConfig | None = None
    distill: DistillConfig = field(default_factory=DistillConfig)
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    # ---- resolution -------------------------------------------------------------
    def resolve(self, names: Iterable[str], *, strict: bool = True,
                lookups: Iterable[str] = ()) -> dict[str, LayerConfig]:
        """The config of every layer in ``names`` (identity configs included).

        ``lookups``: the names among them that are embeddings (``graph.lookup_names``); the
        ``default`` does not apply to those, only entries that name them (exact or ``re:``).

        With ``strict``, an exact key that names no layer, or a ``re:`` pattern that matches
        none, is an error that suggests the nearest layer names.
        """
        names = list(names)
        known = set(names)
        exact = {k: c for k, c in self.layers if not k.startswith("re:")}
        patterns = [(k, re.compile(k[3:]), c) for k, c in self.layers if k.startswith("re:")]
        if strict:
            for k in exact:
                if k not in known:
                    raise PolicyError(f"layers.{k}: no compressible layer {k!r}; {nearest(k, names)}")
            for k, rx, _ in patterns:
                if not any(rx.fullmatch(n) for n in names):
                    raise PolicyError(
                        f"layers.{k}: the pattern matches no compressible layer; {nearest(k[3:], names)}"
                    )
        skip_default = set(lookups)
        out: dict[str, LayerConfig] = {}
        for n in names:
            if n in exact:
                out[n] = exact[n]
                continue
            hit = next((c for _, rx, c in patterns if rx.fullmatch(n)), None)
            fallback = LayerConfig() if n in skip_default else (self.default or LayerConfig())
            out[n] = hit if hit is not None else fallback
        return out

    # ---- plain data -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        base = self.default or LayerConfig()
        d: dict[str, Any] = {"format": FORMAT, "version": VERSION}
        if self.default is not None:
            d["default"] = self.default.to_dict(skip_defaults=True)
        d["layers"] = {k: _diff(c, base) for k, c in self.layers}
        d["distill"] = self.distill.to_dict()
        if self.meta:
            d["meta"] = dict(self.meta)
        return d

    @classmethod
    def from_dict(cls, raw: Any, source: str = "policy") -> Policy:
        if not isinstance(raw, dict):
            raise PolicyError(f"{source}: a policy must be a mapping, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(_TOP_KEYS))
        if unknown:
            raise PolicyError(f"{source}: unknown top-level key(s) {unknown}; allowed: {list(_TOP_KEYS)}")
        fmt = raw.get("format", FORMAT)
        if fmt != FORMAT:
            raise PolicyError(f"{source}: format must be {FORMAT!r}, got {fmt!r}")
        ver = raw.get("version", VERSION)
        if ver != VERSION:
            raise PolicyError(f"{source}: version must be {VERSION}, got {ver!r} (written by a newer autocompress?)")
        default = None
        if raw.get("default") is not None:
            default = make_layer_config(raw["default"], f"{source}: default")
        layers_raw = raw.get("layers") or {}
        if not isinstance(layers_raw, dict):
            raise PolicyError(f"{source}: layers must be a mapping of layer name -> fields")
        layers = []
        for k, v in layers_raw.items():
            if not isinstance(k, str) or not k:
                raise PolicyError(f"{source}: layer keys must be non-empty strings, got {k!r}")
            if k.startswith("re:"):
                try:
                    re.compile(k[3:])
                except re.error as e:
                    raise PolicyError(f"{source}: layers.{k}: invalid regular expression: {e}") from None
            layers.append((k, make_layer_config(v, f"{source}: layers.{k}", default)))
        d_raw = raw.get("distill") or {}
        if not isinstance(d_raw, dict) or set(d_raw) - {"temperature", "alpha"}:
            raise PolicyError(f"{source}: distill must be a mapping with temperature and alpha, got {d_raw!r}")
        try:
            distill = DistillConfig(**d_raw)
        except PolicyError as e:
            raise PolicyError(f"{source}: {e}") from None
        meta = raw.get("meta") or {}
        PolicyMeta.from_dict(meta, source)  # validated here: a bad field fails at load, naming it
        return cls(layers=tuple(layers), default=default, distill=distill, meta=meta)

    # ---- files ------------------------------------------------------------------
    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, source: str = "policy") -> Policy:
        return cls.from_dict(files.load_yaml(text, source), source)

    def save(self, path: str | Path) -> None:
        """Write the policy file atomically (temporary file, then rename)."""
        files.write_text(path, self.to_yaml(), "policy")

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read and validate a policy file (size limit, UTF-8, safe YAML; never runs code)."""
        return cls.from_dict(files.read_yaml(path, "policy"), str(path))

    @property
    def record(self) -> PolicyMeta:
        """``meta`` as a typed record (validated when the policy was made)."""
        return PolicyMeta.from_dict(dict(self.meta))

    def with_meta(self, **meta: Any) -> Policy:
        merged = {**self.meta, **meta}
        PolicyMeta.from_dict(merged)
        return Policy(self.layers, self.default, self.distill, merged)

    def without_meta(self) -> Policy:
        """The same compression settings with no provenance (what an artifact embeds)."""
        return Policy(self.layers, self.default, self.distill)


def _diff(c: LayerConfig, base: LayerConfig) -> dict[str, Any]:
    a, b = c.to_dict(), base.to_dict()
    return {k: v for k, v in a.items() if b[k] != v}
