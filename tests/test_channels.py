from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from autocompress.errors import GraphError, PolicyError
from autocompress.graph import ChannelGroup, channel_groups
from autocompress.models import MODELS, create_model, split_attention
from autocompress.techniques.channels import kept_channels, prune_channels

TINY = sorted(n for n in MODELS.names() if MODELS.get(n).tiny)


class SEFlatNet(nn.Module):
    """Conv -> SE (Linear gate, broadcast mul) -> conv -> max pool -> view-flatten -> Linear."""

    def __init__(self, gate_by_index: bool = False) -> None:
        super().__init__()
        self.gate_by_index = gate_by_index
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Linear(8, 4)
        self.fc2 = nn.Linear(4, 8)
        self.conv2 = nn.Conv2d(8, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(6 * 3 * 3, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        b, c = y.shape[:2]
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(y.mean(dim=(2, 3))))))
        gate = s[:, :, None, None] if self.gate_by_index else s.view(b, c, 1, 1)
        y = self.pool(torch.relu(self.conv2(y * gate)))
        return self.head(y.view(y.size(0), -1))


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(1))


def _tiny(name: str) -> tuple[nn.Module, torch.Tensor]:
    return create_model(name).eval(), MODELS.get(name).example_input(2)


def _by_producer(groups: list[ChannelGroup]) -> dict[str, ChannelGroup]:
    return {p: g for g in groups for p in g.producers}


def _all_prunable(groups: list[ChannelGroup], ratio: float) -> dict[str, float]:
    return {p: ratio for g in groups if g.prunable for p in g.producers}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_kept_channels() -> None:
    assert kept_channels(8, 0.0) == 8
    assert kept_channels(8, 0.5) == 4
    assert kept_channels(10, 0.25) == 8  # round(2.5) == 2 (banker's rounding)
    assert kept_channels(4, 0.99) == 1


def test_groups_resdw() -> None:
    model, x = _tiny("tiny-resdw-cnn")
    g = _by_producer(channel_groups(model, x))
    res = g["stem"]
    assert res.producers == ("stem", "block1.project", "block2.project") and res.prunable
    assert {"bn", "block1.bn3", "block2.bn3", "block1.expand", "head"} <= set(res.members)
    assert ("head", "in", 0, 4) in {(u.module, u.role, u.offset, u.block) for u in res.uses}
    exp = g["block1.expand"]
    assert exp.producers == ("block1.expand",) and exp.channels == 16 and exp.prunable
    assert {"block1.bn1", "block1.dw", "block1.bn2", "block1.project"} <= set(exp.members)
    assert "block1.dw" not in g  # a depthwise conv follows its input's group
    assert g["head"].blocked_by is not None and "model output" in g["head"].blocked_by


def test_groups_concat_offsets() -> None:
    model, x = _tiny("tiny-concat-cnn")
    g = _by_producer(channel_groups(model, x))
    assert g["a"].channels == 6 and g["b"].channels == 4 and g["a"] != g["b"]
    assert [(u.module, u.offset) for u in g["a"].uses if u.role == "in"] == [("mix", 0)]
    assert [(u.module, u.offset) for u in g["b"].uses if u.role == "in"] == [("mix", 6)]
    assert g["mix"].prunable and "head" in g["mix"].members


def test_groups_shared_module() -> None:
    model, x = _tiny("tiny-shared-mlp")
    g = _by_producer(channel_groups(model, x))
    assert g["inp"] is g["shared"] and g["inp"].producers == ("inp", "shared")
    assert g["inp"].prunable and g["inp"].members == ("inp", "shared", "out")


def test_groups_transformer() -> None:
    model, x = _tiny("tiny-transformer")
    g = _by_producer(channel_groups(model, x))
    # per feature the view into heads blocks q/k/v; whole heads are one group (test_head_pruning)
    heads = g["blocks.0.attn.q"]
    assert heads is g["blocks.0.attn.k"] is g["blocks.0.attn.v"] and heads.prunable
    assert heads.heads == "blocks.0.attn" and heads.channels == 4
    assert g["blocks.0.ff1"].prunable and g["blocks.1.ff1"].prunable
    stream = g["blocks.0.ff2"].blocked_by
    assert stream is not None and "Embedding" in stream
    mha = _by_producer(channel_groups(*_tiny("tiny-mha")))["inp"].blocked_by
    assert mha is not None and "MultiheadAttention" in mha


@pytest.mark.parametrize("gate_by_index", [False, True])
def test_groups_se_and_flatten(gate_by_index: bool) -> None:
    g = _by_producer(channel_groups(SEFlatNet(gate_by_index), _x(2, 3, 6, 6)))
    assert g["conv"] is g["fc2"] and g["conv"].prunable  # SE gate couples with its input
    assert g["fc1"].prunable and g["fc1"].members == ("fc1", "fc2")
    assert ("head", "in", 0, 9) in {(u.module, u.role, u.offset, u.block) for u in g["conv2"].uses}


@pytest.mark.parametrize(
    ("norm", "prunable"),
    [(nn.GroupNorm(1, 8), True), (nn.GroupNorm(8, 8), True), (nn.GroupNorm(2, 8), False)],
)
def test_group_norm(norm: nn.GroupNorm, prunable: bool) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), norm, nn.ReLU(), nn.Conv2d(8, 4, 1))
    x = _x(2, 3, 6, 6)
    assert _by_producer(channel_groups(model, x))["0"].prunable == prunable
    if prunable:
        prune_channels(model, x, {"0": 0.5})
        assert norm.num_channels == 4 and model(x).shape == (2, 4, 4, 4)


