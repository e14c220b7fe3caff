from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from autocompress.errors import PolicyError
from autocompress.policy import LayerConfig, make_layer_config
from autocompress.techniques.sparsify import (
    WeightMask,
    attach_mask,
    get_mask,
    magnitude_mask,
    mask_kind,
    nm_mask,
    pruned_count,
)


@pytest.mark.parametrize("shape", [(7, 5), (4, 3, 3, 3), (6, 4, 5)])
@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.93])
def test_magnitude_mask_exact_count_and_smallest(shape: tuple[int, ...], sparsity: float) -> None:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    mask = magnitude_mask(w, sparsity)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    k = round(sparsity * w.numel())
    assert int((~mask).sum()) == k == pruned_count(w.numel(), sparsity)
    if 0 < k < w.numel():
        assert w.abs()[~mask].max() <= w.abs()[mask].min()


def test_magnitude_mask_ties_by_index_and_deterministic() -> None:
    w = torch.ones(10)
    mask = magnitude_mask(w, 0.3)
    assert mask.tolist() == [False] * 3 + [True] * 7
    w2 = torch.randn(32, 16)
    assert torch.equal(magnitude_mask(w2, 0.4), magnitude_mask(w2.clone(), 0.4))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_magnitude_mask_rejects_bad_sparsity(bad: float) -> None:
    with pytest.raises(PolicyError, match="sparsity"):
        magnitude_mask(torch.randn(4, 4), bad)


