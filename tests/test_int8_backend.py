"""Real int8 kernels: agree with an exact reference, keep global state, stay behind one module."""

from __future__ import annotations

import copy
import pathlib
import warnings

import pytest
import torch
import torch.nn.functional as F

from autocompress.backends import int8

pytestmark = pytest.mark.skipif(int8.engine() is None, reason="no x86/fbgemm quantized engine")


def _reference(kind: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, spec: int8.ConvSpec | None,
               a_in: tuple[float, int], a_out: tuple[float, int]) -> torch.Tensor:
    """Fake-quantised input -> fp32 op on the dequantised weight -> fake-quantised output."""
    xq = torch.fake_quantize_per_tensor_affine(x, a_in[0], a_in[1], 0, 255)
    if kind == "linear":
        y = F.linear(xq, w, b)
    else:
        fn = F.conv2d if kind == "conv2d" else F.conv1d
        y = fn(xq, w, b, spec.stride, spec.padding, spec.dilation, spec.groups)  # type: ignore[union-attr]
    return torch.fake_quantize_per_tensor_affine(y, a_out[0], a_out[1], 0, 255)


CASES = [
    ("linear", (12, 40), None, (5, 40)),
    ("conv1d", (6, 4, 3), int8.ConvSpec((1,), (1,), (1,), 1), (2, 4, 11)),
    ("conv2d", (8, 3, 3, 3), int8.ConvSpec((2, 2), (1, 1), (1, 1), 1), (2, 3, 9, 9)),
    ("conv2d", (8, 2, 3, 3), int8.ConvSpec((1, 1), (1, 1), (1, 1), 2), (2, 4, 7, 7)),
    ("conv2d", (16, 1, 3, 3), int8.ConvSpec((1, 1), (1, 1), (1, 1), 16), (2, 16, 7, 7)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("bits", [2, 4, 7, 8])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("per_channel", [True, False])
def test_kernel_matches_reference(case: int, bits: int, symmetric: bool, per_channel: bool) -> None:
    kind, wshape, spec, xshape = CASES[case]
    depthwise = spec is not None and spec.groups == xshape[1] and spec.groups > 1
    if int8.unsupported_reason(kind, bits, symmetric, depthwise) is not None:  # type: ignore[arg-type]
        pytest.skip("refused by design")
    g = torch.Generator().manual_seed(bits)
    qmin, qmax = (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1) if symmetric else (0, 2**bits - 1)
    codes = torch.randint(qmin, qmax + 1, wshape, generator=g).float()
    codes.view(-1)[:3] = torch.tensor([qmin, qmax, qmax], dtype=torch.float)  # extremes
    n = wshape[0] if per_channel else 1
    scale = torch.rand(n, generator=g) * 0.02 + 0.005
    zp = torch.zeros(n) if symmetric else torch.randint(0, 2**bits, (n,), generator=g).float()
    bias = torch.randn(wshape[0], generator=g)
    a_in, a_out = (0.02, 100), (0.05, 128)
    k = int8.build_int8(kind, codes, scale, zp, bits=bits, symmetric=symmetric, bias=bias,  # type: ignore[arg-type]
                        act_in=a_in, act_out=a_out, conv=spec)
    if bits == 8 and int8.seven_bit_weights():  # what the kernel runs on CPUs without AVX512-VNNI
        codes, scale, zp, seven = int8.kernel_codes(codes, scale, zp, bits, symmetric)
        assert seven == 7 and codes.abs().max() <= 127
    w = (codes - zp.reshape(-1, *[1] * (codes.dim() - 1))) * scale.reshape(-1, *[1] * (codes.dim() - 1))
    x = torch.rand(xshape, generator=g) * 5.1 - 2.0  # covers the whole uint8 input range
    y = k(x)
    ref = _reference(kind, x, w, bias, spec, a_in, a_out)
    assert y.dtype == torch.float32 and y.shape == ref.shape
    assert (y - ref).abs().max() <= a_out[0] * 1.01  # at most one output step


@pytest.mark.parametrize("forced", ["default", "1"])
def test_full_range_inputs_and_weights_do_not_saturate(forced: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """uint8 255 x int8 127 everywhere: fbgemm without AVX512-VNNI sums product pairs in int16
    and would return about half of the true 207.3; the backend's 7-bit kernel weights there
    avoid it. ``forced``: this CPU's own choice, and 7-bit weights forced (the AVX2-only path)."""
    if forced != "default":
        monkeypatch.setenv(int8.REDUCE_RANGE_ENV, forced)
    int8.seven_bit_weights.cache_clear()
    try:
        codes = torch.full((4, 64), 127.0)
        k = int8.build_int8("linear", codes, torch.tensor([0.01]), torch.zeros(1), bits=8, symmetric=True,
                            bias=None, act_in=(0.01, 0), act_out=(1.0, 0))
        x = torch.full((1, 64), 2.55)
        exact = float(x[0] @ (codes[0] * 0.01))  # 207.26
        assert abs(float(k(x)[0, 0]) - exact) <= 1.0  # one output step
        odd = torch.tensor([[-127.0, -5.0, 3.0, 126.0]] * 2)  # re-coding keeps the weights' range and sign
        c7, s7, _ = int8._to_seven_bits(odd, torch.tensor([0.01]), torch.zeros(1), True)
        assert c7.abs().max() <= 63 and torch.allclose(c7 * s7, odd * 0.01, atol=0.01 * 127 / 63 / 2 + 1e-6)
        c7, s7, z7 = int8._to_seven_bits(odd + 127, torch.tensor([0.01]), torch.tensor([127.0]), False)
        assert 0 <= c7.min() and c7.max() <= 127 and torch.allclose((c7 - z7) * s7, odd * 0.01, atol=0.011)
    finally:
        int8.seven_bit_weights.cache_clear()


def test_refuses_saturating_depthwise_and_non_zero_padding() -> None:
    assert int8.unsupported_reason("conv2d", 8, False, depthwise=True) is not None
    assert int8.unsupported_reason("conv2d", 8, True, depthwise=True) is None
    assert int8.unsupported_reason("conv2d", 4, False, depthwise=True) is None
    assert "padding_mode" in (int8.unsupported_reason("conv1d", 8, True, padding_mode="reflect") or "")
    assert int8.unsupported_reason("linear", 16, True) is not None


def test_engine_restored_no_warnings_and_deepcopy() -> None:
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = "qnnpack" if "qnnpack" in torch.backends.quantized.supported_engines else before
    try:
        set_to = torch.backends.quantized.engine
        codes = torch.randint(-127, 128, (4, 8)).float()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            k = int8.build_int8("linear", codes, torch.full((4,), 0.01), torch.zeros(4), bits=8,
                                symmetric=True, bias=None, act_in=(0.02, 128), act_out=(0.05, 128))
            y = k(torch.randn(3, 2, 8))  # leading dims are kept
        assert torch.backends.quantized.engine == set_to
        assert not caught, [str(w.message) for w in caught]
        assert y.shape == (3, 2, 4)
        assert torch.equal(copy.deepcopy(k)(torch.ones(1, 8)), k(torch.ones(1, 8)))
    finally:
        torch.backends.quantized.engine = before


def test_only_the_backend_uses_the_quantized_engine() -> None:
    root = pathlib.Path(__file__).resolve().parents[1] / "autocompress"
    users = {str(p.relative_to(root)) for p in root.rglob("*.py")
             if "torch.ao" in p.read_text() or "ops.quantized" in p.read_text()}
    assert users <= {"backends/int8.py"}
