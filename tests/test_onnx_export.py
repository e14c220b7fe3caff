"""ONNX export of the deploy form: ONNX Runtime's output equals the PyTorch deploy form's, the
graph is standard ops only (no autocompress or user class), int8 layers ship int8 weights as
QDQ, pruned channels are absent and low-rank layers are two MatMul/Gemm nodes.

Tolerances, relative to the largest output: fp32 / decoded sub-8-bit, sparse and codebook
weights 1e-5 (same fp32 math, other kernels); fp16 activations 1e-3; int8 (ORT's integer
kernels vs fbgemm's) 0.02, a few quantisation steps of the output.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from autocompress import Policy, compress, layers
from autocompress.errors import PolicyError
from autocompress.models import MODELS, create_model

onnx = pytest.importorskip("onnx", reason="ONNX export is the onnx extra: pip install 'autocompress[onnx]'")
pytest.importorskip("onnxruntime", reason="ONNX Runtime is the onnx extra: pip install 'autocompress[onnx]'")

from autocompress.runtime import OrtModel, export_onnx  # noqa: E402

TINY = [n for n in MODELS.names() if MODELS.get(n).tiny]
POLICIES = {
    "fp32": ({}, 1e-5),
    "int8": ({"default": {"weight_bits": 8, "act_bits": 8}}, 0.02),
    "w4": ({"default": {"weight_bits": 4}}, 1e-5),
    "w3-codebook": ({"default": {"weight_bits": 3, "codebook": True}}, 1e-5),
    "w8-sparse50": ({"default": {"weight_bits": 8, "sparsity": 0.5}}, 1e-5),
    "fp16": ({"default": {"weight_bits": 16, "act_bits": 16}}, 1e-3),
    "int8-2:4": ({"default": {"weight_bits": 8, "act_bits": 8, "pattern": "2:4"}}, 0.02),
}


def _run(name: str, raw: dict, tmp_path, batch: int = 4):
    model = create_model(name, seed=0).eval()
    x = MODELS.get(name).example_input(batch=batch)
    deploy = compress(model, Policy.from_dict(raw), form="deploy", example_input=x)
    path = export_onnx(deploy, tmp_path / f"{name}.onnx", x)
    return deploy, x, path


def _run_or_skip(name: str, raw: dict, tmp_path):
    """(deploy form, inputs as a tuple, ONNX path); skips where the policy cannot fit the model."""
    try:
        deploy, x, path = _run(name, raw, tmp_path)
    except PolicyError as e:
        pytest.skip(f"policy does not fit {name}: {e}")
    return deploy, x if isinstance(x, tuple) else (x,), path


@pytest.mark.parametrize("pname", sorted(POLICIES))
@pytest.mark.parametrize("name", TINY)
def test_onnx_runtime_matches_the_deploy_form(name: str, pname: str, tmp_path) -> None:
    raw, tol = POLICIES[pname]
    deploy, xs, path = _run_or_skip(name, raw, tmp_path)
    with torch.no_grad():
        ref = deploy(*xs)
    got = OrtModel(path)(*xs)
    scale = float(ref.abs().max()) + 1e-6
    assert float((got - ref).abs().max()) <= tol * scale
    graph = onnx.load(str(path)).graph
    assert {n.domain for n in graph.node} <= {"", "ai.onnx"}, "only standard ONNX ops"


def test_int8_layers_ship_int8_weights_as_qdq(tmp_path) -> None:
    from onnx import numpy_helper

    deploy, x, path = _run("tiny-mlp", {"default": {"weight_bits": 8, "act_bits": 8}}, tmp_path)
    graph = onnx.load(str(path)).graph
    ops = [n.op_type for n in graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    arrays = [numpy_helper.to_array(i) for i in graph.initializer]
    int8_weights = sum(a.size for a in arrays if a.dtype in (np.int8, np.uint8) and a.ndim == 2)
    fp32_matrices = [a for a in arrays if a.dtype == np.float32 and a.ndim == 2]
    n_weights = sum(i.params - i.out_channels for i in layers(create_model("tiny-mlp", seed=0), x))  # minus biases
    assert int8_weights == n_weights and not fp32_matrices, "weights stored as int8 codes, not fp32"
    # the QDQ weights ORT reads are the artifact's own codes: same output as fbgemm within steps
    with torch.no_grad():
        ref = deploy(x)
    assert float((OrtModel(path)(x) - ref).abs().max()) <= 0.02 * float(ref.abs().max())


def test_pruned_channels_are_absent_and_low_rank_is_two_matmuls(tmp_path) -> None:
    from onnx import numpy_helper

    raw = {"layers": {"re:block.\\.expand": {"sparsity": 0.5, "pattern": "channel"}, "head": {"rank": 4}}}
    deploy, x, path = _run("tiny-resdw-cnn", raw, tmp_path)
    graph = onnx.load(str(path)).graph
    shapes = {i.name: tuple(numpy_helper.to_array(i).shape) for i in graph.initializer}
    conv_out = sorted(shapes[n.input[1]][0] for n in graph.node if n.op_type == "Conv")
    want = sorted(m.out_channels for m in deploy.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv_out == want and 8 in conv_out  # the expand convs kept 8 of 16 channels
    original = create_model("tiny-resdw-cnn", seed=0)
    assert sum(1 for m in original.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 8) < \
        conv_out.count(8)
    matmuls = [n for n in graph.node if n.op_type in ("Gemm", "MatMul")]
    assert len(matmuls) == 2  # the head as two factors (rank 4)
    assert sorted(shapes[n.input[1]] for n in matmuls if n.input[1] in shapes)[0][0] in (4, 10)
    with torch.no_grad():
        ref = deploy(x)
    assert float((OrtModel(path)(x) - ref).abs().max()) <= 1e-5 * float(ref.abs().max()) + 1e-6


def test_batch_is_dynamic_and_tuple_inputs_export(tmp_path) -> None:
    _, _, path = _run("tiny-mlp", {"default": {"weight_bits": 8, "act_bits": 8}}, tmp_path, batch=4)
    big = MODELS.get("tiny-mlp").example_input(batch=37)
    assert OrtModel(path)(big).shape[0] == 37

    class TwoInputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(8, 16)
            self.emb = torch.nn.Embedding(20, 16)
            self.head = torch.nn.Linear(16, 3)

        def forward(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.head(torch.relu(self.a(v) + self.emb(t).mean(1)))

    torch.manual_seed(0)
    model = TwoInputs().eval()
    xs = (torch.randn(6, 8), torch.randint(0, 20, (6, 5)))
    pol = Policy.from_dict({"layers": {"a": {"weight_bits": 8, "act_bits": 8}, "head": {"weight_bits": 4}}})
    deploy2 = compress(model, pol, form="deploy", example_input=xs)
    path2 = export_onnx(deploy2, tmp_path / "two.onnx", xs)
    with torch.no_grad():
        ref = deploy2(*xs)
    assert float((OrtModel(path2)(*xs) - ref).abs().max()) <= 0.02 * float(ref.abs().max())


def test_random_policies_export_and_match(tmp_path) -> None:
    name = "tiny-transformer"
    model = create_model(name, seed=0).eval()
    x = MODELS.get(name).example_input(batch=4)
    infos = layers(model, x)
    rng = random.Random(3)
    checked = 0
    for k in range(4):
        entries = {}
        for info in infos:
            n, bits = info.name, rng.choice([2, 4, 8, 16, 32])
            if info.kind == "embedding":  # the token table: weight bits only
                entries[n] = {"weight_bits": bits}
                continue
            entries[n] = {"weight_bits": bits, "act_bits": 8 if bits <= 8 and rng.random() < 0.5 else 32}
            if rng.random() < 0.3:
                entries[n]["sparsity"] = 0.5
        deploy = compress(model, Policy.from_dict({"layers": entries}), form="deploy", example_input=x)
        path = export_onnx(deploy, tmp_path / f"r{k}.onnx", x)
        with torch.no_grad():
            ref = deploy(x)
        assert float((OrtModel(path)(x) - ref).abs().max()) <= 0.02 * float(ref.abs().max()), k
        checked += 1
    assert checked == 4


def test_task_metric_of_the_onnx_model_equals_the_artifacts(tmp_path) -> None:
    """digits-cnn, int8 everywhere, calibrated on real data: test accuracy through ONNX Runtime
    equals the artifact's within one test example."""
    from autocompress import load_artifact, save_artifact
    from autocompress.compress import to_deploy
    from autocompress.tasks import base_model, get_task, test_metric
    from autocompress.techniques.quantize import calibrate

    task = get_task("digits-cnn")
    base = base_model(task, seed=0, progress=False).eval()
    data = task.data()
    policy = Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}})
    train = compress(base, policy, form="train", example_input=data.train.x[:64]).eval()
    calibrate(train, data.train.x[:256])
    deploy = to_deploy(train, policy)
    save_artifact(deploy, policy, tmp_path / "m.safetensors", data.train.x[:64])
    loaded = load_artifact(tmp_path / "m.safetensors", task.create_model(0))
    path = export_onnx(loaded, tmp_path / "m.onnx", data.train.x[:64])
    ours, theirs = test_metric(task, loaded), test_metric(task, OrtModel(path))
    assert abs(ours - theirs) <= 1.0 / len(data.test) + 1e-9, (ours, theirs)
    assert ours > 0.9


