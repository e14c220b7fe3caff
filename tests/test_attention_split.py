from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from autocompress.errors import GraphError
from autocompress.models import SplitMultiheadAttention, create_model, split_attention


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


class Holder(nn.Module):
    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        self.mha = mha


def _pair(batch_first: bool, bias: bool) -> tuple[nn.MultiheadAttention, nn.Module]:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, bias=bias, batch_first=batch_first)
    holder = Holder(copy.deepcopy(mha))
    assert split_attention(holder) == 1
    assert isinstance(holder.mha, SplitMultiheadAttention)
    return mha, holder.mha


def _close(a: torch.Tensor | None, b: torch.Tensor | None) -> None:
    assert (a is None) == (b is None)
    if a is not None:
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_standalone_matches(batch_first: bool, bias: bool, train: bool) -> None:
    ref, new = _pair(batch_first, bias)
    ref.train(train)
    new.train(train)
    b, t, s = 3, 4, 5
    shape_q = (b, t, 8) if batch_first else (t, b, 8)
    shape_k = (b, s, 8) if batch_first else (s, b, 8)
    q, k, v = _randn(*shape_q, seed=1), _randn(*shape_k, seed=2), _randn(*shape_k, seed=3)
    kpm = torch.zeros(b, s, dtype=torch.bool)
    kpm[0, -2:] = True
    causal = nn.Transformer.generate_square_subsequent_mask(t)
    bool_mask = torch.rand(t, s, generator=torch.Generator().manual_seed(4)) > 0.7
    bool_mask[:, 0] = False
    head_mask = _randn(b * 2, t, s, seed=5)
    cases = [
        {},
        {"need_weights": False},
        {"key_padding_mask": kpm},
        {"key_padding_mask": kpm, "need_weights": False},
        {"attn_mask": bool_mask},
        {"attn_mask": head_mask, "average_attn_weights": False},
        {"attn_mask": head_mask, "key_padding_mask": kpm.float() * -1e4, "need_weights": False},
    ]
    for kw in cases:
        _close(ref(q, k, v, **kw)[0], new(q, k, v, **kw)[0])
        _close(ref(q, k, v, **kw)[1], new(q, k, v, **kw)[1])
    sq = _randn(*((b, t, 8) if batch_first else (t, b, 8)), seed=6)
    for kw in ({"attn_mask": causal[:t, :t], "is_causal": True, "need_weights": False},
               {"attn_mask": causal[:t, :t], "is_causal": True}):
        out_r, w_r = ref(sq, sq, sq, **kw)
        out_n, w_n = new(sq, sq, sq, **kw)
        _close(out_r, out_n)
        _close(w_r, w_n)


def test_unbatched_matches() -> None:
    ref, new = _pair(True, True)
    x = _randn(4, 8)
    for kw in ({}, {"need_weights": False}, {"average_attn_weights": False}):
        _close(ref(x, x, x, **kw)[0], new(x, x, x, **kw)[0])
        _close(ref(x, x, x, **kw)[1], new(x, x, x, **kw)[1])


def test_projections_are_linear_copies() -> None:
    ref, new = _pair(True, True)
    for i, p in enumerate((new.q_proj, new.k_proj, new.v_proj)):
        assert type(p) is nn.Linear
        torch.testing.assert_close(p.weight, ref.in_proj_weight[8 * i : 8 * (i + 1)])
    assert type(new.out_proj) is nn.Linear
    keys = set(new.state_dict())
    assert keys == {f"{p}_proj.{t}" for p in ("q", "k", "v", "out") for t in ("weight", "bias")}


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
def test_inside_transformer_encoder(batch_first: bool, train: bool) -> None:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=batch_first)
    ref = nn.TransformerEncoder(layer, 2, enable_nested_tensor=batch_first)
    new = copy.deepcopy(ref)
    assert split_attention(new) == 2
    ref.train(train)
    new.train(train)
    x = _randn(3, 5, 8) if batch_first else _randn(5, 3, 8)
    kpm = torch.zeros(3, 5, dtype=torch.bool)
    kpm[1, -2:] = True
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    with torch.no_grad():
        _close(ref(x), new(x))
        _close(ref(x, mask=mask, is_causal=True), new(x, mask=mask, is_causal=True))
        out_r = ref(x, src_key_padding_mask=kpm)
        out_n = new(x, src_key_padding_mask=kpm)
    keep = ~kpm if batch_first else ~kpm.T  # the nested fast path zeroes padded rows
    _close(out_r[keep], out_n[keep])
    # with grad enabled too (the fast path checks requires_grad)
    _close(ref(x), new(x))
    new(x).sum().backward()
    assert new.layers[0].self_attn.q_proj.weight.grad is not None


def test_tiny_mha_model() -> None:
    ref = create_model("tiny-mha").eval()
    new = copy.deepcopy(ref)
    assert split_attention(new) == 1
    x = _randn(2, 6, 8)
    _close(ref(x), new(x))
    assert split_attention(new) == 0


def test_shared_module_replaced_once() -> None:
    mha = nn.MultiheadAttention(4, 1)
    model = nn.ModuleDict({"a": mha, "b": mha})
    assert split_attention(model) == 1
    assert model["a"] is model["b"]


def test_unsupported_raise_graph_error_naming_module() -> None:
    model = Holder(nn.MultiheadAttention(8, 2, kdim=4, vdim=4))
    with pytest.raises(GraphError, match=r"'mha'.*kdim=4"):
        split_attention(model)
    assert isinstance(model.mha, nn.MultiheadAttention)
    with pytest.raises(GraphError, match=r"'mha'.*add_bias_kv"):
        split_attention(Holder(nn.MultiheadAttention(8, 2, add_bias_kv=True)))


def test_meta() -> None:
    model = Holder(nn.MultiheadAttention(8, 2, batch_first=True, device="meta"))
    split_attention(model)
    x = torch.empty(2, 3, 8, device="meta")
    assert model.mha(x, x, x)[0].shape == (2, 3, 8)


def test_layer_discovery_sees_the_projections_compress_works_on() -> None:
    from autocompress import compress
    from autocompress.graph import channel_groups, layers
    from autocompress.policy import Policy

    model = create_model("tiny-mha").eval()
    x = _randn(2, 6, 8)
    infos = {i.name: i for i in layers(model, x)}
    proj = ["mha.q_proj", "mha.k_proj", "mha.v_proj", "mha.out_proj"]
    assert list(infos) == ["inp", *proj, "head"]
    assert all(infos[n].macs == 6 * 16 * 16 for n in proj)  # per sample, like every layer
    assert isinstance(model.mha, nn.MultiheadAttention)  # the user's model is left as it was
    groups = channel_groups(model, x)  # traces: split attention is kept whole, not traced into;
    with_proj = [g for g in groups if any(n in g.producers for n in proj)]  # its heads are one group
    assert [(g.producers, g.heads, g.channels) for g in with_proj] == [(tuple(proj[:3]), "mha", 2)]
    small = compress(model, Policy.from_dict({"layers": {n: {"weight_bits": 4} for n in proj}}),
                     form="deploy", example_input=x)
    assert all(type(small.get_submodule(n)).__name__ == "DeployLeaf" for n in proj)
