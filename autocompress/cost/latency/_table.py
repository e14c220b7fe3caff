"""The measured table: per-leaf timings and per-model overheads for one fingerprint.

Stored as JSON in the cache (``latency/table-<fingerprint>.json``). A leaf is keyed by
everything its deploy-form runtime depends on (op, shapes, stride, groups, kernel, bits,
sparse format); shapes already reflect kept channels and rank. Unseen leaves are
interpolated from measured leaves of the same kind that are near in size: a non-negative
fit ``time = a + b * MACs + c * bytes`` on the nearest points.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autocompress.cost._plan import LeafPlan
from autocompress.cost.latency._base import batch_of, layer_outputs, numel
from autocompress.cost.latency._cache import Fingerprint, latency_dir
from autocompress.errors import ConfigError

FORMAT = "autocompress.latency-table"
NEAREST = 6


def leaf_key(p: LeafPlan) -> str:
    """Everything the deploy leaf's runtime depends on (not the layer's name, not ``calls``)."""
    sparse = "dense" if p.sparsity <= 0 or p.pattern == "channel" else f"{p.pattern}@{p.sparsity:.3f}"
    return (f"{p.kind}|x{list(p.input_shape)}|w{list(p.weight_shape)}|y{list(p.output_shape)}"
            f"|s{list(p.stride)}|g{p.groups}|b{int(p.has_bias)}|{p.kernel}"
            f"|w{p.weight_bits}a{p.act_bits}{'d' if p.act_dynamic else ''}{'cb' if p.codebook else ''}|{sparse}")


def leaf_class(p: LeafPlan) -> str:
    """Leaves that share a kernel path; interpolation stays within a class."""
    dw = "dw" if p.groups > 1 else "dense"
    sparse = "dense" if p.sparsity <= 0 or p.pattern == "channel" else p.pattern
    return f"{p.kind}|{dw}|{p.kernel}|w{min(p.weight_bits, 16)}a{p.act_bits}{'d' if p.act_dynamic else ''}|{sparse}"


def leaf_features(p: LeafPlan) -> tuple[float, float]:
    """(MACs, fp32 bytes) of one call."""
    macs = p.macs * batch_of(p) / max(p.calls, 1)
    nbytes = 4.0 * (numel(p.weight_shape) + numel(p.input_shape) + numel(p.output_shape))
    return float(macs), float(nbytes)


def model_signature(plan: Sequence[LeafPlan]) -> str:
    """Identifies the architecture + batch, the same for every policy applied to it."""
    layers = sorted({p.layer for p in plan})
    raw = json.dumps([layers, batch_of(plan[0]) if plan else 0]).encode()
    return hashlib.sha1(raw).hexdigest()[:16]


def dense_key(dense_plan: Sequence[LeafPlan]) -> str:
    """Identifies the exact model (every leaf's shapes and calls) by its uncompressed plan."""
    raw = json.dumps([[p.leaf, leaf_key(p), p.calls] for p in dense_plan]).encode()
    return hashlib.sha1(raw).hexdigest()[:16]


def output_elements(plan: Sequence[LeafPlan]) -> int:
    return sum(numel(p.output_shape) * p.calls for p in layer_outputs(plan))


@dataclass
class LeafTable:
    """Measured per-call leaf times (ms) and per-model rest fits, for one fingerprint."""

    fingerprint: Fingerprint
    leaves: dict[str, dict[str, Any]] = field(default_factory=dict)
    overheads: dict[str, dict[str, Any]] = field(default_factory=dict)
    _fits: dict[str, tuple[float, str]] = field(default_factory=dict, repr=False)

    # ---- records ------------------------------------------------------------------
    def add_leaf(self, p: LeafPlan, ms: float, source: str) -> None:
        macs, nbytes = leaf_features(p)
        self.leaves[leaf_key(p)] = {"ms": ms, "macs": macs, "bytes": nbytes,
                                    "cls": leaf_class(p), "source": source}
        self._fits.clear()

    def set_overhead(self, signature: str, c0: float, c1: float, k: float = 1.0,
                     int8_call_ms: float = 0.0, calibration: int = 0, dense: str = "") -> None:
        """rest = c0 + c1 * output elements; leaves run ``k`` times slower in the model, and
        every call of an int8 leaf costs ``int8_call_ms`` more there than alone (fitted
        with ``calibration`` random policies on the model whose :func:`dense_key` is ``dense``)."""
        self.overheads[signature] = {"c0": c0, "c1": c1, "k": k, "int8_call_ms": int8_call_ms,
                                     "calibration": calibration, "dense": dense}

    def fitted_with(self, dense_plan: Sequence[LeafPlan]) -> int | None:
        """How many calibration policies the overhead fit of this exact model used (its
        uncompressed plan); None if there is none, or it was fitted on another model that
        shares the layer names (e.g. the same layers at other widths)."""
        fit = self.overheads.get(model_signature(dense_plan))
        if fit is None or fit.get("dense") != dense_key(dense_plan):
            return None
        return int(fit.get("calibration", 0))

    def without(self, keys: Iterable[str]) -> LeafTable:
        """A copy lacking ``keys`` (to test interpolation on leaves it has not seen)."""
        drop = set(keys)
        kept = {k: v for k, v in self.leaves.items() if k not in drop}
        return LeafTable(self.fingerprint, kept, dict(self.overheads))

    # ---- lookups ------------------------------------------------------------------
    def lookup(self, p: LeafPlan) -> tuple[float, str] | None:
        """(ms per call, basis) of a leaf, measured or interpolated; None if nothing fits."""
        key = leaf_key(p)
        hit = self.leaves.get(key)
        if hit is not None:
            return float(hit["ms"]), "measured"
        if key not in self._fits:
            ms = interpolate(self.leaves.values(), leaf_class(p), *leaf_features(p))
            self._fits[key] = (ms, "interpolated") if ms is not None else (math.nan, "")
        ms, basis = self._fits[key]
        return None if math.isnan(ms) else (ms, basis)

    def leaf_factor(self, plan: Sequence[LeafPlan]) -> float:
        """How much slower leaves run inside this model than alone (1.0 if not fitted)."""
        return float(self._overhead(plan).get("k", 1.0))

    def int8_call_ms(self, plan: Sequence[LeafPlan]) -> float:
        """Extra milliseconds per int8 leaf call inside this model (0.0 if not fitted)."""
        return float(self._overhead(plan).get("int8_call_ms", 0.0))

    def _overhead(self, plan: Sequence[LeafPlan]) -> dict[str, Any]:
        """This model's fitted overhead terms ({} if none)."""
        return self.overheads.get(model_signature(plan)) or {}

    def rest_ms(self, plan: Sequence[LeafPlan]) -> float | None:
        fit = self._overhead(plan)
        if not fit:
            return None
        return max(0.0, fit["c0"] + fit["c1"] * output_elements(plan))

    # ---- files --------------------------------------------------------------------
    @staticmethod
    def path_for(fp: Fingerprint) -> Path:
        return latency_dir() / f"table-{fp.key}.json"

    @classmethod
    def load(cls, fp: Fingerprint) -> LeafTable:
        """The table for ``fp`` from the cache (empty if none was saved)."""
        path = cls.path_for(fp)
        if not path.is_file():
            return cls(fp)
        raw = json.loads(path.read_text())
        if raw.get("format") != FORMAT or raw.get("fingerprint", {}).get("key") != fp.key:
            raise ConfigError(f"{path}: not a latency table for fingerprint {fp.key}; delete it")
        return cls(fp, dict(raw.get("leaves", {})), dict(raw.get("overheads", {})))

    def save(self) -> Path:
        path = self.path_for(self.fingerprint)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT, "version": 1, "fingerprint": self.fingerprint.to_dict(),
                "leaves": self.leaves, "overheads": self.overheads}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)
        return path