def test_apply_format_both_writes_and_measures_the_onnx_model(tmp_path, capsys) -> None:
    import json

    from autocompress.cli import main

    policy = tmp_path / "p.yaml"
    policy.write_text("default: {weight_bits: 8, act_bits: 8}\nmeta: {task: {name: digits-cnn}}\n")
    out = tmp_path / "out"
    assert main(["apply", str(policy), "-o", str(out), "--steps", "0", "--format", "both"]) == 0
    assert "ONNX (" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    o = report["onnx"]
    assert (out / "model.onnx").stat().st_size == o["file_bytes"] and (out / "model.safetensors").is_file()
    assert o["runtime"] == "onnxruntime" and o["latency_ms"] > 0 and o["fp32_latency_ms"] > 0
    n_test = 360  # digits: 1797 images, 20% test
    assert abs(o["test_metric"] - report["measured"]["test_metric"]) <= 1.0 / n_test + 1e-9
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        main(["apply", str(policy), "-o", str(tmp_path / "bad"), "--format", "tflite"])


@pytest.mark.parametrize("pname", ["fp32", "int8", "w4", "int8-2:4"])
@pytest.mark.parametrize("name", ["tiny-mlp", "tiny-resdw-cnn", "tiny-transformer", "tiny-concat-cnn"])
def test_the_same_file_runs_in_openvino(name: str, pname: str, tmp_path) -> None:
    """The file apply writes needs no autocompress and no ONNX Runtime: OpenVINO compiles it
    for its CPU plugin and agrees with the deploy form (int8: a few output steps, OpenVINO's
    own integer kernels)."""
    ov = pytest.importorskip("openvino", reason="OpenVINO is in the onnx extra: pip install 'autocompress[onnx]'")
    raw, tol = POLICIES[pname]
    deploy, xs, path = _run_or_skip(name, raw, tmp_path)
    # f32 asked for: on CPUs with AMX / AVX512-BF16 the plugin would otherwise run fp32 layers in bf16
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = torch.from_numpy(compiled([t.numpy() for t in xs])[0])
    with torch.no_grad():
        ref = deploy(*xs)
    scale = float(ref.abs().max()) + 1e-6
    assert float((got - ref).abs().max()) <= max(tol, 1e-4) * 2 * scale


