"""Tied weights (an embedding shared with the output projection): the size model counts a
shared tensor once, as the artifact stores it, whether or not one of its owners is compressed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autocompress import Policy, compress, load_artifact, save_artifact, size_bytes
from autocompress.artifact import state_bytes
from autocompress.cost._plan import meta_copy


class TiedLM(nn.Module):
    """Embedding tied to the output layer; a block called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 32)
        self.block = nn.Linear(32, 32)
        self.ln = nn.LayerNorm(32)
        self.out = nn.Linear(32, 50, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        h = self.emb(t)
        h = self.ln(F.gelu(self.block(h)) + h)
        h = F.gelu(self.block(h)) + h
        return self.out(h).mean(1)


def _model() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return TiedLM().eval(), torch.randint(0, 50, (8, 7))


def test_meta_copy_keeps_ties() -> None:
    model, _ = _model()
    meta = meta_copy(model)
    assert meta.out.weight is meta.emb.weight
    assert meta.emb.weight.device.type == "meta"
    assert model.out.weight is model.emb.weight and model.emb.weight.device.type == "cpu"  # untouched


@pytest.mark.parametrize("layers", [
    {},                                                    # nothing compressed: stored once
    {"block": {"weight_bits": 16}},                        # another layer compressed
    {"block": {"weight_bits": 8, "act_bits": 8}},
    {"out": {"weight_bits": 4}},                           # the tied layer itself compressed
    {"out": {"sparsity": 0.5, "pattern": "2:4"}, "block": {"weight_bits": 3, "codebook": True}},
])
def test_size_model_counts_a_tied_weight_once(layers: dict, tmp_path) -> None:
    model, x = _model()
    policy = Policy.from_dict({"layers": layers})
    deploy = compress(model, policy, form="deploy", example_input=x)
    info = save_artifact(deploy, policy, tmp_path / "m.safetensors", x)
    assert size_bytes(model, policy, x) == info.tensor_bytes
    if not layers:
        assert info.tensor_bytes == state_bytes(model)  # 50 x 32 floats once, not twice
    back = load_artifact(tmp_path / "m.safetensors", TiedLM())
    with torch.no_grad():
        torch.testing.assert_close(back(x), deploy(x))
