"""Quantisation in train form: weight and activation fake-quant with a straight-through estimator.

Weights (``WeightFakeQuant``, a parametrization after any ``WeightMask``): integer codes of
2..8 bits, per output channel (dim 0) or per tensor, symmetric (codes in
``[-(2^(b-1)-1), 2^(b-1)-1]``, zero point 0) or asymmetric (codes in ``[0, 2^b-1]`` with an
integer zero point, so 0.0 is exactly representable and masked weights stay 0). The scale is
computed from the min/max of the (masked) weight in every forward: no state that can drift
from the weight. 16 bits = float16 round trip. The codec stores exactly these codes. A leaf
that ships on the int8 kernel dequantises the codes that kernel runs on this CPU (8-bit
codes as 7-bit ones without AVX512-VNNI: ``backends.int8.kernel_codes``), so train and
deploy forms agree on every CPU. With ``codebook`` the weight takes the nearest value of a
per-layer k-means table instead (``techniques.codebook``).

Dynamic activations (``DynamicActQuant``, ``act_dynamic``): the same 8-bit grid, its range
the min/max of each input tensor as it arrives (0 included), as the dynamic int8 kernel
computes it; nothing to calibrate, no output quantiser.

Activations (``ActFakeQuant``): per-tensor affine 8 bits (unsigned codes ``[0, 255]``), range
calibrated as min/max over calibration batches (:func:`calibrate`), then followed by an EMA
while training, frozen in eval. 16 bits = float16 round trip, 32 = identity.

Example::

    attach_quant(model.fc1, LayerConfig(weight_bits=4, act_bits=8))
    calibrate(model, x)       # activation ranges from a batch
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn.utils import parametrize

from autocompress.backends import int8
from autocompress.errors import PolicyError
from autocompress.graph import ActLinks, kind_of
from autocompress.policy import LayerConfig
from autocompress.techniques.codebook import kmeans_table, nearest
from autocompress.techniques.kernels import leaf_kernel

EMA_MOMENTUM = 0.9
ACT_QMAX = 255
_MIN_SCALE = 1e-12  # an all-zero channel gets this scale (its codes are all zero-point)


class WeightCodes(NamedTuple):
    """Integer codes (float tensor of integers, weight's shape), scale and zero point.

    ``scale`` and ``zero_point`` have shape ``(C,)`` (per channel) or ``(1,)``; the zero
    point is all zeros for symmetric codes.
    """

    codes: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor


def code_range(bits: int, symmetric: bool) -> tuple[int, int]:
    """The integer code range of a weight: symmetric ``±(2^(b-1)-1)``, else ``[0, 2^b-1]``."""
    if symmetric:
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def quantize_weight(w: torch.Tensor, bits: int, per_channel: bool, symmetric: bool) -> WeightCodes:
    """Codes, scale and zero point of ``w`` (the one formula train form and codec share)."""
    w = w.detach()
    flat = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    lo_c, hi_c = flat.amin(dim=1), flat.amax(dim=1)
    qmin, qmax = code_range(bits, symmetric)
    if symmetric:
        scale = (torch.maximum(hi_c.abs(), lo_c.abs()) / qmax).clamp(min=_MIN_SCALE)
        zp = torch.zeros_like(scale)
    else:
        lo_c, hi_c = lo_c.clamp(max=0.0), hi_c.clamp(min=0.0)
        scale = ((hi_c - lo_c) / qmax).clamp(min=_MIN_SCALE)
        zp = torch.round(-lo_c / scale).clamp(qmin, qmax)
    sb, zb = _bcast(scale, w), _bcast(zp, w)
    codes = torch.clamp(torch.round(w / sb) + zb, qmin, qmax)
    return WeightCodes(codes, scale, zp)


def dequantize_weight(
    codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor
) -> torch.Tensor:
    """``(codes - zero_point) * scale`` broadcast over dim 0 (bit-identical in train and codec)."""
    return (codes - _bcast(zero_point, codes)) * _bcast(scale, codes)


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (like.dim() - 1))) if v.numel() > 1 else v.reshape(())


class WeightFakeQuant(nn.Module):
    """Parametrization ``w -> dequant(quant(w))`` with a straight-through gradient."""

    def __init__(self, bits: int, per_channel: bool = True, symmetric: bool = True,
                 int8_kernel: bool = False, codebook: bool = False) -> None:
        super().__init__()
        if bits not in (2, 3, 4, 5, 6, 7, 8, 16):
            raise PolicyError(f"WeightFakeQuant bits must be 2..8 or 16, got {bits!r}")
        if codebook and bits > 8:
            raise PolicyError(f"a codebook needs 2..8-bit weights, got {bits}")
        self.bits, self.per_channel, self.symmetric = bits, per_channel, symmetric
        self.codebook = codebook  # k-means table per layer (techniques.codebook), not even levels
        # The leaf ships on the int8 kernel: dequantise what that kernel runs on this CPU
        # (8-bit codes re-coded to 7 bits without AVX512-VNNI, backends.int8.kernel_codes).
        self.int8_kernel = int8_kernel

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.bits == 16:
            q = w.detach().to(torch.float16).to(w.dtype)
        elif self.codebook:
            table = kmeans_table(w, self.bits)
            q = table[nearest(table, w)].to(w.dtype)
        else:
            codes, scale, zp = self.codes(w)
            if self.int8_kernel:
                codes, scale, zp, _ = int8.kernel_codes(codes, scale, zp, self.bits, self.symmetric)
            q = dequantize_weight(codes, scale, zp).to(w.dtype)
        return w + (q - w).detach()  # straight-through: d q / d w = 1

    def codes(self, w: torch.Tensor) -> WeightCodes:
        """Integer codes, scale and zero point of ``w`` (2..8 bits, even levels only)."""
        if self.codebook:
            raise PolicyError("codebook weights have table indices, not affine codes (techniques.codebook)")
        if self.bits > 8:
            raise PolicyError(f"a {self.bits}-bit weight has no integer codes (only 2..8 bits)")
        return quantize_weight(w, self.bits, self.per_channel, self.symmetric)

    def extra_repr(self) -> str:
        if self.codebook:
            return f"bits={self.bits}, codebook"
        g = "per_channel" if self.per_channel else "per_tensor"
        return f"bits={self.bits}, {g}, symmetric={self.symmetric}" + (", int8_kernel" if self.int8_kernel else "")


def act_qparams(lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor unsigned 8-bit (scale fp32, zero point int32) of the range [lo, hi] ∪ {0}."""
    lo, hi = lo.clamp(max=0.0), hi.clamp(min=0.0)
    scale = ((hi - lo) / ACT_QMAX).clamp(min=_MIN_SCALE).float()
    zp = torch.round(-lo / scale).clamp(0, ACT_QMAX).to(torch.int32)
    return scale, zp


def fake_quant_act(x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor) -> torch.Tensor:
    """8-bit fake quantisation of an activation (gradient passes inside the range)."""
    return torch.fake_quantize_per_tensor_affine(x, scale, zp, 0, ACT_QMAX)


class ActFakeQuant(nn.Module):
    """Per-tensor activation fake-quant: min/max calibration, EMA in training, frozen in eval."""

    lo: torch.Tensor
    hi: torch.Tensor
    calibrated: torch.Tensor

    def __init__(self, bits: int, momentum: float = EMA_MOMENTUM) -> None:
        super().__init__()
        if bits not in (8, 16, 32):
            raise PolicyError(f"ActFakeQuant bits must be 8, 16 or 32, got {bits!r}")
        self.bits, self.momentum = bits, momentum
        self.observing = False  # set by calibrate(): record min/max, do not quantise
        self.relu_only = False  # set by link_quantizers(): only ReLUs read it, so the range starts at 0
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("calibrated", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bits == 32:
            return x
        if self.bits == 16:
            return x + (x.detach().to(torch.float16).to(x.dtype) - x).detach()
        if self.observing or self.training:
            self._observe(x.detach())
        if self.observing or not bool(self.calibrated):
            return x
        return fake_quant_act(x, *self.qparams())

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, zero point) of the current range."""
        return act_qparams(self.lo, self.hi)

    @torch.no_grad()
    def _observe(self, x: torch.Tensor) -> None:
        lo, hi = x.amin().float(), x.amax().float()
        if self.relu_only:
            lo = torch.zeros_like(lo)
        if not bool(self.calibrated):
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self.calibrated.fill_(True)
        elif self.observing:
            self.lo.copy_(torch.minimum(self.lo, lo))
            self.hi.copy_(torch.maximum(self.hi, hi))
        else:
            self.lo.mul_(self.momentum).add_(lo, alpha=1 - self.momentum)
            self.hi.mul_(self.momentum).add_(hi, alpha=1 - self.momentum)

    def extra_repr(self) -> str:
        relu = ", relu_only" if self.relu_only else ""
        return f"bits={self.bits}, range=[{float(self.lo):.4g}, {float(self.hi):.4g}]{relu}"


class SharedActQuant(nn.Module):
    """A layer's 8-bit input quantiser that is its producer's output quantiser (see
    :func:`link_quantizers`): same scale and zero point, observes nothing itself. Its input is
    already on that grid in eval, so quantising it again changes nothing and the exported graph
    needs no requantisation between the two layers."""

    bits = 8

    def __init__(self, source: ActFakeQuant) -> None:
        super().__init__()
        self._source = (source,)  # a tuple: shared with the producer, not a second submodule

    @property
    def source(self) -> ActFakeQuant:
        return self._source[0]

    @property
    def calibrated(self) -> torch.Tensor:
        return self.source.calibrated

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.source.qparams()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.source.observing or not bool(self.source.calibrated):
            return x
        return fake_quant_act(x, *self.qparams())

    def extra_repr(self) -> str:
        return "shares its producer's output range"


class DynamicActQuant(nn.Module):
    """8-bit fake quantisation of each input over its own min/max (``act_dynamic``): what the
    dynamic int8 kernel (``backends.int8.build_int8_dynamic``) does to its input at run time.
    No state; the gradient passes straight through inside the range."""

    bits = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, zp = act_qparams(x.detach().amin().float(), x.detach().amax().float())
        return fake_quant_act(x, scale, zp)

    def extra_repr(self) -> str:
        return "dynamic: range of each input"


ActQuant = ActFakeQuant | SharedActQuant


def _quant_input(module: Any, args: tuple) -> tuple:
    return (module.act_in(args[0]), *args[1:])


def _quant_output(module: Any, _args: tuple, out: torch.Tensor) -> torch.Tensor:
    return module.act_out(out)


def attach_quant(leaf: nn.Module, cfg: LayerConfig, *, name: str | None = None) -> None:
    """Attach ``leaf``'s weight and activation fake-quant of ``cfg``, in place.

    Nothing is recorded on the leaf: the deploy form gets ``cfg`` again from the policy
    (``compress.to_deploy(model, policy)``); fp32 weights and activations are a no-op.

    The weight parametrization goes after any mask (the quantiser sees the masked weight);
    activations get child modules ``act_in`` (and ``act_out`` at 8 bits) run by forward
    hooks, so the leaf keeps its path and class and survives ``copy.deepcopy``.
    """
    where = name or type(leaf).__name__
    if kind_of(leaf) is None:
        raise PolicyError(
            f"quantisation on layer {where!r}: only nn.Linear, nn.Conv1d and nn.Conv2d can be "
            f"quantised, got {type(leaf).__name__}"
        )
    if get_weight_quant(leaf) is not None or hasattr(leaf, "act_in"):
        raise PolicyError(f"quantisation on layer {where!r}: it is already quantised")
    if cfg.act_dynamic and kind_of(leaf) != "linear":
        raise PolicyError(
            f"act_dynamic on layer {where!r}: dynamic int8 activations run on Linear layers only "
            f"(torch and ONNX Runtime have a dynamic int8 GEMM, no dynamic convolution), got "
            f"{type(leaf).__name__}; use static act_bits 8 (drop act_dynamic) for this layer"
        )
    if cfg.weight_bits == 32 and cfg.act_bits == 32:
        return  # nothing to quantise
    if cfg.weight_bits < 32:
        per_channel = cfg.granularity == "per_channel"
        on_int8 = cfg.weight_bits <= 8 and leaf_kernel(leaf, cfg) in ("int8", "int8-dynamic")
        fq = WeightFakeQuant(cfg.weight_bits, per_channel, cfg.symmetric, int8_kernel=on_int8,
                             codebook=cfg.codebook)
        parametrize.register_parametrization(leaf, "weight", fq)
    if cfg.act_dynamic:
        leaf.act_in = DynamicActQuant()
        leaf.register_forward_pre_hook(_quant_input)
    elif cfg.act_bits < 32:
        leaf.act_in = ActFakeQuant(cfg.act_bits)
        leaf.register_forward_pre_hook(_quant_input)
        if cfg.act_bits == 8:
            leaf.act_out = ActFakeQuant(8)
            leaf.register_forward_hook(_quant_output)


def get_weight_quant(leaf: nn.Module) -> WeightFakeQuant | None:
    """The WeightFakeQuant on ``leaf.weight``, or None."""
    if not parametrize.is_parametrized(leaf, "weight"):
        return None
    m: Any = leaf
    for p in m.parametrizations["weight"]:
        if isinstance(p, WeightFakeQuant):
            return p
    return None


def get_act_quant(leaf: nn.Module) -> tuple[ActQuant | None, ActQuant | None]:
    """(input, output) activation quantisers attached by :func:`attach_quant`."""
    a_in, a_out = getattr(leaf, "act_in", None), getattr(leaf, "act_out", None)
    return (
        a_in if isinstance(a_in, (ActFakeQuant, SharedActQuant)) else None,
        a_out if isinstance(a_out, (ActFakeQuant, SharedActQuant)) else None,
    )


def link_quantizers(model: nn.Module, links: ActLinks) -> int:
    """Apply :func:`autocompress.graph.activation_links` to a train form whose leaves carry
    8-bit activation quantisers, in place; returns how many inputs now share a producer's range.

    - a leaf read only by ReLUs gets an output range from 0 (``relu_only``);
    - a leaf fed by another leaf's quantised output through value-keeping ops gets that
      quantiser as its input quantiser (:class:`SharedActQuant`).

    Both keep the model's function (up to the finer output grid) and let ONNX Runtime run
    consecutive int8 layers without a dequantise / quantise between them.
    """
    def out_quant(path: str) -> ActFakeQuant | None:
        q = getattr(model.get_submodule(path), "act_out", None)
        return q if isinstance(q, ActFakeQuant) and q.bits == 8 else None

    for path in links.relu_only:
        q = out_quant(path)
        if q is not None:
            q.relu_only = True
    shared = 0
    for path, src in links.input_from.items():
        leaf, q = model.get_submodule(path), out_quant(src)
        own = getattr(leaf, "act_in", None)
        if q is not None and isinstance(own, ActFakeQuant) and own.bits == 8:
            leaf.act_in = SharedActQuant(q)
            shared += 1
    return shared


Batch = torch.Tensor | tuple[torch.Tensor, ...]


@torch.no_grad()
def calibrate(model: nn.Module, batches: Batch | Iterable[Batch] | None) -> None:
    """Set every 8-bit activation range to the min/max seen over ``batches`` (eval mode).

    ``batches`` is one batch (a tensor, or a tuple of the model's positional inputs) or a
    list of batches. Ranges are reset first, so calibrating twice does not mix data.
    """
    quants = [m for m in model.modules() if isinstance(m, ActFakeQuant) and m.bits == 8]
    if not quants:
        return
    if batches is None:
        raise PolicyError("calibrating activation ranges needs a batch of inputs, got None")
    items = [batches] if isinstance(batches, (torch.Tensor, tuple)) else list(batches)
    was_training = model.training
    model.eval()
    for q in quants:
        q.calibrated.fill_(False)
        q.observing = True
    try:
        for b in items:
            model(*b) if isinstance(b, tuple) else model(b)
    finally:
        for q in quants:
            q.observing = False
        model.train(was_training)
