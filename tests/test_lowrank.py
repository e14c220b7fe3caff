from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from autocompress.errors import PolicyError
from autocompress.techniques.lowrank import Factorized, factorize, max_rank, resolve_rank


def _x(*shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(3))


def test_resolve_rank() -> None:
    assert resolve_rank(5, 32, 16) == 5
    assert resolve_rank(0.25, 32, 16) == 4
    assert resolve_rank(1.0, 32, 16) == 16
    assert resolve_rank(0.001, 32, 16) == 1
    with pytest.raises(PolicyError, match="ratio"):
        resolve_rank(1.5, 8, 8)
    with pytest.raises(PolicyError, match="rank"):
        resolve_rank(True, 8, 8)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_full_rank_reproduces(bias: bool) -> None:
    torch.manual_seed(0)
    lin = nn.Linear(12, 9, bias=bias)
    pair = factorize(lin, 9)
    assert isinstance(pair, Factorized) and pair.rank == 9
    assert pair.first.bias is None and (pair.second.bias is not None) == bias
    assert pair.first.weight.shape == (9, 12) and pair.second.weight.shape == (9, 9)
    x = _x(5, 12)
    torch.testing.assert_close(pair(x), lin(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.Conv2d(4, 6, (3, 1), padding=(1, 0), dilation=(2, 1), bias=False),
        nn.Conv1d(5, 7, 3, stride=2, padding=2),
        nn.Conv2d(2, 5, 3, padding="same", padding_mode="reflect"),
    ],
)
def test_conv_full_rank_reproduces_and_keeps_geometry(conv: nn.Module) -> None:
    x = _x(2, conv.in_channels, *([9] * (conv.weight.dim() - 2)))
    r = max_rank(conv)
    pair = factorize(conv, r)
    first, second = pair.first, pair.second
    assert type(first) is type(conv) and type(second) is type(conv)
    assert first.stride == conv.stride and first.padding == conv.padding
    assert first.dilation == conv.dilation and first.padding_mode == conv.padding_mode
    assert first.weight.shape == (r, conv.in_channels, *conv.kernel_size)
    assert second.kernel_size == (1,) * len(conv.kernel_size)
    assert second.weight.shape[:2] == (conv.out_channels, r)
    y = pair(x)
    assert y.shape == conv(x).shape
    torch.testing.assert_close(y, conv(x), atol=1e-4, rtol=1e-4)


def test_error_decreases_with_rank() -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 12, 3, padding=1)
    x = _x(2, 4, 6, 6)
    ref = conv(x)
    errs = [(factorize(conv, r)(x) - ref).norm().item() for r in (1, 3, 6, 12)]
    assert all(a > b for a, b in itertools.pairwise(errs))
    assert errs[-1] < 1e-3


def test_balanced_factors_and_determinism() -> None:
    lin = nn.Linear(10, 6)
    a, b = factorize(lin, 4), factorize(lin, 4)
    assert torch.equal(a.first.weight, b.first.weight)
    # sqrt split: row norms of first equal column norms of second.
    torch.testing.assert_close(a.first.weight.norm(dim=1), a.second.weight.norm(dim=0))


def test_errors_name_layer() -> None:
    with pytest.raises(PolicyError, match=r"'dw'.*groups == 1"):
        factorize(nn.Conv2d(4, 4, 3, groups=4), 1, name="dw")
    with pytest.raises(PolicyError, match=r"'fc'.*\[1, 6\].*rank=7"):
        factorize(nn.Linear(10, 6), 7, name="fc")
    with pytest.raises(PolicyError, match=r"'c'.*rank=0"):
        factorize(nn.Conv1d(2, 3, 2), 0, name="c")
    with pytest.raises(PolicyError, match=r"nn\.Linear"):
        factorize(nn.LayerNorm(3), 1, name="ln")


def test_meta_builds_shapes_only() -> None:
    conv = nn.Conv2d(3, 16, 3, stride=2, padding=1, device="meta")
    pair = factorize(conv, 4)
    assert pair.first.weight.is_meta and pair.second.weight.shape == (16, 4, 1, 1)
    assert pair(torch.empty(1, 3, 8, 8, device="meta")).shape == (1, 16, 4, 4)


def test_trains() -> None:
    pair = factorize(nn.Linear(8, 4), 2)
    pair(_x(3, 8)).sum().backward()
    assert pair.first.weight.grad is not None and pair.second.bias.grad is not None
