"""8-bit activations stay 8-bit between layers: a layer read only by ReLUs quantises its
output from 0, a layer fed through ReLU / max pooling / reshapes shares its producer's output
quantiser, and the exported graph then runs consecutive int8 layers with no float round trip
(the graph ONNX Runtime's own quantize_static makes)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autocompress import Policy, compress
from autocompress.graph import activation_links
from autocompress.models import MODELS, create_model
from autocompress.techniques.quantize import SharedActQuant

INT8 = Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}})


class ConvPoolNet(nn.Module):
    """conv -> ReLU -> pool -> conv -> ReLU -> flatten -> fc, the digits-CNN shape, with a
    functional ReLU, a module ReLU and a view."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.act(self.c1(x)))
        h = F.relu(self.c2(h))
        return self.fc(h.view(h.shape[0], -1))


class Residual(nn.Module):
    """a's output is read by a ReLU and by an add: not ReLU-only, and the add breaks links."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.c(torch.relu(self.b(torch.relu(h))) + h)


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.b(h) if float(h.sum()) > 0 else self.b(-h)  # data-dependent branch


def test_links_of_a_conv_pool_net() -> None:
    links = activation_links(ConvPoolNet())
    assert links.relu_only == {"c1", "c2"}
    assert links.input_from == {"c2": "c1", "fc": "c2"}


def test_an_add_or_a_second_reader_breaks_the_links() -> None:
    links = activation_links(Residual())
    assert "a" not in links.relu_only and links.relu_only == {"b"}
    assert links.input_from == {"b": "a"}  # relu(a) keeps a's grid; c reads an add


def test_a_layer_called_twice_links_only_where_every_call_agrees() -> None:
    links = activation_links(create_model("tiny-shared-mlp"))
    assert "shared" not in links.input_from  # fed by inp once and by itself once
    assert links.input_from.get("out") == "shared"


def test_an_untraceable_model_gets_no_links_and_still_compresses() -> None:
    assert activation_links(Untraceable()) == type(activation_links(Untraceable()))()
    model, x = Untraceable().eval(), torch.randn(8, 4)
    out = compress(model, INT8, form="deploy", example_input=x)
    assert out(x).shape == (8, 2)


def test_linked_quantizers_share_one_range_and_relu_only_outputs_start_at_zero() -> None:
    torch.manual_seed(0)
    model, x = ConvPoolNet().eval(), torch.randn(16, 1, 8, 8)
    train = compress(model, INT8, form="train", example_input=x).eval()
    assert isinstance(train.c2.act_in, SharedActQuant) and train.c2.act_in.source is train.c1.act_out
    assert isinstance(train.fc.act_in, SharedActQuant) and train.fc.act_in.source is train.c2.act_out
    assert int(train.c1.act_out.qparams()[1]) == 0 and float(train.c1.act_out.lo) == 0.0
    deploy = compress(model, INT8, form="deploy", example_input=x)
    assert torch.equal(deploy.c2.act_in, deploy.c1.act_out) and torch.equal(deploy.fc.act_in, deploy.c2.act_out)
    with torch.no_grad():  # the train form and the real int8 kernels still agree to an output step
        assert float((train(x) - deploy(x)).abs().max()) <= 1.01 * float(deploy.fc.act_out[0])
    copied = copy.deepcopy(train)  # the sharing survives a copy
    assert copied.c2.act_in.source is copied.c1.act_out


@pytest.mark.parametrize("name", [n for n in MODELS.names() if MODELS.get(n).tiny])
def test_linking_keeps_the_train_form_close_to_the_unlinked_one(name: str) -> None:
    """Links change ranges, not the function: the linked int8 train form is as close to fp32
    as quantising every layer on its own."""
    from autocompress.techniques.quantize import ActFakeQuant, calibrate

    model, x = create_model(name, seed=0).eval(), MODELS.get(name).example_input(batch=16)
    linked = compress(model, INT8, form="train", example_input=x).eval()
    plain = compress(model, INT8, form="train", example_input=x).eval()
    for m in list(plain.modules()):  # undo the links: every layer on its own ranges
        if isinstance(getattr(m, "act_in", None), SharedActQuant):
            m.act_in = ActFakeQuant(8)
        if isinstance(m, ActFakeQuant):
            m.relu_only = False
    calibrate(plain, x)
    with torch.no_grad():
        xs = x if isinstance(x, tuple) else (x,)
        ref = model(*xs)
        err_linked = float((linked(*xs) - ref).abs().max())
        err_plain = float((plain(*xs) - ref).abs().max())
    assert err_linked <= 1.5 * err_plain + 1e-3 * float(ref.abs().max())


def test_the_exported_graph_has_no_float_round_trip_between_int8_layers(tmp_path) -> None:
    """After ONNX Runtime's optimisation the graph is Q -> QLinearConv -> QLinearConv ->
    MaxPool (uint8) -> Gemm-int8 -> DQ: one QuantizeLinear in, one DequantizeLinear out."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from autocompress.runtime import OrtModel, export_onnx

    torch.manual_seed(0)
    model, x = ConvPoolNet().eval(), torch.randn(16, 1, 8, 8)
    deploy = compress(model, INT8, form="deploy", example_input=x)
    path = export_onnx(deploy, tmp_path / "m.onnx", x)
    assert "Relu" not in [n.op_type for n in onnx.load(str(path)).graph.node]  # on non-negative codes
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert ops.count("QuantizeLinear") == 1 and ops.count("DequantizeLinear") == 1, ops
    assert ops.count("QLinearConv") == 2, ops
    with torch.no_grad():
        ref = deploy(x)
    assert float((OrtModel(path)(x) - ref).abs().max()) <= 0.02 * float(ref.abs().max())