def test_hard_coded_view_and_input_add_block() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 6), nn.Linear(4, 4), nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            r = self.b(x) + x
            return self.c(self.a(x).view(-1, 6)) + r.sum(dim=1, keepdim=True)

    g = _by_producer(channel_groups(Bad(), _x(3, 4)))
    assert "hard-codes the channel size 6" in (g["a"].blocked_by or "")
    assert "combines these channels with model input 'x'" in (g["b"].blocked_by or "")


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_prune_every_tiny_model(name: str, ratio: float) -> None:
    model, x = _tiny(name)
    before, out_shape = _params(model), model(x).shape
    ratios = _all_prunable(channel_groups(model, x), ratio)
    groups = {g.producers[0]: g.channels for g in channel_groups(model, x)}
    kept = prune_channels(model, x, ratios)
    with torch.no_grad():
        assert model(x).shape == out_shape
    if any(len(k) < groups[p] for p, k in kept.items()):  # 2 heads at 0.25 keep both
        assert _params(model) < before
        assert all(k == sorted(k) and len(set(k)) == len(k) for k in kept.values())
    meta = create_model(name).to("meta")
    meta_kept = prune_channels(meta, x, ratios)
    assert {k: len(v) for k, v in meta_kept.items()} == {k: len(v) for k, v in kept.items()}
    real_shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in meta.state_dict().items()} == real_shapes
    assert str(meta) == str(model)


@pytest.mark.parametrize("name", TINY)
def test_ratio_zero_is_exact(name: str) -> None:
    model, x = _tiny(name)
    ref = copy.deepcopy(model)
    split_attention(ref)  # prune_channels splits nn.MultiheadAttention (same function, other rounding)
    prune_channels(model, x, _all_prunable(channel_groups(model, x), 0.0))
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), ref.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize(
    ("name", "ratios"),
    [
        ("tiny-mlp", {"fc1": 0.5, "fc2": 0.25}),
        ("tiny-concat-cnn", {"a": 0.5, "b": 0.5, "mix": 0.25}),
        ("tiny-shared-mlp", {"inp": 0.5, "shared": 0.5}),
        ("tiny-transformer", {"blocks.0.ff1": 0.5, "blocks.1.ff1": 0.75}),
        ("se-flat", {"conv": 0.5, "fc2": 0.5, "fc1": 0.5, "conv2": 0.5}),
    ],
)
def test_pruning_equals_masking(name: str, ratios: dict[str, float]) -> None:
    model, x = (SEFlatNet(), _x(2, 3, 6, 6)) if name == "se-flat" else _tiny(name)
    masked = copy.deepcopy(model)
    groups = _by_producer(channel_groups(model, x))
    kept = prune_channels(model, x, ratios)
    assert _params(model) < _params(masked)
    with torch.no_grad():
        for p in ratios:
            gone = sorted(set(range(groups[p].channels)) - set(kept[groups[p].producers[0]]))
            masked.get_parameter(f"{p}.weight")[gone] = 0
            bias = getattr(masked.get_submodule(p), "bias", None)
            if bias is not None:
                bias[gone] = 0
        torch.testing.assert_close(model(x), masked(x), rtol=1e-5, atol=1e-6)


def test_importance_keeps_strongest_and_is_deterministic() -> None:
    model, x = _tiny("tiny-mlp")
    with torch.no_grad():
        w = model.get_parameter("fc1.weight")
        w[:] = 0.01
        w[[3, 7, 40]] = 1.0
    kept = prune_channels(copy.deepcopy(model), x, {"fc1": 45 / 48})
    assert kept == {"fc1": [3, 7, 40]}
    a, b = create_model("tiny-resdw-cnn"), create_model("tiny-resdw-cnn")
    x = MODELS.get("tiny-resdw-cnn").example_input(2)
    r = {"block1.expand": 0.5, "stem": 0.25, "block1.project": 0.25, "block2.project": 0.25}
    assert prune_channels(a, x, r) == prune_channels(b, x, r)
    assert all(
        torch.equal(p, q)
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_groups_leave_model_state_alone() -> None:
    model = create_model("tiny-resdw-cnn").train()
    bn1, bn2 = model.get_submodule("block1.bn1").eval(), model.get_submodule("block2.bn1")
    stats = copy.deepcopy(model.state_dict())
    channel_groups(model, MODELS.get("tiny-resdw-cnn").example_input(2))
    assert model.training and not bn1.training and bn2.training
    assert all(torch.equal(stats[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(
    ("name", "ratios", "match"),
    [
        ("tiny-resdw-cnn", {"stem": 0.5, "block1.project": 0.25, "block2.project": 0.5},
         "block1.project=0.25"),
        ("tiny-resdw-cnn", {"stem": 0.5}, r"block1.project=0 \(not set\)"),
        ("tiny-resdw-cnn", {"block1.dw": 0.5}, "'block1.expand'; set the ratio there"),
        ("tiny-transformer", {"blocks.0.attn.q": 0.5}, "ask different ratios"),
        ("tiny-mlp", {"fc3": 0.5}, "model output"),
        ("tiny-mlp", {"fc9": 0.5}, "no layer 'fc9'"),
        ("tiny-mlp", {"fc1": 1.0}, r"must be in \[0, 1\)"),
    ],
)
def test_errors(name: str, ratios: dict[str, float], match: str) -> None:
    model, x = _tiny(name)
    ref = copy.deepcopy(model)
    with pytest.raises(PolicyError, match=match):
        prune_channels(model, x, ratios)
    assert str(model) == str(ref)  # nothing changed


def test_untraceable_model_raises_graph_error() -> None:
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) if x.sum() > 0 else x

    with pytest.raises(GraphError, match="Exclude channel pruning"):
        channel_groups(Branchy(), _x(2, 4))
