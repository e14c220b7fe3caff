"""Deploy modules: match the train form, ship only packed storage, rebuild after load."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn

from autocompress.backends import int8
from autocompress.errors import PolicyError
from autocompress.models import create_model
from autocompress.models._registry import MODELS
from autocompress.policy import LayerConfig
from autocompress.techniques.deploy import (
    DeployLeaf,
    deploy_state_nbytes,
    is_compressed_leaf,
    runtime_kernel,
    to_deploy,
)
from autocompress.techniques.quantize import attach_quant, calibrate, dequantize_weight
from autocompress.techniques.sparsify import attach_mask

LEAVES = {
    "linear": (lambda: nn.Linear(32, 12), (6, 32)),
    "linear3d": (lambda: nn.Linear(16, 8, bias=False), (2, 5, 16)),
    "conv1d": (lambda: nn.Conv1d(8, 6, 3, padding=1), (2, 8, 10)),
    "conv2d": (lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1), (2, 4, 9, 9)),
    "grouped": (lambda: nn.Conv2d(8, 8, 3, padding=1, groups=2), (2, 8, 6, 6)),
    "depthwise": (lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), (2, 8, 6, 6)),
}


def _train_leaf(name: str, cfg: LayerConfig, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    factory, xshape = LEAVES[name]
    leaf = factory()
    if cfg.sparsity > 0 and cfg.pattern != "channel":
        attach_mask(leaf, cfg)
    attach_quant(leaf, cfg)
    x = torch.randn(xshape) + 0.3
    calibrate(leaf, x)
    return leaf.eval(), x


def _has_vnni() -> bool:
    with open("/proc/cpuinfo") as f:
        return "avx512_vnni" in f.read()


def _check_close(y: torch.Tensor, ref: torch.Tensor, leaf: DeployLeaf) -> None:
    if leaf.cfg.act_bits == 8:  # both quantise the output: at most one output step apart
        tol = float(leaf.act_out[0]) * 1.01
    else:
        tol = 1e-5 * (1 + float(ref.abs().max()))
    assert (y - ref).abs().max() <= tol, (leaf, float((y - ref).abs().max()), tol)


MASKS = [("unstructured", 0.0), ("unstructured", 0.6), ("2:4", 0.5)]
QUANTS = list(itertools.product(["per_channel", "per_tensor"], [True, False]))
COMBOS = list(itertools.product(MASKS, QUANTS))  # 12; each test case runs 3, in turn
BITS = [2, 3, 4, 5, 6, 8, 16, 32]


@pytest.mark.parametrize("name", list(LEAVES))
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("act_bits", [8, 16, 32])
def test_deploy_matches_train_form(name: str, bits: int, act_bits: int) -> None:
    """Every (mask, granularity, symmetry) combo meets every leaf and act width across bits."""
    start = BITS.index(bits) + 5 * [8, 16, 32].index(act_bits)
    for i in range(start, start + 12, 4):
        (pattern, sparsity), (gran, sym) = COMBOS[i % 12]
        if pattern == "2:4" and name == "depthwise":
            continue  # 9 inputs per output: not divisible by 4
        cfg = LayerConfig(weight_bits=bits, act_bits=act_bits, granularity=gran,  # type: ignore[arg-type]
                          symmetric=sym, pattern=pattern, sparsity=sparsity)
        leaf, x = _train_leaf(name, cfg)
        with torch.no_grad():
            ref = leaf(x)
        dep = to_deploy(leaf, cfg)
        assert dep.kernel == runtime_kernel(dep.kind, cfg, depthwise=name == "depthwise")
        if act_bits == 8 and bits <= 8 and not (name == "depthwise" and bits == 8 and not sym):
            assert dep.kernel == "int8"
        _check_close(dep(x), ref, dep)
        assert sum(t.numel() * t.element_size() for t in dep.state_dict().values()) == (
            deploy_state_nbytes(LEAVES[name][0](), cfg))


@pytest.mark.parametrize("seven", ["0", "1"])
@pytest.mark.parametrize("name", list(LEAVES))
def test_train_form_runs_the_kernels_weights_on_either_cpu(seven: str, name: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """w8a8 on CPUs with AVX512-VNNI ("0") and without ("1": 8-bit codes run as 7-bit ones):
    the train form dequantises what the kernel runs, so the forms agree to an output step."""
    monkeypatch.setenv(int8.REDUCE_RANGE_ENV, seven)
    int8.seven_bit_weights.cache_clear()
    try:
        for sym in (True, False):
            cfg = LayerConfig(weight_bits=8, act_bits=8, symmetric=sym)
            leaf, x = _train_leaf(name, cfg, seed=3)
            fq = leaf.parametrizations["weight"][0]
            dep = to_deploy(leaf, cfg)
            assert fq.int8_kernel == (dep.kernel == "int8")
            with torch.no_grad():
                if seven == "1" or _has_vnni():  # 8-bit codes forced on a CPU without VNNI saturate
                    _check_close(dep(x), leaf(x), dep)
                stored = fq.codes(leaf.parametrizations["weight"].original)  # what the codec keeps
                runs = int8.kernel_codes(*stored, 8, sym)[:3]
                assert torch.equal(leaf.weight, dequantize_weight(*(runs if fq.int8_kernel else stored)))
                assert torch.equal(runs[0], stored[0]) == (seven == "0")
    finally:
        int8.seven_bit_weights.cache_clear()


@pytest.mark.parametrize("cfg", [
    LayerConfig(weight_bits=4, act_bits=8, sparsity=0.5),
    LayerConfig(weight_bits=8, act_bits=32, symmetric=False, pattern="2:4"),
    LayerConfig(weight_bits=16, act_bits=16, sparsity=0.97),
])
@pytest.mark.parametrize("name", ["linear", "depthwise", "conv1d"])
def test_state_dict_round_trip_rebuilds_runtime(cfg: LayerConfig, name: str) -> None:
    if cfg.pattern == "2:4" and name == "depthwise":
        pytest.skip("not divisible by 4")
    trained, x = _train_leaf(name, cfg, seed=1)
    dep = to_deploy(trained, cfg)
    fresh = to_deploy(_train_leaf(name, cfg, seed=2)[0], cfg)  # structure from other weights
    assert not torch.equal(fresh(x), dep(x))
    keys = set(dep.state_dict())
    assert keys == set(fresh.state_dict()) and all(k.startswith(("w_", "bias", "act_")) for k in keys)
    fresh.load_state_dict(dep.state_dict())
    assert torch.equal(fresh(x), dep(x))
    assert torch.equal(copy.deepcopy(dep)(x), dep(x))


def test_very_sparse_linear_runs_csr() -> None:
    cfg = LayerConfig(sparsity=0.96)
    leaf, x = _train_leaf("linear", cfg)
    dep = to_deploy(leaf, cfg)
    assert dep.kernel == "fp32-sparse" and dep.weight is not None
    assert dep.weight.layout == torch.sparse_csr
    with torch.no_grad():
        _check_close(dep(x), leaf(x), dep)


def test_saturating_depthwise_falls_back_with_reason() -> None:
    cfg = LayerConfig(weight_bits=8, act_bits=8, symmetric=False)
    leaf, x = _train_leaf("depthwise", cfg)
    dep = to_deploy(leaf, cfg)
    assert dep.kernel == "fp32" and "saturates" in (dep.fallback_reason or "")
    assert "fallback" in repr(dep)
    with torch.no_grad():
        _check_close(dep(x), leaf(x), dep)


def test_runtime_kernel_rule() -> None:
    assert runtime_kernel("linear", LayerConfig(weight_bits=4, act_bits=8)) == "int8"
    assert runtime_kernel("conv2d", LayerConfig(weight_bits=8, act_bits=16)) == "fp32"
    assert runtime_kernel("linear", LayerConfig(weight_bits=16, act_bits=8)) == "fp32"
    assert runtime_kernel("linear", LayerConfig(sparsity=0.95)) == "fp32-sparse"
    assert runtime_kernel("conv2d", LayerConfig(sparsity=0.95)) == "fp32"
    assert runtime_kernel("linear", LayerConfig(weight_bits=8, act_bits=8, sparsity=0.99)) == "int8"


def test_uncalibrated_activation_is_refused() -> None:
    leaf = nn.Linear(4, 4)
    attach_quant(leaf, LayerConfig(weight_bits=8, act_bits=8))
    assert is_compressed_leaf(leaf) and not is_compressed_leaf(nn.Linear(2, 2))
    with pytest.raises(PolicyError, match="not calibrated"):
        to_deploy(leaf, LayerConfig(weight_bits=8, act_bits=8))


def _replace_leaves(model: nn.Module, cfg: LayerConfig) -> None:
    for name, mod in list(model.named_modules()):
        if name and is_compressed_leaf(mod):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, to_deploy(mod, cfg))


@pytest.mark.parametrize("name", [n for n in MODELS.names() if MODELS.get(n).tiny and n != "tiny-mha"])
def test_registry_models_deploy_close_to_train(name: str) -> None:
    spec = MODELS.get(name)
    model = create_model(name).eval()
    cfg = LayerConfig(weight_bits=4, act_bits=8, granularity="per_channel", sparsity=0.5)
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            attach_mask(mod, cfg)
            attach_quant(mod, cfg)
    x = spec.example_input(8)
    calibrate(model, x)
    with torch.no_grad():
        ref = model(x)
        _replace_leaves(model, cfg)
        y = model(x)
    assert all(isinstance(m, DeployLeaf) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    # int8 kernels and fake-quant agree to an output step per layer; errors may grow a little
    assert (y - ref).abs().max() <= 0.02 * (ref.abs().max() + 1e-3)


def test_mask_only_leaf_keeps_its_pattern() -> None:
    identity = nn.Linear(8, 8)
    attach_quant(identity, LayerConfig())
    assert not is_compressed_leaf(identity)  # an all-default config attaches nothing
    cfg = LayerConfig(pattern="2:4")
    leaf, x = _train_leaf("linear", cfg)
    dep = to_deploy(leaf, cfg)
    assert "w_nm_rank" in dep.state_dict() and dep.kernel == "fp32"
    assert sum(t.numel() * t.element_size() for t in dep.state_dict().values()) == (
        deploy_state_nbytes(nn.Linear(32, 12), cfg))
    with torch.no_grad():
        assert torch.equal(dep(x), leaf(x))
