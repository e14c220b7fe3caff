"""Deploy modules: a compressed Linear/Conv1d/Conv2d as it ships, on real kernels.

A :class:`DeployLeaf` holds only what ships as persistent buffers: the codec's tensors
(``w_codes``, ``w_scale``, ...), the fp32 ``bias`` and, at 8-bit activations, ``act_in`` /
``act_out`` = ``[scale, zero_point]`` (fp32). Its runtime is rebuilt from them at
construction and after every ``load_state_dict``:

- ``"int8"`` (act_bits 8, weight_bits <= 8): a real int8 kernel (``backends.int8``);
- ``"int8-dynamic"`` (``act_dynamic`` Linear): torch's dynamic int8 Linear kernel (the input's
  range taken from each input; nothing stored for activations);
- ``"lookup"`` (an embedding with 2..8-bit codes): the codes as int8/uint8 and the scales, the
  rows decoded as they are looked up (``techniques.embedding``);
- ``"fp32-sparse"`` (unstructured Linear, sparsity >= ``SPARSE_CSR_MIN_SPARSITY``): a torch
  sparse CSR weight;
- ``"fp32"``: the dequantised dense weight (weight-only compression), with the activation
  fake-quant of the train form applied so outputs match it.

Example::

    deploy = to_deploy(model.fc1, cfg)     # fc1 carries attach_mask / attach_quant of cfg
    model.fc1 = deploy                     # same path, state_dict = packed storage
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from autocompress.backends import int8
from autocompress.errors import PolicyError
from autocompress.graph import kind_of
from autocompress.policy import LayerConfig
from autocompress.techniques.codec import decode, decode_codes, encode, tensor_specs
from autocompress.techniques.embedding import Lookup
from autocompress.techniques.kernels import (
    SPARSE_CSR_MIN_SPARSITY,
    Kernel,
    choose_kernel,
    runtime_kernel,
)
from autocompress.techniques.leaf import LeafSpec, run_op
from autocompress.techniques.quantize import (
    DynamicActQuant,
    fake_quant_act,
    get_act_quant,
    get_weight_quant,
)
from autocompress.techniques.sparsify import get_mask, mask_kind

ACT_QPARAMS_NBYTES = 8  # [scale, zero_point] as fp32, per quantised activation


def deploy_tensor_specs(leaf: nn.Module, cfg: LayerConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Name -> (shape, dtype) of ``to_deploy(leaf, cfg).state_dict()``, in its order (works on
    ``meta`` leaves): the one description of what a deploy leaf stores, which the size model reads."""
    shape = tuple(leaf_weight(leaf).shape)
    specs = {f"w_{k}": spec for k, spec in tensor_specs(shape, cfg).items()}
    if getattr(leaf, "bias", None) is not None:
        specs["bias"] = ((shape[0],), torch.float32)
    if cfg.static_act8:
        specs["act_in"] = specs["act_out"] = ((ACT_QPARAMS_NBYTES // 4,), torch.float32)
    return specs


def deploy_state_nbytes(leaf: nn.Module, cfg: LayerConfig) -> int:
    """Exact bytes of ``to_deploy(leaf, cfg).state_dict()`` (works on ``meta`` leaves)."""
    return sum(math.prod(shape) * dt.itemsize for shape, dt in deploy_tensor_specs(leaf, cfg).values())


class _Runtime:
    """What a DeployLeaf runs, derived from its buffers; never saved, never copied.

    ``copy.deepcopy`` / pickling give an empty runtime that the copy rebuilds on its first
    forward (sparse CSR tensors and packed int8 weights cannot be deep-copied).
    """

    def __init__(self) -> None:
        self.module: int8.Int8Kernel | int8.Int8DynamicKernel | Lookup | None = None  # the kernel module, if any
        self.weight: torch.Tensor | None = None
        self.act_in: tuple[torch.Tensor, torch.Tensor] | None = None  # (scale, int32 zp)
        self.act_out: tuple[torch.Tensor, torch.Tensor] | None = None
        self.ready = False

    def __deepcopy__(self, memo: dict) -> _Runtime:
        return _Runtime()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()  # type: ignore[misc]


class DeployLeaf(nn.Module):
    """A compressed leaf: packed storage as buffers, a runtime rebuilt from them."""

    bias: torch.Tensor | None
    act_in: torch.Tensor
    act_out: torch.Tensor

    def __init__(self, spec: LeafSpec, cfg: LayerConfig, tensors: dict[str, torch.Tensor],
                 bias: torch.Tensor | None, act: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.spec, self.cfg = spec, cfg
        self.kind, self.weight_shape, self.conv = spec.kind, spec.weight_shape, spec.conv
        self.storage_keys = tuple(tensors)
        for k, t in tensors.items():
            self.register_buffer(f"w_{k}", t.detach().clone())
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        for k, t in act.items():
            self.register_buffer(k, t.detach().float().clone())
        self.kernel, self.fallback_reason = self._choose_kernel()
        self._rt = _Runtime()
        self._rebuild()

    @property
    def weight(self) -> torch.Tensor | None:
        """The runtime fp32 weight (dense or sparse CSR); None on the int8 kernel."""
        if not self._rt.ready:
            self._rebuild()
        return self._rt.weight

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._rebuild()

    def stored(self) -> dict[str, torch.Tensor]:
        """The packed tensors as the artifact stores them (codes, scales, masks...)."""
        return {k: getattr(self, f"w_{k}") for k in self.storage_keys}

    def _choose_kernel(self) -> tuple[Kernel, str | None]:
        return choose_kernel(self.spec, self.cfg)

    @torch.no_grad()
    def _rebuild(self) -> None:
        """Build the runtime (int8 kernel, CSR or dense weight) from the stored tensors."""
        cfg, conv, rt = self.cfg, self.conv, _Runtime()
        if self.kernel == "int8":
            codes, scale, zp = decode_codes(self.stored(), self.weight_shape, cfg)
            spec = None if conv is None or conv.int_padding is None else int8.ConvSpec(
                conv.stride, conv.int_padding, conv.dilation, conv.groups)
            rt.module = int8.build_int8(
                self.kind, codes, scale, zp, bits=cfg.weight_bits,  # type: ignore[arg-type]  # never an embedding
                symmetric=cfg.symmetric, bias=self.bias, act_in=act_qparams(self.act_in),
                act_out=act_qparams(self.act_out), conv=spec)
        elif self.kernel == "lookup":
            codes, scale, zp = decode_codes(self.stored(), self.weight_shape, cfg)
            rt.module = Lookup(codes, scale, zp, cfg.symmetric)
        elif self.kernel == "int8-dynamic":
            codes, scale, zp = decode_codes(self.stored(), self.weight_shape, cfg)
            rt.module = int8.build_int8_dynamic(codes, scale, zp, bits=cfg.weight_bits,
                                              symmetric=cfg.symmetric, bias=self.bias)
        else:
            w = decode(self.stored(), self.weight_shape, cfg)
            if self.kernel == "fp32-sparse":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
                    w = w.to_sparse_csr()
            rt.weight = w
            if cfg.static_act8:
                rt.act_in = (self.act_in[0:1].clone(), self.act_in[1:2].to(torch.int32))
                rt.act_out = (self.act_out[0:1].clone(), self.act_out[1:2].to(torch.int32))
        rt.ready = True
        self._rt = rt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._rt.ready:
            self._rebuild()
        if self._rt.module is not None:
            return self._rt.module(x)
        rt = self._rt
        if rt.act_in is not None:
            x = fake_quant_act(x, *rt.act_in)
        elif self.cfg.act_dynamic:  # no quantized engine in this torch build: emulated
            x = DynamicActQuant()(x)
        elif self.cfg.act_bits == 16:
            x = x.to(torch.float16).to(x.dtype)
        y = self._op(x)
        return y if rt.act_out is None else fake_quant_act(y, *rt.act_out)

    def _op(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self._rt.weight, self.bias
        if w is None:
            raise RuntimeError("DeployLeaf has no runtime weight")
        if self.kind == "linear" and self.kernel == "fp32-sparse":
            x2 = x.reshape(-1, x.shape[-1])
            y = (w @ x2.T).T if b is None else torch.addmm(b[:, None], w, x2.T).T
            return y.reshape(*x.shape[:-1], -1)
        return run_op(self.spec, x, w, b)

    def extra_repr(self) -> str:
        why = f", fallback={self.fallback_reason!r}" if self.fallback_reason else ""
        return f"{self.kind}, weight={self.weight_shape}, kernel={self.kernel}{why}, {self.cfg}"


def act_qparams(t: torch.Tensor) -> tuple[float, int]:
    """(scale, zero point) of a stored activation quantiser ``[scale, zp]``."""
    return float(t[0]), int(t[1])


def is_compressed_leaf(module: nn.Module) -> bool:
    """Whether ``module`` is a Linear/Conv carrying a mask or quantisation."""
    if kind_of(module) is None:
        return False
    return get_mask(module) is not None or get_weight_quant(module) is not None or hasattr(module, "act_in")


def needs_deploy(cfg: LayerConfig) -> bool:
    """Whether a leaf with config ``cfg`` becomes a :class:`DeployLeaf` (the train form
    attached a mask or quantisers to it); an all-default config stays a plain layer."""
    return cfg.weight_bits < 32 or cfg.act_bits < 32 or mask_kind(cfg) != "none"


def to_deploy(leaf: nn.Module, cfg: LayerConfig) -> DeployLeaf:
    """The deploy module of a train-form leaf (its mask, weight and activation quantisers),
    built with ``cfg``, the config the train form was built with."""
    if kind_of(leaf) is None:
        raise PolicyError(f"to_deploy needs an nn.Linear/Conv1d/Conv2d/Embedding, got {type(leaf).__name__}")
    mask = get_mask(leaf)
    raw = leaf_weight(leaf)
    tensors = encode(raw, mask, cfg)
    act: dict[str, torch.Tensor] = {}
    if cfg.static_act8:
        a_in, a_out = get_act_quant(leaf)
        for key, q in (("act_in", a_in), ("act_out", a_out)):
            if q is None or not bool(q.calibrated):
                raise PolicyError(
                    f"to_deploy of {type(leaf).__name__} {tuple(raw.shape)}: activation range "
                    f"{key} is not calibrated; run quantize.calibrate(model, batch) with "
                    "inputs that reach this layer"
                )
            scale, zp = q.qparams()
            act[key] = torch.stack([scale.reshape(()), zp.reshape(()).float()])
    return DeployLeaf(LeafSpec.of(leaf, tuple(raw.shape)), cfg, tensors, getattr(leaf, "bias", None), act)


def leaf_weight(leaf: nn.Module) -> torch.Tensor:
    """The stored (unparametrized) weight of a leaf."""
    m: Any = leaf
    if parametrize.is_parametrized(leaf, "weight"):
        return m.parametrizations["weight"].original
    return m.weight


def state_nbytes(module: nn.Module) -> int:
    """Bytes of a module's state_dict (what an artifact of it ships)."""
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


__all__ = [
    "ACT_QPARAMS_NBYTES",
    "SPARSE_CSR_MIN_SPARSITY",
    "DeployLeaf",
    "act_qparams",
    "deploy_state_nbytes",
    "deploy_tensor_specs",
    "is_compressed_leaf",
    "leaf_weight",
    "needs_deploy",
    "runtime_kernel",
    "state_nbytes",
    "to_deploy",
]
