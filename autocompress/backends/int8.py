"""Real int8 CPU kernels (x86 / fbgemm) for Linear, Conv1d and Conv2d, and dynamic int8 Linear.

The only module that touches torch's quantized engine (``torch.ops.quantized`` prepack and
kernels, the ops under ``torch.ao.nn.quantized``; deprecated, but the working int8 CPU
kernels of this torch): keeping them behind this file lets the backend change without
touching the deploy modules. The ops are called directly, which packs each weight once
(the ``torch.ao`` modules pack an empty weight first). Inputs and outputs are float32: the input is quantised
to uint8 with calibrated parameters, the int8 kernel runs, the uint8 output is dequantised.

Dynamic int8 (:func:`build_int8_dynamic`, Linear only): torch's ``quantized::linear_dynamic``
computes the uint8 scale and zero point of each input from its min/max (0 included) over the
whole tensor, runs the same int8 GEMM and answers in float32 (no output quantisation).

Weights of 2..8 bits are int8 codes with the same scale. Asymmetric weights (unsigned codes
``c`` with zero point ``z``) become ``c - 2^(b-1)`` with zero point ``z - 2^(b-1)``: the same
values, supported by fbgemm. One case is refused (see :func:`unsupported_reason`): fbgemm's
depthwise Conv2d kernel sums pairs of uint8 x int8 products in int16 and saturates with
full-range 8-bit weights; the x86 engine routes symmetric depthwise to oneDNN (exact) but
asymmetric to fbgemm, so asymmetric 8-bit depthwise Conv2d falls back to fp32.

The same int16 pair sum limits fbgemm's GEMM and convolution kernels on CPUs without
AVX512-VNNI (AVX2-only x86, e.g. AMD EPYC before Zen 4): 255 x 127 x 2 > 32767, so 8-bit
weights against full-range uint8 inputs can saturate (measured: 105.0 instead of 207.3 on
such a CPU). Weights of <= 7 bits cannot (255 x 64 x 2 <= 32767). There, 8-bit weights are
re-coded to 7 bits over the same range for the kernel (see :func:`seven_bit_weights`); the
artifact keeps its 8-bit codes, and inputs keep the full uint8 range the train form
calibrated. (torch.ao instead reduces the *input* to 7 bits; for per-tensor activations of a
transformer that costs more: MiniLM w8a8 cosine to the train form 0.92, against 0.95 here.)
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

Kind = Literal["linear", "conv1d", "conv2d"]
ENGINES: tuple[str, ...] = ("x86", "fbgemm")  # tested; the first one supported is used


@dataclass(frozen=True)
class ConvSpec:
    """Geometry of a convolution (ints are per spatial dim)."""

    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int


def engine() -> str | None:
    """The quantized engine kernels are packed with, or None if this CPU build has none."""
    supported = torch.backends.quantized.supported_engines
    return next((e for e in ENGINES if e in supported), None)


def unsupported_reason(
    kind: Kind, bits: int, symmetric: bool, depthwise: bool = False, padding_mode: str = "zeros"
) -> str | None:
    """Why this layer cannot run on the int8 kernels (None if it can)."""
    if engine() is None:
        return f"no x86/fbgemm quantized engine in this torch build ({torch.__version__})"
    if not 2 <= bits <= 8:
        return f"int8 kernels need 2..8-bit weights, got {bits}"
    if padding_mode != "zeros":
        return f"int8 conv kernels support padding_mode='zeros' only, got {padding_mode!r}"
    if kind == "conv2d" and depthwise and not symmetric and bits == 8:
        return (
            "asymmetric 8-bit depthwise Conv2d saturates in fbgemm's int16 depthwise kernel; "
            "use symmetric weights or <= 7 bits for an int8 kernel"
        )
    return None


@contextlib.contextmanager
def _packing_engine() -> Iterator[None]:
    """Pack weights with the chosen engine, restoring the caller's global setting after."""
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine() or old
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao deprecation notices (warned once)
            yield
    finally:
        torch.backends.quantized.engine = old


def _qweight(codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, bits: int,
             symmetric: bool) -> torch.Tensor:
    shift = 0 if symmetric else 2 ** (bits - 1)
    q = (codes.round() - shift).to(torch.int8)
    zp = (zero_point.round() - shift).to(torch.int64)
    if scale.numel() == 1:
        return torch._make_per_tensor_quantized_tensor(q, float(scale), int(zp))
    return torch._make_per_channel_quantized_tensor(q, scale.double(), zp, 0)


REDUCE_RANGE_ENV = "AUTOCOMPRESS_INT8_REDUCE_RANGE"  # "1" / "0" forces it on / off (tests, odd CPUs)


