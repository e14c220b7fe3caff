"""A deploy leaf as standard ops an ONNX exporter understands (no autocompress op, no quantized-engine op).

- a leaf on the **int8 kernel**: its activations and weights as fake-quantisation with the
  artifact's own scales and zero points; the exporter writes QuantizeLinear/DequantizeLinear
  pairs (QDQ), which ONNX Runtime fuses into integer kernels (QLinearConv, MatMulInteger...).
  The weights are exactly on their grid, so quantising them again over the full 8-bit range
  gives back the kernel's codes (``_onnx.fold_weight_quantizers`` stores them as int8): the
  artifact's codes, or on a CPU without AVX512-VNNI the 7-bit codes the deploy form runs there
  (``backends.int8.kernel_codes``; ONNX Runtime's u8s8 kernels saturate there too);
- a leaf on the **dynamic int8 kernel** (``act_dynamic``): ONNX Runtime's own dynamic int8
  contract, the graph its ``quantize_dynamic`` writes: ``DynamicQuantizeLinear`` of the input
  (uint8, its range computed at run time), ``MatMulInteger`` with the int8 weight codes (per
  output column zero points), the product of the two scales, the bias; ONNX Runtime fuses it
  into ``DynamicQuantizeMatMul``;
- an **embedding** with 2..8-bit codes (kernel ``"lookup"``): the codes as an int8 / uint8
  initialiser (sub-8-bit codes unpacked to 8 bits) and the per-row scales; Gather of the rows,
  then Cast, Sub of the zero point, Mul by the scale: only looked-up rows are decoded;
- any other leaf: its decoded fp32 weight (sub-8-bit, codebook and sparse weights decoded once,
  as the artifact's loader does), fake-quantised activations where the policy has 8-bit
  activations, a round trip through fp16 for 16-bit ones.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from autocompress.backends import int8
from autocompress.techniques.codec import decode, decode_codes
from autocompress.techniques.deploy import DeployLeaf, act_qparams
from autocompress.techniques.embedding import Lookup
from autocompress.techniques.leaf import run_op
from autocompress.techniques.quantize import ACT_QMAX, DynamicActQuant, dequantize_weight


class OnnxLeaf(nn.Module):
    """What ``DeployLeaf`` computes, written with exportable ops."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    w_scale: torch.Tensor
    w_zp: torch.Tensor

    def __init__(self, leaf: DeployLeaf, weight_codes: bool = False) -> None:
        super().__init__()
        self.kind, self.spec, cfg = leaf.kind, leaf.spec, leaf.cfg
        self.int8 = leaf.kernel == "int8"
        self.dynamic = cfg.act_dynamic
        self.lookup: Lookup | None = None
        # with weight_codes, weight-only 2..8-bit codes also ship as int8/uint8 initialisers
        # behind a DequantizeLinear (3.6x smaller files; ONNX Runtime then runs them slower)
        self.codes = weight_codes and cfg.weight_bits <= 8 and not cfg.codebook
        storage = leaf.stored()
        if leaf.kernel == "lookup":
            codes, scale, zp = decode_codes(storage, leaf.weight_shape, cfg)
            self.lookup = Lookup(codes, scale, zp, cfg.symmetric)
        elif self.dynamic:
            self._init_dynamic(leaf)
        elif self.int8 or self.codes:
            codes, scale, zp = decode_codes(storage, leaf.weight_shape, cfg)
            if self.int8:  # the codes the int8 kernel runs on this CPU (7-bit ones where 8-bit would saturate)
                codes, scale, zp, _ = int8.kernel_codes(codes, scale, zp, cfg.weight_bits, cfg.symmetric)
            self.register_buffer("weight", dequantize_weight(codes, scale, zp).float())
            rows = leaf.weight_shape[0]
            self.register_buffer("w_scale", scale.reshape(-1).float().expand(rows).clone())
            self.register_buffer("w_zp", zp.reshape(-1).to(torch.int32).expand(rows).clone())
            self.w_range = (-128, 127) if cfg.symmetric else (0, 255)
        else:
            self.register_buffer("weight", decode(storage, leaf.weight_shape, cfg).float())  # as the loader does
        self.register_buffer("bias", None if leaf.bias is None else leaf.bias.detach().float().clone())
        self.act_bits = cfg.act_bits
        self.act_in = act_qparams(leaf.act_in) if cfg.static_act8 else None
        self.act_out = act_qparams(leaf.act_out) if cfg.static_act8 else None

    def _init_dynamic(self, leaf: DeployLeaf) -> None:
        cfg = leaf.cfg
        codes, scale, zp = decode_codes(leaf.stored(), leaf.weight_shape, cfg)
        codes, scale, zp, bits = int8.kernel_codes(codes, scale, zp, cfg.weight_bits, cfg.symmetric)
        shift = 0 if cfg.symmetric else 2 ** (bits - 1)  # as backends.int8: signed int8 codes
        rows = leaf.weight_shape[0]
        self.register_buffer("w_int8", (codes.round() - shift).to(torch.int8).t().contiguous())  # (in, out)
        self.register_buffer("w_zp", (zp.reshape(-1).round() - shift).to(torch.int8).expand(rows).clone())
        self.register_buffer("w_scale", scale.reshape(-1).float().expand(rows).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lookup is not None:
            return self.lookup(x)
        if self.dynamic:
            return _DynamicInt8Linear.apply(x, self.w_int8, self.w_zp, self.w_scale, self.bias)
        if self.act_in is not None:
            x = torch.fake_quantize_per_tensor_affine(x, self.act_in[0], self.act_in[1], 0, ACT_QMAX)
        elif self.act_bits == 16:
            x = x.to(torch.float16).to(torch.float32)
        w = self.weight
        if self.int8 or self.codes:
            w = torch.fake_quantize_per_channel_affine(w, self.w_scale, self.w_zp, 0, *self.w_range)
        y = run_op(self.spec, x, w, self.bias)
        if self.act_out is not None:
            y = torch.fake_quantize_per_tensor_affine(y, self.act_out[0], self.act_out[1], 0, ACT_QMAX)
        return y


class _DynamicInt8Linear(torch.autograd.Function):
    """``y = (q(x) - zx) (W - zw) * sx * sw + b`` with ``q(x)``'s range from ``x`` itself; exported
    as DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul -> Add (ORT's dynamic contract)."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor, w: torch.Tensor, w_zp: torch.Tensor, w_scale: torch.Tensor,
                bias: torch.Tensor | None) -> torch.Tensor:
        xq = DynamicActQuant()(x)  # the train form's own dynamic quantiser
        wf = (w.float() - w_zp.float()) * w_scale  # (in, out)
        y = xq @ wf
        return y if bias is None else y + bias

    @staticmethod
    def symbolic(g: Any, x: Any, w: Any, w_zp: Any, w_scale: Any, bias: Any) -> Any:
        xq, xs, xz = g.op("DynamicQuantizeLinear", x, outputs=3)
        y = g.op("MatMulInteger", xq, w, xz, w_zp)
        y = g.op("Cast", y, to_i=1)  # float
        y = g.op("Mul", y, g.op("Mul", xs, w_scale))
        if bias is None or _is_none(bias):
            return y
        return g.op("Add", y, bias)


def _is_none(v: Any) -> bool:
    return hasattr(v, "node") and v.node().mustBeNone()

