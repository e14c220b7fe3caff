"""The typed leaf description: computed once from the module, read by kernel choice and the
deploy module (no loose dicts)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autocompress.errors import PolicyError
from autocompress.policy import LayerConfig
from autocompress.techniques.kernels import choose_kernel
from autocompress.techniques.leaf import ConvArgs, LeafSpec


def test_linear_and_conv_specs() -> None:
    assert LeafSpec.of(nn.Linear(8, 4)) == LeafSpec("linear", (4, 8), None)
    spec = LeafSpec.of(nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8))
    assert spec.kind == "conv2d" and spec.weight_shape == (8, 1, 3, 3)
    assert spec.conv == ConvArgs(stride=(2, 2), padding=(1, 1), int_padding=(1, 1), dilation=(1, 1), groups=8,
                                 padding_mode="zeros", reversed_padding=(1, 1, 1, 1), depthwise=True)
    with pytest.raises(PolicyError, match="nn.Linear/Conv1d/Conv2d"):
        LeafSpec.of(nn.LayerNorm(4))


def test_same_padding_without_symmetric_ints_falls_back_to_fp32() -> None:
    even = LeafSpec.of(nn.Conv1d(4, 4, 4, padding="same"))  # total padding 3: no symmetric ints
    assert even.conv is not None and even.conv.padding == "same" and even.conv.int_padding is None
    kernel, why = choose_kernel(even, LayerConfig(weight_bits=8, act_bits=8))
    assert kernel == "fp32" and "symmetric padding" in str(why)
    odd = LeafSpec.of(nn.Conv1d(4, 4, 3, padding="same"))
    assert odd.conv is not None and odd.conv.int_padding == (1,)


def test_spec_is_frozen_and_hashable() -> None:
    spec = LeafSpec.of(nn.Conv1d(2, 2, 3))
    assert hash(spec) == hash(LeafSpec.of(nn.Conv1d(2, 2, 3)))
    with pytest.raises(AttributeError):
        spec.kind = "linear"  # type: ignore[misc]
    assert torch.Size(spec.weight_shape) == nn.Conv1d(2, 2, 3).weight.shape
