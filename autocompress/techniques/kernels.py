"""Which kernel a compressed leaf runs as it ships: the one rule train form, deploy form and plan share.

- ``"int8"`` (act_bits 8, weight_bits <= 8, a layout the int8 backend supports);
- ``"int8-dynamic"`` (``act_dynamic`` Linear: the input's range computed at run time);
- ``"lookup"`` (an embedding with 2..8-bit codes: rows decoded as they are looked up);
- ``"fp32-sparse"`` (unstructured Linear at sparsity >= ``SPARSE_CSR_MIN_SPARSITY``);
- ``"fp32"``: everything else (the dequantised dense weight).

Example::

    kernel, why_not_int8 = choose_kernel(LeafSpec.of(model.conv1), cfg)
"""

from __future__ import annotations

from typing import Literal

from torch import nn

from autocompress.backends import int8
from autocompress.graph import LayerKind
from autocompress.policy import LayerConfig
from autocompress.techniques.leaf import LeafSpec
from autocompress.techniques.sparsify import mask_kind

Kernel = Literal["int8", "int8-dynamic", "lookup", "fp32", "fp32-sparse"]
# Measured on this 2-core x86 CPU, 1 thread (torch 2.13): CSR x dense input beats dense
# F.linear from ~0.95 sparsity at 1024x1024 (batch 1: 58 vs 79 us; batch 32: 0.20 vs 0.87 ms)
# and 4096x1024; at 0.90 it loses at batch 1. Tiny layers (256x256, batch 1) lose by ~5 us.
SPARSE_CSR_MIN_SPARSITY = 0.95


def runtime_kernel(
    kind: LayerKind, cfg: LayerConfig, *, depthwise: bool = False, padding_mode: str = "zeros"
) -> Kernel:
    """The kernel by op kind and config alone (see :func:`choose_kernel` for a conv's padding)."""
    if kind == "embedding":
        return "lookup" if cfg.weight_bits <= 8 and not cfg.codebook else "fp32"
    if cfg.act_dynamic and kind == "linear" and int8.engine() is not None:
        return "int8-dynamic"
    if cfg.static_act8 and cfg.weight_bits <= 8 and not cfg.codebook:
        why = int8.unsupported_reason(kind, cfg.weight_bits, cfg.symmetric, depthwise, padding_mode)
        if why is None:
            return "int8"
    if kind == "linear" and mask_kind(cfg) == "unstructured" and (
        cfg.sparsity >= SPARSE_CSR_MIN_SPARSITY
    ):
        return "fp32-sparse"
    return "fp32"


def choose_kernel(spec: LeafSpec, cfg: LayerConfig) -> tuple[Kernel, str | None]:
    """(kernel, why an 8-bit config does not run on int8 or None) for the leaf ``spec``."""
    conv = spec.conv
    dw, pm = (conv.depthwise, conv.padding_mode) if conv is not None else (False, "zeros")
    kernel = runtime_kernel(spec.kind, cfg, depthwise=dw, padding_mode=pm)
    if kernel == "int8-dynamic" or spec.kind == "embedding":
        return kernel, None
    if kernel == "int8" and conv is not None and conv.int_padding is None:
        return "fp32", f"int8 conv needs symmetric padding, got {conv.padding!r}"
    if kernel != "int8" and cfg.act_bits == 8 and cfg.codebook:
        return kernel, "codebook weights are not evenly spaced: no int8 kernel, decoded to fp32 at load"
    if kernel != "int8" and cfg.act_bits == 8 and cfg.weight_bits <= 8:
        return kernel, int8.unsupported_reason(spec.kind, cfg.weight_bits, cfg.symmetric, dw, pm)
    return kernel, None


def leaf_kernel(leaf: nn.Module, cfg: LayerConfig) -> Kernel:
    """The kernel ``leaf`` (a Linear/Conv1d/Conv2d) will run under ``cfg``."""
    return choose_kernel(LeafSpec.of(leaf), cfg)[0]


__all__ = ["SPARSE_CSR_MIN_SPARSITY", "Kernel", "choose_kernel", "leaf_kernel", "runtime_kernel"]
