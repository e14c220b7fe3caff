"""Train-form quantisation: code ranges, exact zero, STE, activation ranges, attach, deepcopy."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from autocompress.errors import PolicyError
from autocompress.models import create_model
from autocompress.models._registry import MODELS
from autocompress.policy import LayerConfig
from autocompress.techniques.quantize import (
    ActFakeQuant,
    WeightFakeQuant,
    attach_quant,
    calibrate,
    code_range,
    get_act_quant,
    get_weight_quant,
    quantize_weight,
)
from autocompress.techniques.sparsify import WeightMask, attach_mask


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("per_channel", [True, False])
def test_codes_in_range_and_error_bounded(bits: int, symmetric: bool, per_channel: bool) -> None:
    w = torch.randn(6, 5, 3, generator=torch.Generator().manual_seed(bits)) * 0.3 + 0.05
    codes, scale, zp = quantize_weight(w, bits, per_channel, symmetric)
    qmin, qmax = code_range(bits, symmetric)
    assert codes.min() >= qmin and codes.max() <= qmax
    assert torch.equal(codes, codes.round())
    assert scale.shape == ((6,) if per_channel else (1,))
    assert torch.equal(zp, zp.round()) and (symmetric is False or bool((zp == 0).all()))
    fq = WeightFakeQuant(bits, per_channel, symmetric)(w)
    s = scale.reshape(-1, 1, 1) if per_channel else scale
    assert bool(((fq - w).abs() <= s / 2 + 1e-6).all())
    levels = fq.reshape(6, -1).unique(dim=None).numel() if not per_channel else None
    assert levels is None or levels <= 2**bits


@pytest.mark.parametrize("symmetric", [True, False])
def test_zero_is_exact_and_masked_weights_stay_zero(symmetric: bool) -> None:
    w = torch.rand(4, 8) + 0.5  # all positive: asymmetric range must still include 0
    w[:, ::3] = 0.0
    fq = WeightFakeQuant(3, per_channel=True, symmetric=symmetric)(w)
    assert bool((fq[:, ::3] == 0).all())


def test_straight_through_gradient_is_identity() -> None:
    w = torch.randn(5, 7, requires_grad=True)
    (WeightFakeQuant(4)(w) * torch.arange(7.0)).sum().backward()
    assert torch.equal(w.grad, torch.arange(7.0).expand(5, 7))


def test_16_bits_is_fp16_round_trip() -> None:
    w = torch.randn(3, 4)
    assert torch.equal(WeightFakeQuant(16)(w), w.half().float())
    a = ActFakeQuant(16)
    assert torch.equal(a(w), w.half().float())
    assert ActFakeQuant(32)(w) is w


def test_act_range_calibration_ema_and_frozen_eval() -> None:
    a = ActFakeQuant(8)
    a.eval()
    x = torch.linspace(-1.0, 3.0, 100)
    assert torch.equal(a(x), x)  # uncalibrated in eval: identity
    a.observing = True
    a(x)
    a(x * 2)
    a.observing = False
    assert float(a.lo) == -2.0 and float(a.hi) == 6.0
    y = a(x)
    scale, zp = a.qparams()
    assert ((y - x).abs().max() <= scale / 2 + 1e-6) and 0 <= int(zp) <= 255
    a.train()
    a(torch.full((4,), 10.0))  # EMA: hi = 0.9 * 6 + 0.1 * 10
    assert float(a.hi) == pytest.approx(6.4) and float(a.lo) == pytest.approx(0.9 * -2 + 0.1 * 10)
    a.eval()
    before = (float(a.lo), float(a.hi))
    a(torch.full((4,), 100.0))
    assert (float(a.lo), float(a.hi)) == before


def _leaf_cfgs() -> list[tuple[nn.Module, LayerConfig]]:
    return [
        (nn.Linear(8, 6), LayerConfig(weight_bits=4, act_bits=8, sparsity=0.5)),
        (nn.Conv2d(4, 8, 3), LayerConfig(weight_bits=8, act_bits=16, symmetric=False)),
        (nn.Conv1d(4, 4, 3, groups=4), LayerConfig(weight_bits=32, act_bits=8)),
    ]


@pytest.mark.parametrize("case", range(3))
def test_attach_quant_order_paths_and_deepcopy(case: int) -> None:
    leaf, cfg = _leaf_cfgs()[case]
    model = nn.Sequential(leaf)
    if cfg.sparsity > 0:
        attach_mask(leaf, cfg)
    attach_quant(leaf, cfg)
    assert model.get_submodule("0") is leaf and isinstance(leaf, type(_leaf_cfgs()[case][0]))
    if cfg.weight_bits < 32:
        kinds = [type(p) for p in leaf.parametrizations["weight"]]
        assert kinds[-1] is WeightFakeQuant and (cfg.sparsity == 0 or kinds[0] is WeightMask)
    else:
        assert not parametrize.is_parametrized(leaf, "weight")
    a_in, a_out = get_act_quant(leaf)
    assert a_in is not None and a_in.bits == cfg.act_bits
    assert (a_out is not None) == (cfg.act_bits == 8)
    x = torch.randn(3, 8) if isinstance(leaf, nn.Linear) else torch.randn(2, 4, *([6] * (leaf.weight.dim() - 2)))
    calibrate(model, x)
    model.eval()
    twin = copy.deepcopy(model)
    assert torch.equal(twin(x), model(x))
    assert get_weight_quant(twin[0]) is not get_weight_quant(leaf) or cfg.weight_bits == 32
    with pytest.raises(PolicyError, match="already quantised"):
        attach_quant(leaf, cfg)


def test_attach_quant_rejects_non_leaf() -> None:
    with pytest.raises(PolicyError, match="only nn.Linear"):
        attach_quant(nn.LayerNorm(4), LayerConfig(weight_bits=8))


def test_calibrate_needs_input() -> None:
    m = nn.Sequential(nn.Linear(4, 4))
    attach_quant(m[0], LayerConfig(act_bits=8))
    with pytest.raises(PolicyError, match="needs a batch"):
        calibrate(m, None)


@pytest.mark.parametrize("name", [n for n in MODELS.names() if MODELS.get(n).tiny and n != "tiny-mha"])
def test_registry_models_train_with_quant(name: str) -> None:
    spec = MODELS.get(name)
    model = create_model(name)
    cfg = LayerConfig(weight_bits=4, act_bits=8, symmetric=False)
    for mod in model.modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            attach_quant(mod, cfg)
    x = spec.example_input(4)
    calibrate(model, [x, spec.example_input(4, seed=1)])
    assert all(bool(q.calibrated) for q in model.modules() if isinstance(q, ActFakeQuant))
    model.train()
    model(x).float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    assert torch.equal(copy.deepcopy(model)(x), model(x))
