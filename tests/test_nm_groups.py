"""Scattered N:M groups (``nm_groups: scattered``): the order, masks, codec, forms and search rules."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from autocompress import compress
from autocompress.cost import size_bytes
from autocompress.errors import ConfigError, PolicyError
from autocompress.graph import layers
from autocompress.policy import LayerConfig, Policy
from autocompress.search._rules import parse_rule
from autocompress.techniques.codec import decode, encode, storage_nbytes
from autocompress.techniques.sparsify import WeightMask, from_group_order, nm_mask, nm_order, to_group_order


@pytest.mark.parametrize("row_len", [1, 2, 4, 9, 12, 64, 100, 300, 784, 1024])
def test_scattered_order_is_a_fixed_permutation_and_contiguous_is_none(row_len: int) -> None:
    order = nm_order(row_len, "scattered")
    assert order is not None and sorted(order.tolist()) == list(range(row_len))
    assert torch.equal(order, nm_order(row_len, "scattered"))
    assert nm_order(row_len, "contiguous") is None


def test_scattered_groups_span_the_row() -> None:
    """784 = a flattened 28x28 image: each scattered group of 28 touches most image rows, where a
    contiguous group is one image row."""
    order = nm_order(784, "scattered")
    assert order is not None
    image_rows = [len(set((order[g * 28:(g + 1) * 28] // 28).tolist())) for g in range(28)]
    assert min(image_rows) >= 14


def test_group_order_round_trip() -> None:
    t = torch.randn(5, 3, 4, 4)
    for groups in ("contiguous", "scattered"):
        g = to_group_order(t, groups)  # type: ignore[arg-type]
        assert g.shape == (5, 48)
        assert torch.equal(from_group_order(g, t.shape, groups), t)  # type: ignore[arg-type]


@pytest.mark.parametrize("shape,n,m", [((6, 12), 1, 4), ((4, 784), 2, 28), ((3, 2, 3, 3), 3, 9), ((2, 64), 5, 64)])
def test_scattered_mask_keeps_the_n_largest_of_each_scattered_group(shape: tuple[int, ...], n: int, m: int) -> None:
    w = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    mask = nm_mask(w, n, m, groups="scattered")
    assert mask.shape == w.shape and int(mask.sum()) == w.numel() * n // m
    gw = to_group_order(w.abs(), "scattered").reshape(-1, m)
    gm = to_group_order(mask, "scattered").reshape(-1, m)
    assert bool((gm.sum(dim=1) == n).all())
    kept_min = torch.where(gm, gw, torch.inf).min(dim=1).values
    dropped_max = torch.where(gm, -torch.inf, gw).max(dim=1).values
    assert bool((kept_min >= dropped_max).all())


def test_scattered_avoids_a_dead_block_that_contiguous_groups_must_keep() -> None:
    """Inputs 0..27 of every row are exactly zero (a blank image row): contiguous 2:28 keeps two
    zero weights per row there; scattered groups keep only live ones."""
    w = torch.randn(8, 784, generator=torch.Generator().manual_seed(1)) + 3.0
    w[:, :28] = 0.0
    contiguous = nm_mask(w, 2, 28)
    scattered = nm_mask(w, 2, 28, groups="scattered")
    assert int(contiguous[:, :28].sum()) == 8 * 2
    assert int(scattered[:, :28].sum()) == 0
    assert (w * scattered).abs().sum() > (w * contiguous).abs().sum()


@pytest.mark.parametrize("bits,codebook", [(3, False), (4, True), (8, False), (16, False), (32, False)])
@pytest.mark.parametrize("shape,pattern", [((12, 784), "2:28"), ((7, 12), "1:4"), ((5, 3, 3, 4), "3:9")])
def test_codec_round_trip_and_exact_bytes(bits: int, codebook: bool, shape: tuple[int, ...], pattern: str) -> None:
    cfg = LayerConfig(weight_bits=bits, pattern=pattern, nm_groups="scattered", codebook=codebook)
    w = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    mask = nm_mask(w, *cfg.nm, groups="scattered")  # type: ignore[misc]
    tensors = encode(w, mask, cfg)
    assert sum(t.numel() * t.element_size() for t in tensors.values()) == storage_nbytes(shape, cfg)
    assert storage_nbytes(shape, cfg) == storage_nbytes(shape, LayerConfig(weight_bits=bits, pattern=pattern,
                                                                             codebook=codebook))
    out = decode(tensors, shape, cfg)
    assert torch.equal(out != 0, mask & (out != 0)) and not bool(out[~mask].any())
    if bits == 32:
        assert torch.equal(out, w * mask)


def test_codec_refuses_a_mask_of_the_other_grouping() -> None:
    w = torch.randn(4, 784, generator=torch.Generator().manual_seed(3))
    contiguous = nm_mask(w, 2, 28)
    with pytest.raises(PolicyError, match="is not 2:28"):
        encode(w, contiguous, LayerConfig(weight_bits=4, pattern="2:28", nm_groups="scattered"))


def test_gradual_ramp_ends_on_the_scattered_mask() -> None:
    w = torch.randn(6, 56, generator=torch.Generator().manual_seed(4))
    cfg = LayerConfig(pattern="2:28", nm_groups="scattered")
    wm = WeightMask(torch.ones_like(w, dtype=torch.bool), cfg)
    wm.ramp(w, 0.3, 4.0)
    assert int(wm.mask.sum()) > w.numel() * 2 // 28
    wm.ramp(w, 1.0, 4.0)
    assert torch.equal(wm.mask, nm_mask(w, 2, 28, groups="scattered"))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.mark.parametrize("act_bits", [8, 32])
def test_deploy_form_matches_train_form_and_size_model(act_bits: int) -> None:
    torch.manual_seed(0)
    model, x = _Net().eval(), torch.randn(4, 4, 6, 6)
    layer = {"weight_bits": 4, "act_bits": act_bits, "pattern": "1:4", "nm_groups": "scattered"}
    policy = Policy.from_dict({"layers": {"conv": {**layer, "pattern": "3:12"}, "fc": layer}})
    train = compress(model, policy, form="train", example_input=x)
    deploy = compress(model, policy, form="deploy", example_input=x)
    with torch.no_grad():
        ref, out = train(x), deploy(x)
    tol = 1e-5 if act_bits == 32 else 0.05 * float(ref.abs().max())
    assert float((out - ref).abs().max()) <= tol
    stored = sum(t.numel() * t.element_size() for t in deploy.state_dict().values())
    assert size_bytes(model, policy, x) == stored
    as_yaml = Policy.from_yaml(policy.to_yaml())
    assert as_yaml == policy and as_yaml.resolve(["conv", "fc"])["fc"].nm_groups == "scattered"


def test_layer_config_errors_name_the_field() -> None:
    with pytest.raises(PolicyError, match="nm_groups must be one of"):
        LayerConfig(pattern="2:4", nm_groups="random")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="needs an N:M pattern"):
        LayerConfig(sparsity=0.5, nm_groups="scattered")
    with pytest.raises(PolicyError, match="needs an N:M pattern"):
        Policy.from_dict({"layers": {"fc": {"weight_bits": 4, "nm_groups": "scattered"}}})


def test_rule_takes_nm_groups_and_the_sampler_sets_it_only_on_nm_choices() -> None:
    rule = parse_rule({"layers": ["fc"], "patterns": ["unstructured", "1:4"], "sparsity": [0.0, 0.5],
                       "nm_groups": "scattered"}, "space.rules[0]")
    assert rule.nm_groups == "scattered" and rule.to_dict()["nm_groups"] == "scattered"
    with pytest.raises(ConfigError, match=r"space.rules\[0\].nm_groups.*no N:M pattern|nm_groups.*has none"):
        parse_rule({"layers": ["fc"], "sparsity": [0.5], "nm_groups": "scattered"}, "space.rules[0]")
    with pytest.raises(ConfigError, match="nm_groups"):
        parse_rule({"layers": ["fc"], "patterns": ["1:4"], "nm_groups": "diagonal"}, "space.rules[0]")


def test_search_samples_scattered_nm_and_contiguous_never_on_unstructured() -> None:
    import optuna

    from autocompress.search.space import SearchSpace

    space = SearchSpace.from_dict({
        "format": "autocompress.search_space", "version": 1,
        "rules": [{"layers": ["fc"], "weight_bits": [4], "sparsity": [0.0, 0.5],
                   "patterns": ["unstructured", "1:4", "2:8"], "nm_groups": "scattered"}],
    })
    torch.manual_seed(0)
    model, x = _Net().eval(), torch.randn(2, 4, 6, 6)
    bound = space.bind(layers(model, x))
    seen = set()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        cfg = bound.sample(study.ask()).resolve(["conv", "fc"])["fc"]
        seen.add((cfg.pattern, cfg.nm_groups))
        assert (cfg.nm is not None) == (cfg.nm_groups == "scattered")
    assert ("1:4", "scattered") in seen and ("unstructured", "contiguous") in seen
    assert math.isclose(LayerConfig(pattern="1:4", nm_groups="scattered").sparsity, 0.75)


def test_size_model_refuses_an_nm_pattern_the_input_size_cannot_take() -> None:
    """784 inputs cannot form groups of 12: the size model says so, as compress does."""
    model, x = nn.Sequential(nn.Linear(784, 10)), torch.randn(2, 784)
    policy = Policy.from_dict({"layers": {"0": {"weight_bits": 4, "pattern": "1:12"}}})
    with pytest.raises(PolicyError, match="input size 784 is not divisible by M=12"):
        size_bytes(model, policy, x)
    with pytest.raises(PolicyError, match="not divisible by M=12"):
        compress(model, policy, form="deploy", example_input=x)