def interpolate(points: Iterable[dict[str, Any]], cls: str, macs: float, nbytes: float) -> float | None:
    """Non-negative fit of time = a + b*MACs + c*bytes on the nearest points of ``cls``."""
    same = [q for q in points if q["cls"] == cls]
    if not same:
        return None
    same.sort(key=lambda q: abs(math.log1p(q["macs"]) - math.log1p(macs))
              + abs(math.log1p(q["bytes"]) - math.log1p(nbytes)))
    near = same[:NEAREST]
    if len(near) < 3:
        q = near[0]  # too few to fit: scale the nearest by work
        return float(q["ms"]) * max(macs, 1.0) / max(float(q["macs"]), 1.0)
    x = np.array([[1.0, q["macs"], q["bytes"]] for q in near])
    y = np.array([q["ms"] for q in near])
    scale = x.max(axis=0)
    best: tuple[float, float] | None = None
    for cols in ([0, 1, 2], [0, 1], [0, 2], [1], [2]):
        coef, *_ = np.linalg.lstsq(x[:, cols] / scale[cols], y, rcond=None)
        if (coef < 0).any():
            continue
        resid = float(np.sum((x[:, cols] / scale[cols] @ coef - y) ** 2))
        pred = float(np.array([1.0, macs, nbytes])[cols] / scale[cols] @ coef)
        if best is None or resid < best[0]:
            best = (resid, pred)
    return best[1] if best is not None else float(np.median(y))
