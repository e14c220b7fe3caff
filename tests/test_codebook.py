"""Codebook (k-means weight-sharing) quantisation: table, codec, train/deploy match, policy, space."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from autocompress import Policy, compress
from autocompress.cost import plan, size_bytes
from autocompress.cost.latency._table import leaf_key
from autocompress.cost.profiling.profiler import deploy_leaf
from autocompress.errors import ConfigError, PolicyError
from autocompress.graph import channel_groups, layers
from autocompress.models import MODELS, create_model
from autocompress.policy import LayerConfig
from autocompress.search import SearchSpace
from autocompress.techniques.codebook import MAX_SAMPLES, kmeans_table, nearest
from autocompress.techniques.codec import decode, decode_codes, encode, storage_nbytes
from autocompress.techniques.deploy import to_deploy
from autocompress.techniques.quantize import attach_quant, calibrate, quantize_weight
from autocompress.techniques.sparsify import attach_mask


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_table_is_sorted_holds_zero_and_beats_even_levels(bits: int) -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 128, generator=g) * 0.05
    w[torch.rand(w.shape, generator=g) < 0.8] = 0.0  # pruned
    table = kmeans_table(w, bits)
    assert table.shape == (2**bits,) and table.dtype == torch.float32
    assert torch.equal(table, table.sort().values) and (table == 0).any()
    assert torch.equal(kmeans_table(w.clone(), bits), table)  # deterministic
    q = table[nearest(table, w)]
    assert bool((q[w == 0] == 0).all())  # pruned weights stay exactly zero
    nz = w != 0
    even = quantize_weight(w, bits, per_channel=False, symmetric=True)
    uniform = even.codes * even.scale
    assert ((q - w)[nz] ** 2).mean() < ((uniform - w)[nz] ** 2).mean()


def test_table_of_all_zero_and_of_a_large_layer() -> None:
    assert torch.equal(kmeans_table(torch.zeros(5, 5), 3), torch.zeros(8))
    big = torch.randn(MAX_SAMPLES * 3 + 7, generator=torch.Generator().manual_seed(1))
    t = kmeans_table(big, 4)  # fitted on a strided subset, still deterministic
    assert torch.equal(t, kmeans_table(big.clone(), 4)) and float(t.min()) < -1.0 < 1.0 < float(t.max())


LEAVES = {
    "linear": (lambda: nn.Linear(32, 12), (6, 32)),
    "conv2d": (lambda: nn.Conv2d(4, 8, 3, padding=1), (2, 4, 9, 9)),
    "depthwise": (lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), (2, 8, 6, 6)),
}


@pytest.mark.parametrize("name", list(LEAVES))
@pytest.mark.parametrize("cfg", [
    LayerConfig(weight_bits=3, codebook=True),
    LayerConfig(weight_bits=4, codebook=True, sparsity=0.6),                 # bitmask
    LayerConfig(weight_bits=2, codebook=True, sparsity=0.97),                # CSR
    LayerConfig(weight_bits=5, codebook=True, pattern="1:4"),                # N:M
    LayerConfig(weight_bits=8, codebook=True, act_bits=8),                   # fp32 kernel, 8-bit activations
])
def test_codec_and_deploy_reproduce_the_train_form(name: str, cfg: LayerConfig) -> None:
    factory, xshape = LEAVES[name]
    if cfg.nm is not None and name == "depthwise":
        pytest.skip("9 inputs per output: not divisible by 4")
    torch.manual_seed(0)
    leaf = factory()
    if cfg.sparsity > 0:
        attach_mask(leaf, cfg)
    attach_quant(leaf, cfg)
    x = torch.randn(xshape)
    calibrate(leaf, x)
    leaf.eval()
    raw = leaf.parametrizations["weight"].original
    mask = getattr(leaf.parametrizations["weight"][0], "mask", None) if cfg.sparsity > 0 else None
    tensors = encode(raw, mask, cfg)
    assert set(tensors) >= {"codes", "codebook"} and "scale" not in tensors
    assert sum(t.numel() * t.element_size() for t in tensors.values()) == storage_nbytes(tuple(raw.shape), cfg)
    with torch.no_grad():
        assert torch.equal(decode(tensors, tuple(raw.shape), cfg), leaf.weight)
        dep = to_deploy(leaf, cfg)
        assert dep.kernel != "int8"
        if cfg.act_bits == 8:
            assert "codebook" in (dep.fallback_reason or "")
            tol = float(dep.act_out[0]) * 1.01
        else:
            tol = 1e-5 * (1 + float(leaf(x).abs().max()))
        assert (dep(x) - leaf(x)).abs().max() <= tol
    with pytest.raises(PolicyError, match="codebook"):
        decode_codes(tensors, tuple(raw.shape), cfg)


def test_policy_rejects_a_codebook_without_integer_codes() -> None:
    with pytest.raises(PolicyError, match=r"codebook needs integer weight codes.*weight_bits 16"):
        LayerConfig(weight_bits=16, codebook=True)
    with pytest.raises(PolicyError, match="codebook must be true or false"):
        LayerConfig(weight_bits=4, codebook="yes")  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match=r"layers\.fc1.*codebook"):
        Policy.from_dict({"default": {"weight_bits": 4, "codebook": True}, "layers": {"fc1": {"weight_bits": 32}}})
    p = Policy.from_dict({"default": {"weight_bits": 3, "codebook": True}})
    assert Policy.from_dict(p.to_dict()) == p


def test_whole_model_size_is_exact_reloads_and_is_timed_as_shipped(tmp_path) -> None:
    from autocompress.artifact import load_artifact, save_artifact

    m = create_model("tiny-resdw-cnn").eval()
    x = MODELS.get("tiny-resdw-cnn").example_input(4)
    p = Policy.from_dict({"default": {"weight_bits": 3, "codebook": True, "sparsity": 0.5}})
    deployed = compress(m, p, form="deploy", example_input=x)
    train = compress(copy.deepcopy(m), p, form="train", example_input=x).eval()
    info = save_artifact(deployed, p, tmp_path / "m.safetensors", x)
    assert info.tensor_bytes == size_bytes(m, p, x)
    again = load_artifact(tmp_path / "m.safetensors", create_model("tiny-resdw-cnn"))
    with torch.no_grad():
        torch.testing.assert_close(again(x), train(x), rtol=1e-5, atol=1e-5)
    leaves = plan(m, p, x)
    assert all(q.codebook and q.kernel != "int8" for q in leaves if q.weight_bits <= 8)
    even = [leaf_key(q) for q in plan(m, Policy.from_dict({"default": {"weight_bits": 3, "sparsity": 0.5}}), x)]
    assert not set(even) & {leaf_key(q) for q in leaves}  # timed apart from even levels
    mod, _ = deploy_leaf(next(q for q in plan(m, Policy.from_dict(
        {"default": {"weight_bits": 4, "act_bits": 8, "codebook": True}}), x) if q.weight_bits <= 8))
    assert mod.kernel == "fp32" and mod.cfg.codebook  # the profiler times what ships


SPACE = """
rules:
  - layers: default
    weight_bits: [3, 4, 32]
    codebook: true
"""


def test_space_rule_turns_codebooks_on_for_integer_choices_only() -> None:
    m = create_model("tiny-mlp")
    x = MODELS.get("tiny-mlp").example_input(4)
    bound = SearchSpace.from_yaml(SPACE, "t.yaml").bind(layers(m, x), channel_groups(m, x))
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        policy = bound.sample(study.ask())
        for _, cfg in policy.layers:
            assert cfg.codebook == (cfg.weight_bits <= 8)
            seen.add(cfg.codebook)
    assert seen == {True, False}
    with pytest.raises(ConfigError, match="codebook needs some weight_bits of 2..8"):
        SearchSpace.from_yaml(SPACE.replace("[3, 4, 32]", "[16, 32]"), "t.yaml")
    with pytest.raises(ConfigError, match="codebook"):
        SearchSpace.from_yaml(SPACE.replace("codebook: true", "codebook: maybe"), "t.yaml")
