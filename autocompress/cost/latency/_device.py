"""Device profiles: published specs (or this machine's measurements) as data files.

A profile is YAML under ``autocompress/cost/devices/`` (shipped with the package) or, for
``local``, in the cache (written by :func:`autocompress.cost.latency.profile_device`). Every
number is a ``{value: ..., source: ...}`` pair: the source names a datasheet or URL, says
``measured: ...`` or starts with ``estimate:`` and gives the reasoning.

Peaks are dense tera-ops/s with 1 MAC = 2 ops; bandwidths in GB/s; caches in KiB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from autocompress import fields as f
from autocompress import files
from autocompress.cost.latency._cache import fingerprint, latency_dir
from autocompress.errors import ConfigError, nearest

FORMAT = "autocompress.device"
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8", "int4")
# spec key -> python type of its value; every one needs a source
_SPECS: dict[str, type] = {
    "memory_gbs": float,
    "cache_gbs": float,
    "compute_efficiency": float,
    "memory_efficiency": float,
    "op_overhead_us": float,
    "model_overhead_us": float,
    "int8_kernels": bool,
    "fp16_kernels": bool,
    "weight_only_bits": list,
    "nm_patterns": list,
    "nm_speedup": float,
    "unstructured_min_sparsity": float,
    "quant_boundary": bool,
    "rest_ops_per_leaf": float,
}


@dataclass(frozen=True)
class DeviceProfile:
    """What a latency model needs to know about one device."""

    name: str
    kind: Literal["cpu", "gpu"]
    description: str
    peak_tops: Mapping[str, float]  # dense, per precision
    cache_kib: Mapping[str, float]  # level -> size; the largest is the last-level cache
    memory_gbs: float  # DRAM / HBM peak bandwidth
    cache_gbs: float  # bandwidth when a leaf's working set fits in the last-level cache
    compute_efficiency: float  # achievable share of peak on a dense GEMM/conv
    memory_efficiency: float  # achievable share of peak bandwidth
    op_overhead_us: float  # fixed cost per kernel (dispatch / launch)
    model_overhead_us: float  # fixed cost per forward (python call, graph launch)
    int8_kernels: bool  # fast int8 x int8 GEMM/conv
    fp16_kernels: bool  # fast fp16/bf16 GEMM/conv
    weight_only_bits: tuple[int, ...]  # weight bit-widths read packed by a kernel
    nm_patterns: tuple[str, ...]  # N:M patterns with hardware support ("2:4")
    nm_speedup: float  # compute speedup of a supported N:M pattern
    unstructured_min_sparsity: float  # below it, unstructured sparsity runs dense
    quant_boundary: bool  # int8 leaves convert float activations at their edges
    rest_ops_per_leaf: float  # elementwise ops (norm, activation...) after a layer
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    fingerprint: str | None = None  # measured profiles: the machine fingerprint's key
    threads: int | None = None  # measured profiles: the thread count measured at

    @property
    def llc_bytes(self) -> float:
        return max(self.cache_kib.values(), default=0.0) * 1024.0

    def peak(self, precision: str) -> float:
        """Peak ops/s at ``precision``, falling back to fp32 where the device lists none."""
        return float(self.peak_tops.get(precision, self.peak_tops["fp32"])) * 1e12


def _pair(raw: Any, key: str, where: str) -> tuple[Any, str]:
    if not isinstance(raw, dict) or set(raw) != {"value", "source"}:
        raise ConfigError(f"{where}: {key} must be a mapping {{value: ..., source: ...}}, got {raw!r}")
    src = raw["source"]
    if not isinstance(src, str) or not src.strip():
        raise ConfigError(f"{where}: {key}.source must name a datasheet, URL, 'measured: ...' "
                          f"or 'estimate: ...', got {src!r}")
    return raw["value"], src


def _number(v: Any, key: str, where: str) -> float:
    return f.as_float(v, f.join(where, key), 0.0)


def profile_from_dict(raw: Any, where: str) -> DeviceProfile:
    """Validate a parsed profile file; errors name the file and the key."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ConfigError(f"{where}: not a device profile (format must be {FORMAT!r})")
    sources: dict[str, str] = {}
    peaks: dict[str, float] = {}
    for prec, pair in (raw.get("peak_tops") or {}).items():
        if prec not in PRECISIONS:
            raise ConfigError(f"{where}: peak_tops.{prec}: precision must be one of {PRECISIONS}")
        v, sources[f"peak_tops.{prec}"] = _pair(pair, f"peak_tops.{prec}", where)
        peaks[prec] = _number(v, f"peak_tops.{prec}", where)
    if "fp32" not in peaks:
        raise ConfigError(f"{where}: peak_tops.fp32 is required")
    caches: dict[str, float] = {}
    for level, pair in (raw.get("cache_kib") or {}).items():
        v, sources[f"cache_kib.{level}"] = _pair(pair, f"cache_kib.{level}", where)
        caches[str(level)] = _number(v, f"cache_kib.{level}", where)
    specs = raw.get("specs") or {}
    missing = sorted(set(_SPECS) - set(specs))
    unknown = sorted(set(specs) - set(_SPECS))
    if missing or unknown:
        raise ConfigError(f"{where}: specs missing {missing} / unknown {unknown}; "
                          f"expected exactly {sorted(_SPECS)}")
    values: dict[str, Any] = {}
    for key, typ in _SPECS.items():
        v, sources[f"specs.{key}"] = _pair(specs[key], f"specs.{key}", where)
        if typ is bool:
            f.as_bool(v, f.join(where, f"specs.{key}"))
        if typ is list:
            v = tuple(f.as_list(v, f.join(where, f"specs.{key}"), allow_scalar=False, allow_empty=True))
        if typ is float:
            v = _number(v, f"specs.{key}", where)
        values[key] = v
    kind = f.one_of(raw.get("kind"), ("cpu", "gpu"), f.join(where, "kind"))
    return DeviceProfile(
        name=str(raw.get("name")), kind=kind, description=str(raw.get("description", "")),
        peak_tops=peaks, cache_kib=caches, sources=sources,
        fingerprint=raw.get("fingerprint"), threads=raw.get("threads"), **values,
    )


