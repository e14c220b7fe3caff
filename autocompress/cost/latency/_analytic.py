"""The analytic latency model: a roofline per leaf from the device's published specs.

Per leaf: time = max(ops / achievable peak at the precision the device would run,
bytes moved / achievable bandwidth) + a fixed per-op overhead. The precision and the bytes
follow what the device can actually run fast:

- int8 x int8 kernels only where the device has them (else the leaf runs in float);
- weights are read at the narrowest width a kernel reads packed (``weight_only_bits``)
  that holds their storage bits, else at the compute precision (dequantised at load);
- N:M sparsity speeds up only patterns the device supports (2:4 on A100/H100/Orin);
- unstructured sparsity runs dense below ``unstructured_min_sparsity``; above it, work and
  weight bytes scale so that the sparse kernel breaks even exactly at the threshold.

Bandwidth is the last-level-cache bandwidth when a leaf's working set fits there. The
non-leaf rest (norms, activations, adds, pooling) is estimated honestly but roughly:
``rest_ops_per_leaf`` elementwise passes over every layer output, plus per-op and
per-forward fixed overheads. Pure Python: no torch op runs here.
"""

from __future__ import annotations

from collections.abc import Sequence

from autocompress.cost._plan import LeafPlan
from autocompress.cost.latency._base import (
    LatencyModel,
    LeafLatency,
    batch_of,
    layer_outputs,
    numel,
)
from autocompress.cost.latency._device import DeviceProfile
from autocompress.cost.latency._registry import register_latency_model
from autocompress.policy import parse_nm

_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}


def compute_precision(p: LeafPlan, dev: DeviceProfile) -> str:
    """The precision ``dev`` would run this leaf at, given its bits and the device's kernels."""
    if p.weight_bits <= 8 and p.act_bits <= 8 and dev.int8_kernels:
        return "int4" if p.weight_bits <= 4 and p.act_bits <= 4 and "int4" in dev.peak_tops else "int8"
    if p.act_bits <= 16 and p.weight_bits <= 16 and dev.fp16_kernels:
        return "fp16"
    return "fp32"


def weight_read_bits(p: LeafPlan, precision: str, dev: DeviceProfile) -> float:
    """Bits per weight a kernel reads: the narrowest width a kernel reads packed that holds
    the stored codes (4-bit codes become int8 for an 8-bit kernel), else the compute width."""
    compute_bits = 8.0 * _BYTES[precision]
    fits = [b for b in dev.weight_only_bits if p.weight_bits <= b < compute_bits]
    return float(min(fits)) if fits else compute_bits


def sparse_factors(p: LeafPlan, precision: str, dev: DeviceProfile) -> tuple[float, float, str]:
    """(work factor, weight-bytes factor, note) from the leaf's sparsity on this device."""
    if p.sparsity <= 0 or p.pattern == "channel":
        return 1.0, 1.0, "dense"
    nm = parse_nm(p.pattern)
    if nm is not None:
        if p.pattern in dev.nm_patterns and precision != "fp32":
            n, m = nm
            # kept values plus ~2 bits of in-group index metadata per kept value
            meta = 2.0 / (8.0 * _BYTES[precision])
            return 1.0 / dev.nm_speedup, (n / m) * (1.0 + meta), f"{p.pattern} sparse kernel"
        return 1.0, 1.0, f"{p.pattern} runs dense"
    thr = dev.unstructured_min_sparsity
    if p.sparsity < thr:
        return 1.0, 1.0, "unstructured below threshold runs dense"
    f = (1.0 - p.sparsity) / max(1.0 - thr, 1e-9)
    return f, f, "unstructured sparse kernel"


def leaf_roofline(p: LeafPlan, dev: DeviceProfile) -> tuple[float, str]:
    """(milliseconds, bound) of one leaf, all calls."""
    prec = compute_precision(p, dev)
    work, wfac, _ = sparse_factors(p, prec, dev)
    batch = batch_of(p)
    ops = 2.0 * p.macs * batch * work
    act_b = _BYTES[prec] if prec != "fp32" else 4.0
    w_bytes = numel(p.weight_shape) * weight_read_bits(p, prec, dev) / 8.0 * wfac
    io = (numel(p.input_shape) + numel(p.output_shape)) * p.calls
    bytes_moved = w_bytes + io * act_b + (p.out_channels * 4.0 if p.has_bias else 0.0)
    ops_count = p.calls
    if prec in ("int8", "int4") and dev.quant_boundary:
        bytes_moved += io * (4.0 + 1.0)  # quantise the float input, dequantise the output
        ops_count += 2 * p.calls
    bw = dev.cache_gbs if w_bytes + io * act_b <= dev.llc_bytes else dev.memory_gbs
    t_compute = ops / (dev.peak(prec) * dev.compute_efficiency)
    t_memory = bytes_moved / (bw * 1e9 * dev.memory_efficiency)
    fixed = ops_count * dev.op_overhead_us * 1e-6
    bound = "compute" if t_compute >= t_memory else "memory"
    return (max(t_compute, t_memory) + fixed) * 1e3, bound


@register_latency_model("analytic")
class AnalyticModel(LatencyModel):
    """Roofline from the device profile; works for any profile, shipped or measured."""

    name = "analytic"

    def leaf_ms(self, leaf: LeafPlan, device: DeviceProfile) -> LeafLatency:
        ms, bound = leaf_roofline(leaf, device)
        return LeafLatency(leaf.leaf, leaf.layer, ms, bound)  # type: ignore[arg-type]

    def rest_ms(self, plan: Sequence[LeafPlan], device: DeviceProfile) -> tuple[float, str | None]:
        return analytic_rest_ms(plan, device), "rest: elementwise passes over layer outputs (estimate)"


def analytic_rest_ms(plan: Sequence[LeafPlan], device: DeviceProfile) -> float:
    """Elementwise passes over every layer output, plus per-op and per-forward overheads."""
    outs = layer_outputs(plan)
    elems = sum(numel(p.output_shape) * p.calls for p in outs)
    k = device.rest_ops_per_leaf
    nbytes = 2.0 * 4.0 * elems * k  # read + write, float activations
    bw = device.cache_gbs if nbytes <= device.llc_bytes else device.memory_gbs
    t = nbytes / (bw * 1e9 * device.memory_efficiency)
    fixed = (k * sum(p.calls for p in outs) * device.op_overhead_us + device.model_overhead_us) * 1e-6
    return (t + fixed) * 1e3