@functools.cache
def seven_bit_weights() -> bool:
    """Whether 8-bit weights run as 7-bit codes: True unless the CPU has AVX512-VNNI (fbgemm's
    uint8 x int8 kernels without it add pairs of products in int16 and saturate)."""
    forced = os.environ.get(REDUCE_RANGE_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    check = getattr(torch.cpu, "_is_vnni_supported", None)
    if check is not None:
        with contextlib.suppress(Exception):
            return not bool(check())
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512_vnni" not in f.read()
    except OSError:
        return True  # unknown CPU: the safe choice costs one bit of 8-bit weights


def _to_seven_bits(codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                   symmetric: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """8-bit codes -> 7-bit codes (and scale, zero point) over the same real range."""
    if symmetric:  # [-127, 127] -> [-63, 63]
        return (codes * (63.0 / 127.0)).round(), scale * (127.0 / 63.0), zero_point
    factor = 127.0 / 255.0  # [0, 255] -> [0, 127]
    return (codes * factor).round(), scale / factor, (zero_point * factor).round()


def kernel_codes(codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, bits: int,
                 symmetric: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """The (codes, scale, zero point, bits) the int8 kernel runs for a weight's stored codes.

    The stored codes unless they are 8-bit on a CPU where :func:`seven_bit_weights`: then
    7-bit codes over the same range. The train form dequantises these same values, so its
    outputs match the kernel's (``techniques.quantize.WeightFakeQuant.int8_kernel``).
    """
    if bits == 8 and seven_bit_weights():
        seven = _to_seven_bits(codes.float(), scale.float(), zero_point.float(), symmetric)
        return (*seven, 7)
    return codes, scale, zero_point, bits


class Int8Kernel(nn.Module):
    """float32 in -> uint8 -> int8 kernel -> uint8 -> float32 out."""

    def __init__(self, kind: Kind, packed: Any, act_in: tuple[float, int],
                 act_out: tuple[float, int]) -> None:
        super().__init__()
        self.kind, self.packed = kind, packed
        self.in_scale, self.in_zero_point = float(act_in[0]), int(act_in[1])
        self.out_scale, self.out_zero_point = float(act_out[0]), int(act_out[1])
        self._op = _OPS[kind]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = torch.quantize_per_tensor(x.float(), self.in_scale, self.in_zero_point, torch.quint8)
        # fbgemm's convolutions answer in channels-last memory; a user's ``.view`` needs the
        # standard layout (a no-op for Linear outputs)
        return self._op(xq, self.packed, self.out_scale, self.out_zero_point).dequantize().contiguous()

    def extra_repr(self) -> str:
        return f"{self.kind}, engine={engine()}"


_QOPS: Any = torch.ops.quantized
_OPS: dict[str, Any] = {"linear": _QOPS.linear, "conv1d": _QOPS.conv1d, "conv2d": _QOPS.conv2d}


def build_int8(
    kind: Kind,
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero_point: torch.Tensor,
    *,
    bits: int,
    symmetric: bool,
    bias: torch.Tensor | None,
    act_in: tuple[float, int],
    act_out: tuple[float, int],
    conv: ConvSpec | None = None,
) -> Int8Kernel:
    """An int8 kernel module from integer weight codes (weight's shape), scale, zero point.

    ``codes``: symmetric in ``[-(2^(b-1)-1), 2^(b-1)-1]`` or asymmetric in ``[0, 2^b-1]``;
    ``scale``/``zero_point`` of shape ``(out,)`` or ``(1,)``; ``act_in``/``act_out``:
    (scale, zero point) of the uint8 input and output.
    """
    b = None if bias is None else bias.detach().float()
    codes, scale, zero_point, bits = kernel_codes(codes, scale, zero_point, bits, symmetric)
    with _packing_engine():
        qw = _qweight(codes, scale, zero_point, bits, symmetric)
        if kind == "linear":
            packed = _QOPS.linear_prepack(qw, b)
        else:
            if conv is None:
                raise ValueError(f"build_int8: a {kind} kernel needs its ConvSpec")
            prepack = _QOPS.conv2d_prepack if kind == "conv2d" else _QOPS.conv1d_prepack
            packed = prepack(qw, b, list(conv.stride), list(conv.padding), list(conv.dilation),
                             conv.groups)
        # quantize_per_tensor warns once per process: let that happen here, silenced.
        torch.quantize_per_tensor(torch.zeros(1), 1.0, 0, torch.quint8)
    return Int8Kernel(kind, packed, act_in, act_out)


class Int8DynamicKernel(nn.Module):
    """float32 in -> uint8 with this input's own range -> int8 GEMM -> float32 out."""

    def __init__(self, packed: Any) -> None:
        super().__init__()
        self.packed = packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reduce_range=False: the full uint8 input range; on CPUs without AVX512-VNNI the
        # weights are 7-bit codes (kernel_codes), so fbgemm's int16 pair sums cannot saturate
        return _QOPS.linear_dynamic(x.float(), self.packed, False)

    def extra_repr(self) -> str:
        return f"linear, dynamic activations, engine={engine()}"


def build_int8_dynamic(codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, *,
                       bits: int, symmetric: bool, bias: torch.Tensor | None) -> Int8DynamicKernel:
    """A dynamic int8 Linear from integer weight codes (as :func:`build_int8`)."""
    b = None if bias is None else bias.detach().float()
    codes, scale, zero_point, bits = kernel_codes(codes, scale, zero_point, bits, symmetric)
    with _packing_engine():
        packed = _QOPS.linear_prepack(_qweight(codes, scale, zero_point, bits, symmetric), b)
    return Int8DynamicKernel(packed)
