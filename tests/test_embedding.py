"""Embedding compression: an nn.Embedding's table as 2..8-bit codes with a scale per row (or per
table), float16 or a codebook; decoded on lookup in the deploy form and in ONNX Runtime; exact
bytes; the policy's default does not reach it; fields that do not apply are refused by name."""

from __future__ import annotations

import pytest
import torch
from _artifacts import ships_exactly
from torch import nn

from autocompress import Policy, compress, layers, size_bytes
from autocompress.errors import PolicyError
from autocompress.models import MODELS, create_model
from autocompress.techniques.deploy import DeployLeaf

CONFIGS = {
    "w4 per row": ({"weight_bits": 4}, "lookup"),
    "w8 asymmetric": ({"weight_bits": 8, "symmetric": False}, "lookup"),
    "w8 per table": ({"weight_bits": 8, "granularity": "per_tensor"}, "lookup"),
    "w3 codebook": ({"weight_bits": 3, "codebook": True}, "fp32"),
    "fp16": ({"weight_bits": 16}, "fp32"),
}


def _tiny() -> tuple[nn.Module, torch.Tensor]:
    return create_model("tiny-transformer", seed=0).eval(), MODELS.get("tiny-transformer").example_input(batch=3)


@pytest.mark.parametrize("cname", sorted(CONFIGS))
def test_the_table_ships_as_codes_and_the_deploy_form_matches_the_train_form(cname: str, tmp_path) -> None:
    model, x = _tiny()
    raw, kernel = CONFIGS[cname]
    policy = Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}, "layers": {"embed": raw}})
    train = compress(model, policy, example_input=x).eval()
    deploy = compress(model, policy, form="deploy", example_input=x)
    assert isinstance(deploy.embed, DeployLeaf) and deploy.embed.kernel == kernel
    assert "weight" not in deploy.embed.state_dict()
    with torch.no_grad():
        assert torch.equal(deploy(x), train(x))
        assert not torch.equal(deploy.embed(x), model.embed(x)), "the table really is quantised"
    ships_exactly(model, deploy, policy, x, tmp_path / "m.safetensors", create_model("tiny-transformer", seed=5))


def test_four_bit_rows_are_an_eighth_of_the_table() -> None:
    model, x = _tiny()
    fp32 = size_bytes(model, Policy(), x)  # tensor bytes (the file adds a header)
    w4 = size_bytes(model, Policy.from_dict({"layers": {"embed": {"weight_bits": 4}}}), x)
    table = 50 * 32
    assert fp32 - w4 == table * 4 - (table // 2 + 50 * 4)  # fp32 values -> packed 4-bit codes + a scale per row


def test_the_default_does_not_reach_an_embedding_but_a_pattern_does() -> None:
    model, x = _tiny()
    assert layers(model, x)[0].kind == "embedding"
    plain = compress(model, Policy.from_dict({"default": {"weight_bits": 4, "act_bits": 8}}), form="deploy",
                     example_input=x)
    assert isinstance(plain.embed, nn.Embedding)
    by_pattern = compress(model, Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8, "sparsity": 0.5},
                                                   "layers": {"re:emb.*": {"weight_bits": 4}}}),
                          form="deploy", example_input=x)
    assert by_pattern.embed.cfg.weight_bits == 4 and by_pattern.embed.cfg.act_bits == 32  # inherited, dropped


@pytest.mark.parametrize(("raw", "field"), [
    ({"weight_bits": 8, "act_bits": 8}, "act_bits 8"),
    ({"sparsity": 0.5}, "sparsity 0.5"),
    ({"pattern": "2:4"}, "sparsity"),
    ({"rank": 4}, "rank 4"),
])
def test_fields_that_do_not_apply_to_a_lookup_are_refused_by_name(raw: dict, field: str) -> None:
    model, x = _tiny()
    with pytest.raises(PolicyError, match=rf"layers\.embed: an nn\.Embedding .*{field}"):
        compress(model, Policy.from_dict({"layers": {"embed": raw}}), example_input=x)


def test_max_norm_embeddings_are_refused() -> None:
    model = nn.Sequential(nn.Embedding(10, 4, max_norm=1.0), nn.Linear(4, 2))
    with pytest.raises(PolicyError, match="max_norm"):
        compress(model, Policy.from_dict({"layers": {"0": {"weight_bits": 8}}}))


def test_onnx_runtime_decodes_only_the_rows_it_looks_up(tmp_path) -> None:
    onnx = pytest.importorskip("onnx", reason="the onnx extra: pip install 'autocompress[onnx]'")
    pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'autocompress[onnx]'")
    import numpy as np
    from onnx import numpy_helper

    from autocompress.runtime import OrtModel, export_onnx

    model, x = _tiny()
    for raw, _ in CONFIGS.values():
        policy = Policy.from_dict({"layers": {"embed": raw}})
        deploy = compress(model, policy, form="deploy", example_input=x)
        path = export_onnx(deploy, tmp_path / "m.onnx", x)
        with torch.no_grad():
            ref = deploy(x)
        assert float((OrtModel(path)(x) - ref).abs().max()) <= 1e-5 * float(ref.abs().max()), raw
        graph = onnx.load(str(path)).graph
        tables = [numpy_helper.to_array(i) for i in graph.initializer if tuple(i.dims) == (50, 32)]
        assert len(tables) == 1
        if raw.get("weight_bits", 32) <= 8 and not raw.get("codebook"):
            assert tables[0].dtype in (np.int8, np.uint8), raw  # the codes, not a decoded fp32 table


def test_search_rule_on_an_embedding_offers_weight_bits_only() -> None:
    from autocompress.graph import channel_groups
    from autocompress.search.space import SearchSpace

    model, x = _tiny()
    space = SearchSpace.from_dict({"rules": [
        {"layers": "default", "weight_bits": [8], "act_bits": [8, 32]},
        {"layers": ["embed"], "weight_bits": [4, 8], "act_bits": [8, 32]},
    ]})
    bound = space.bind(layers(model, x), channel_groups(model, x))
    unit = next(u for u in bound.units if u.layers == ("embed",))
    assert unit.weight_bits == (4, 8) and unit.act_bits == (32,) and unit.ranks == (None,)
    alone = SearchSpace.from_dict({"rules": [{"layers": "default", "weight_bits": [4, 8]}]})
    assert "embed" not in {u.layers[0] for u in alone.bind(layers(model, x), channel_groups(model, x)).units}