def _shipped() -> dict[str, Any]:
    root = resources.files("autocompress.cost").joinpath("devices")
    return {p.name[: -len(".yaml")]: p for p in root.iterdir() if p.name.endswith(".yaml")}


def local_profile_path(threads: int = 1) -> Path:
    return latency_dir() / f"device-local-{fingerprint(threads).key}.yaml"


def known_devices() -> list[str]:
    """Names of the shipped profiles, plus ``local`` (profiled on demand)."""
    return sorted({*_shipped(), "local"})


def device_profile(name: str, *, threads: int = 1) -> DeviceProfile:
    """The profile named ``name`` (as a study file names it), e.g. ``"a100"`` or ``"local"``.

    ``local`` is this machine at ``threads`` threads; it exists once
    ``autocompress profile`` (:func:`profile_device`) has measured it.
    """
    if name == "local":
        path = local_profile_path(threads)
        if not path.is_file():
            raise ConfigError(
                f"device 'local' has no profile for this machine at {threads} thread(s) "
                f"(looked for {path}); run `autocompress profile` first"
            )
        return profile_from_dict(files.read_yaml(path, "device profile"), str(path))
    shipped = _shipped()
    if name not in shipped:
        raise ConfigError(f"unknown device {name!r}; {nearest(name, known_devices())}")
    source = f"devices/{name}.yaml"
    return profile_from_dict(files.load_yaml(shipped[name].read_text(), source), source)


def every_source(raw: Any, prefix: str = "") -> dict[str, str]:
    """Every ``{value, source}`` leaf of a raw profile (used to check that none lacks one)."""
    out: dict[str, str] = {}
    if isinstance(raw, dict) and set(raw) == {"value", "source"}:
        return {prefix: str(raw["source"])}
    if isinstance(raw, dict):
        for k, v in raw.items():
            out.update(every_source(v, f"{prefix}.{k}" if prefix else str(k)))
    return out
