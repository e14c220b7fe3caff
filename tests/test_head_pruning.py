"""Structured transformer pruning: whole attention heads and FFN neurons, physically removed.

A head group's channel is one head (its rows of q, k, v and its columns of the output
projection); the module's head count follows. Pruning a set of heads is exactly the model with
those heads' output-projection columns zeroed, which is what the tests compare against.
"""

from __future__ import annotations

import copy

import pytest
import torch
from _bert import tiny_bert
from torch import nn

from autocompress import Policy, compress, file_bytes, save_artifact
from autocompress.errors import GraphError, PolicyError
from autocompress.graph import channel_groups
from autocompress.models import MODELS, create_model


def _model(name: str) -> tuple[nn.Module, torch.Tensor]:
    if name == "hf-bert":
        x = torch.randint(1, 100, (3, 10))
        x[0, 6:] = 0
        return tiny_bert(), x
    return create_model(name, seed=0).eval(), MODELS.get(name).example_input(batch=3)


def _head_groups(model: nn.Module, x: torch.Tensor):
    return [g for g in channel_groups(model, x) if g.heads is not None]


CASES = ["tiny-transformer", "tiny-mha", "hf-bert"]


@pytest.mark.parametrize("name", CASES)
def test_attention_heads_are_groups(name: str) -> None:
    model, x = _model(name)
    groups = _head_groups(model, x)
    assert groups, f"{name}: no head group"
    for g in groups:
        assert len(g.producers) == 3 and g.blocked_by is None
        assert g.channels in (2, 4)  # heads, not features
        assert {u.block for u in g.uses} == {32 // g.channels if name != "tiny-mha" else 16 // g.channels}


def _heads_policy(groups, ratio: float) -> Policy:
    layers = {p: {"pattern": "channel", "sparsity": ratio} for g in groups for p in g.producers}
    return Policy.from_dict({"layers": layers})


@pytest.mark.parametrize("name", CASES)
def test_pruning_heads_equals_zeroing_their_output_columns(name: str) -> None:
    model, x = _model(name)
    groups = _head_groups(model, x)
    pruned = compress(model, _heads_policy(groups, 0.5), example_input=x).eval()
    reference = compress(model, Policy(), example_input=x).eval()  # normalised (split attention)
    for g in groups:
        head = g.channels
        q = pruned.get_submodule(g.producers[0])
        out_name = next(u.module for u in g.uses if u.role == "in")
        block = next(u.block for u in g.uses if u.role == "in")
        assert q.out_features == head // 2 * block
        assert pruned.get_submodule(out_name).in_features == head // 2 * block
        # which heads were kept: rows of q that survive, matched against the original rows
        w0, w1 = reference.get_submodule(g.producers[0]).weight.detach(), q.weight.detach()
        rows = [w1[i * block:(i + 1) * block] for i in range(head // 2)]
        kept = [h for h in range(head) if any(torch.equal(w0[h * block:(h + 1) * block], r) for r in rows)]
        assert len(kept) == head // 2
        out = reference.get_submodule(out_name)
        with torch.no_grad():
            for h in set(range(head)) - set(kept):
                out.weight[:, h * block:(h + 1) * block] = 0
    with torch.no_grad():
        got, want = pruned(x), reference(x)
    assert torch.allclose(got, want, atol=1e-5), float((got - want).abs().max())
    assert not torch.allclose(got, model(x), atol=1e-4), "heads really were removed"


@pytest.mark.parametrize("name", CASES)
def test_head_and_ffn_pruned_deploy_form_sizes_exactly_and_runs_in_onnx_runtime(name: str, tmp_path) -> None:
    model, x = _model(name)
    groups = [g for g in channel_groups(model, x) if g.blocked_by is None and (g.heads or "ff" in g.producers[0]
                                                                                 or "intermediate" in g.producers[0])]
    raw = {p: {"pattern": "channel", "sparsity": 0.5, "weight_bits": 8, "act_bits": 8, "act_dynamic": True}
           for g in groups for p in g.producers}
    policy = Policy.from_dict({"layers": raw})
    deploy = compress(model, policy, form="deploy", example_input=x)
    info = save_artifact(deploy, policy, tmp_path / "m.safetensors", x)
    assert info.file_bytes == file_bytes(model, policy, x)
    pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'autocompress[onnx]'")
    from autocompress.runtime import OrtModel, export_onnx

    path = export_onnx(deploy, tmp_path / "m.onnx", x)
    with torch.no_grad():
        ref = deploy(x)
    assert float((OrtModel(path)(x) - ref).abs().max()) <= 0.02 * float(ref.abs().max())


def test_hugging_face_ffn_neurons_are_groups_without_fx() -> None:
    model, x = _model("hf-bert")
    ffn = [g for g in channel_groups(model, x) if g.producers[0].endswith("intermediate.dense")]
    assert len(ffn) == 2 and all(g.channels == 64 and g.blocked_by is None for g in ffn)
    policy = Policy.from_dict({"layers": {g.producers[0]: {"pattern": "channel", "sparsity": 0.75} for g in ffn}})
    small = compress(model, policy, example_input=x)
    layer = small.bert.encoder.layer[0]
    assert layer.intermediate.dense.out_features == 16 and layer.output.dense.in_features == 16


def test_a_per_head_mask_follows_the_kept_heads() -> None:
    from autocompress.models import SplitMultiheadAttention

    torch.manual_seed(0)
    mha = SplitMultiheadAttention(16, 4, batch_first=True).eval()
    x = torch.randn(2, 5, 16)
    mask = torch.randn(2 * 4, 5, 5)
    ref = copy.deepcopy(mha)
    keep = [0, 2]
    block = 4
    rows = [h * block + j for h in keep for j in range(block)]
    with torch.no_grad():
        for p in (mha.q_proj, mha.k_proj, mha.v_proj):
            p.weight = nn.Parameter(p.weight[rows])
            p.bias = nn.Parameter(p.bias[rows])
        mha.out_proj.weight = nn.Parameter(mha.out_proj.weight[:, rows])
        mha.prune_heads_to(keep)
        for h in (1, 3):
            ref.out_proj.weight[:, h * block:(h + 1) * block] = 0
        got, _ = mha(x, x, x, attn_mask=mask, need_weights=False)
        want, _ = ref(x, x, x, attn_mask=mask, need_weights=False)
    assert torch.allclose(got, want, atol=1e-5)


def test_q_k_v_must_agree_and_other_layers_are_refused() -> None:
    model, x = _model("tiny-transformer")
    with pytest.raises(PolicyError, match="different ratios"):
        compress(model, Policy.from_dict({"layers": {"blocks.0.attn.q": {"pattern": "channel", "sparsity": 0.5}}}),
                 example_input=x)
    with pytest.raises(PolicyError, match="blocks.0.attn.o"):
        compress(model, Policy.from_dict({"layers": {"blocks.0.attn.o": {"pattern": "channel", "sparsity": 0.5}}}),
                 example_input=x)


class _HardCoded(nn.Module):
    """Attention whose forward hard-codes its width: cannot lose heads."""

    def __init__(self) -> None:
        super().__init__()
        self.num_heads = 2
        self.q, self.k, self.v, self.o = (nn.Linear(8, 8) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (p(x).view(b, t, 2, 4).transpose(1, 2) for p in (self.q, self.k, self.v))
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.o(y.transpose(1, 2).reshape(b, t, 8))


def test_an_attention_that_hard_codes_its_width_is_named() -> None:
    model = nn.Sequential(_HardCoded())
    x = torch.randn(2, 3, 8)
    raw = {f"0.{p}": {"pattern": "channel", "sparsity": 0.5} for p in "qkv"}
    with pytest.raises(GraphError, match=r"attention heads of '0'.*head count"):
        compress(model, Policy.from_dict({"layers": raw}), example_input=x)


def test_the_search_space_offers_head_ratios() -> None:
    from autocompress.graph import layers
    from autocompress.search.space import SearchSpace

    model, x = _model("hf-bert")
    space = SearchSpace.from_dict({"rules": [
        {"layers": "re:.*attention\\.self\\.(query|key|value)", "patterns": ["channel"],
         "channel_ratios": [0.0, 0.25, 0.5]},
        {"layers": "re:.*intermediate\\.dense", "patterns": ["channel"], "channel_ratios": [0.0, 0.5]},
    ]})
    bound = space.bind(layers(model, x), channel_groups(model, x))
    assert len(bound.channels) == 4
    heads = [c for c in bound.channels if len(c.producers) == 3]
    assert len(heads) == 2 and all(c.channels == 4 and c.blocks == (8,) for c in heads)