@pytest.mark.parametrize(("n", "m"), [(1, 2), (2, 4), (1, 4), (3, 8)])
@pytest.mark.parametrize("shape", [(5, 16), (4, 2, 2, 2), (3, 4, 4)])
def test_nm_mask_pattern(n: int, m: int, shape: tuple[int, ...]) -> None:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    if (w.numel() // shape[0]) % m:
        pytest.skip("row length not divisible")
    mask = nm_mask(w, n, m)
    groups = mask.reshape(shape[0], -1, m)
    assert (groups.sum(-1) == n).all()
    a = w.abs().reshape(shape[0], -1, m)
    kept_min = a.masked_fill(~groups, float("inf")).min(-1).values
    dropped_max = a.masked_fill(groups, -1.0).max(-1).values
    assert (kept_min >= dropped_max).all()
    assert torch.equal(mask, nm_mask(w.clone(), n, m))


def test_nm_mask_groups_along_flattened_input_of_conv() -> None:
    # Row of a conv weight (1, 2, 1, 2) flattened: [0.1, 5, 4, 0.2] -> one 2:4 group.
    w = torch.tensor([0.1, 5.0, 4.0, 0.2]).reshape(1, 2, 1, 2)
    assert nm_mask(w, 2, 4).flatten().tolist() == [False, True, True, False]
    # Ties keep the lower index.
    assert nm_mask(torch.ones(1, 4), 2, 4).flatten().tolist() == [True, True, False, False]


def test_nm_mask_indivisible_input_names_layer() -> None:
    msg = r"N:M on layer 'fc1': input size 6 is not divisible by M"
    with pytest.raises(PolicyError, match=msg):
        nm_mask(torch.randn(3, 6), 2, 4, layer="fc1")
    lin = nn.Linear(6, 3)
    with pytest.raises(PolicyError, match=r"'head'.*input size 6"):
        attach_mask(lin, make_layer_config({"pattern": "2:4"}, "head"), name="head")


def test_masks_on_meta() -> None:
    w = torch.empty(8, 16, device="meta")
    for mask in (magnitude_mask(w, 0.5), nm_mask(w, 2, 4)):
        assert mask.is_meta and mask.dtype == torch.bool and mask.shape == w.shape
    lin = nn.Linear(16, 8, device="meta")
    attach_mask(lin, LayerConfig(sparsity=0.5))
    assert lin.weight.is_meta and lin(torch.empty(2, 16, device="meta")).shape == (2, 8)


def test_mask_kind() -> None:
    assert mask_kind(LayerConfig()) == "none"
    assert mask_kind(LayerConfig(sparsity=0.3)) == "unstructured"
    assert mask_kind(LayerConfig(sparsity=0.3, pattern="channel")) == "none"
    assert mask_kind(make_layer_config({"pattern": "2:4"}, "x")) == "nm"
    assert mask_kind(LayerConfig(pattern="2:4")) == "nm"


def test_attach_mask_keeps_zeros_through_optimizer_step() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(16, 8)
    attach_mask(lin, LayerConfig(sparsity=0.75), name="fc")
    mask = get_mask(lin)
    assert mask is not None and int((~mask).sum()) == round(0.75 * 128)
    assert isinstance(lin.parametrizations["weight"][0], WeightMask)
    assert (lin.weight[~mask] == 0).all()
    before = lin.parametrizations["weight"].original.detach().clone()
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    lin(torch.randn(4, 16)).pow(2).sum().backward()
    orig = lin.parametrizations["weight"].original
    assert orig.grad is not None and torch.isfinite(orig.grad).all()
    assert (orig.grad[~mask] == 0).all() and (orig.grad[mask] != 0).any()
    opt.step()
    assert not torch.equal(orig.detach(), before)
    assert (lin.weight[~mask] == 0).all()
    assert torch.equal(get_mask(lin), mask)


def test_attach_nm_mask_on_conv() -> None:
    conv = nn.Conv2d(4, 6, 3)  # row length 36
    attach_mask(conv, make_layer_config({"pattern": "2:4"}, "c"), name="c")
    w = conv.weight.detach().reshape(6, -1, 4)
    assert ((w != 0).sum(-1) <= 2).all()
    assert ((get_mask(conv).reshape(6, -1, 4)).sum(-1) == 2).all()


def test_attach_mask_noop_and_errors() -> None:
    lin = nn.Linear(4, 4)
    attach_mask(lin, LayerConfig())
    assert not parametrize.is_parametrized(lin) and get_mask(lin) is None
    attach_mask(lin, LayerConfig(sparsity=0.5), name="fc")
    with pytest.raises(PolicyError, match=r"'fc'.*already parametrized"):
        attach_mask(lin, LayerConfig(sparsity=0.5), name="fc")
    with pytest.raises(PolicyError, match=r"'norm'.*nn\.Linear"):
        attach_mask(nn.LayerNorm(4), LayerConfig(sparsity=0.5), name="norm")
    with pytest.raises(PolicyError, match="bool"):
        WeightMask(torch.ones(3))


@pytest.mark.parametrize("cfg", [LayerConfig(pattern="2:8"), LayerConfig(sparsity=0.9)], ids=["nm", "unstructured"])
def test_gradual_ramp_starts_denser_and_ends_exactly_at_the_configs_mask(cfg: LayerConfig) -> None:
    from autocompress.techniques.sparsify import masks_with_weights, ramp_masks

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(32, 16))
    attach_mask(net[0], cfg, name="0")
    final = get_mask(net[0]).clone()  # type: ignore[union-attr]
    ramp_masks(net, 0.0, 3.0)
    start = get_mask(net[0]).clone()  # type: ignore[union-attr]
    assert abs(int(start.sum()) - 3 * int(final.sum())) <= 1  # 6:8 / 30% kept (rounded)
    ramp_masks(net, 0.25, 3.0)
    mid = int(get_mask(net[0]).sum())  # type: ignore[union-attr]
    assert int(final.sum()) < mid < int(start.sum())
    with torch.no_grad():  # the weights moved during the fine-tune: the final mask follows them
        masks_with_weights(net)[0][1].mul_(torch.rand(16, 32) + 0.5)
    ramp_masks(net, 1.0, 3.0)
    dense = masks_with_weights(net)[0][1]
    want = nm_mask(dense, 2, 8) if cfg.nm else magnitude_mask(dense, 0.9)
    assert torch.equal(get_mask(net[0]), want)  # type: ignore[arg-type]
    assert int(want.sum()) == int(final.sum())


def test_gradual_ramp_start_density_is_capped_at_dense() -> None:
    from autocompress.techniques.sparsify import ramp_masks

    net = nn.Sequential(nn.Linear(8, 4))
    attach_mask(net[0], LayerConfig(pattern="2:4"), name="0")
    ramp_masks(net, 0.0, 10.0)
    assert bool(get_mask(net[0]).all())  # type: ignore[union-attr]
