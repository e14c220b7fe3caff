"""Artifacts of models with several inputs: the header records every input, loading rebuilds them."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autocompress import Policy, compress, load_artifact, save_artifact, size_bytes
from autocompress.artifact import read_header
from autocompress.errors import ArtifactError


class TwoInputs(nn.Module):
    """Image features and token ids, fused."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.emb = nn.Embedding(20, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.a(x) + self.emb(t).mean(1)))


def _setup() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor], Policy]:
    torch.manual_seed(0)
    x = (torch.randn(16, 8), torch.randint(0, 20, (16, 5)))
    policy = Policy.from_dict({"layers": {"a": {"weight_bits": 8, "act_bits": 8}, "head": {"weight_bits": 4}}})
    return TwoInputs().eval(), x, policy


def test_two_input_model_round_trips(tmp_path) -> None:
    model, x, policy = _setup()
    deploy = compress(model, policy, form="deploy", example_input=x)
    info = save_artifact(deploy, policy, tmp_path / "m.safetensors", x)
    assert info.tensor_bytes == size_bytes(model, policy, x)
    header = read_header(tmp_path / "m.safetensors")
    assert json.loads(header["input_shapes"]) == [[8], [5]]
    assert json.loads(header["input_dtypes"]) == ["float32", "int64"]
    back = load_artifact(tmp_path / "m.safetensors", TwoInputs())
    with torch.no_grad():
        torch.testing.assert_close(back(*x), deploy(*x))


def test_example_input_of_another_kind_is_refused(tmp_path) -> None:
    model, x, policy = _setup()
    deploy = compress(model, policy, form="deploy", example_input=x)
    with pytest.raises(ArtifactError, match="tuple of tensors"):
        save_artifact(deploy, policy, tmp_path / "m.safetensors", [x[0], x[1]])  # type: ignore[arg-type]
    assert not (tmp_path / "m.safetensors").exists()