@pytest.mark.parametrize("raw", [{"default": {"weight_bits": 4}},
                                 {"default": {"weight_bits": 3, "symmetric": False, "granularity": "per_tensor"}},
                                 {"default": {"weight_bits": 8, "sparsity": 0.5}}])
def test_weight_codes_ship_weight_only_layers_as_integers(raw: dict, tmp_path) -> None:
    """export_onnx(weight_codes=True): weight-only layers store their codes (int8/uint8) behind
    a DequantizeLinear, the output is the same, and the file is smaller than with decoded weights."""
    from onnx import numpy_helper

    name = "lenet-5"  # big enough that the weights, not the graph, make the file
    model = create_model(name, seed=0).eval()
    x = MODELS.get(name).example_input(batch=4)
    deploy = compress(model, Policy.from_dict(raw), form="deploy", example_input=x)
    plain = export_onnx(deploy, tmp_path / "plain.onnx", x)
    coded = export_onnx(deploy, tmp_path / "coded.onnx", x, weight_codes=True)
    ints = [a for a in (numpy_helper.to_array(i) for i in onnx.load(str(coded)).graph.initializer)
            if a.dtype in (np.int8, np.uint8) and a.ndim >= 2]
    assert ints and coded.stat().st_size < 0.5 * plain.stat().st_size
    with torch.no_grad():
        ref = deploy(x)
    for path in (plain, coded):
        assert float((OrtModel(path)(x) - ref).abs().max()) <= 1e-5 * (1 + float(ref.abs().max()))
