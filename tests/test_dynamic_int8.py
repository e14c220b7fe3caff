"""Dynamic int8 activations (``act_dynamic``): the input's uint8 range is computed from each
input at run time, as torch's ``quantize_dynamic`` and ONNX Runtime's ``DynamicQuantizeLinear``
do. Train form, deploy form (torch's dynamic int8 kernel) and ONNX Runtime agree; nothing is
stored or calibrated for the activations; convolutions are refused by name.

Tolerances, relative to the largest output: train form vs deploy form 1e-4 (the same
fake-quantised input and weights; torch's kernel picks its zero point with its own rounding);
ONNX Runtime vs deploy form 0.02 (its own range rounding, as for static int8).
"""

from __future__ import annotations

import pytest
import torch
from _artifacts import ships_exactly
from _bert import tiny_bert
from torch import nn

from autocompress import Policy, compress
from autocompress.cost import plan
from autocompress.cost.latency._table import leaf_key
from autocompress.errors import PolicyError
from autocompress.graph import channel_groups, iter_compressible, layers
from autocompress.models import MODELS, create_model
from autocompress.search.space import SearchSpace
from autocompress.techniques.deploy import DeployLeaf

DYN = {"weight_bits": 8, "act_bits": 8, "act_dynamic": True}
TINY = [n for n in MODELS.names() if MODELS.get(n).tiny]


def _dynamic_policy(model: nn.Module, **extra: object) -> Policy:
    """Every Linear dynamic int8 (``extra`` on top), every convolution static int8."""
    layers = {}
    for name, mod in iter_compressible(model):
        if isinstance(mod, nn.Embedding):
            continue
        layers[name] = {**DYN, **extra} if isinstance(mod, nn.Linear) else {"weight_bits": 8, "act_bits": 8}
    return Policy.from_dict({"layers": layers})


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max()) / (float(b.abs().max()) + 1e-6)


@pytest.mark.parametrize("extra", [{}, {"symmetric": False}, {"weight_bits": 4, "sparsity": 0.5},
                                   {"granularity": "per_tensor", "pattern": "2:4"}], ids=str)
@pytest.mark.parametrize("name", TINY)
def test_deploy_form_runs_the_dynamic_kernel_and_matches_the_train_form(name: str, extra: dict) -> None:
    model = create_model(name, seed=0).eval()
    x = MODELS.get(name).example_input(batch=4)
    policy = _dynamic_policy(model, **extra)
    try:
        train = compress(model, policy, example_input=x).eval()
    except PolicyError as e:
        if "N:M" in str(e):
            pytest.skip(f"2:4 does not fit {name}: {e}")
        raise
    deploy = compress(model, policy, form="deploy", example_input=x)
    dynamic = [m for m in deploy.modules() if isinstance(m, DeployLeaf) and m.cfg.act_dynamic]
    if not dynamic:
        pytest.skip(f"{name} has no Linear layer")
    assert all(m.kernel == "int8-dynamic" for m in dynamic)
    assert all("act_in" not in m.state_dict() for m in dynamic), "nothing stored for dynamic activations"
    with torch.no_grad():
        assert _rel(deploy(x), train(x)) <= 1e-4
        assert _rel(deploy(x), model(x)) > 0, "the activations really are quantised"


def test_the_range_is_the_input_s_own() -> None:
    """Scaling the input by 10 scales a bias-free dynamic layer's output by 10 exactly (a static
    range would clip); the output of one sample depends on its batch, as the kernel's does."""
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Linear(16, 8, bias=False))
    deploy = compress(lin, Policy.from_dict({"default": DYN}), form="deploy")
    x = torch.randn(5, 16)
    with torch.no_grad():
        assert torch.allclose(deploy(10 * x), 10 * deploy(x), rtol=1e-4, atol=1e-5)
        alone, in_batch = deploy(x[:1]), deploy(torch.cat([x[:1], 100 * x[1:]]))[:1]
    assert not torch.allclose(alone, in_batch)


def test_a_dynamic_only_policy_needs_no_example_input_and_sizes_exactly(tmp_path) -> None:
    model = create_model("tiny-mlp", seed=0).eval()
    x = MODELS.get("tiny-mlp").example_input(batch=3)
    policy = Policy.from_dict({"default": DYN})
    deploy = compress(model, policy, form="deploy")  # no calibration batch
    ships_exactly(model, deploy, policy, x, tmp_path / "m.safetensors", create_model("tiny-mlp", seed=1))
    kernels = {p.kernel for p in plan(model, policy, x)}
    assert kernels == {"int8-dynamic"}


def test_latency_tables_tell_dynamic_from_static() -> None:
    model = create_model("tiny-mlp", seed=0).eval()
    x = MODELS.get("tiny-mlp").example_input(batch=3)
    static = plan(model, Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}}), x)
    dynamic = plan(model, Policy.from_dict({"default": DYN}), x)
    assert {p.kernel for p in static} == {"int8"}
    assert all(leaf_key(a) != leaf_key(b) for a, b in zip(static, dynamic, strict=True))


@pytest.mark.parametrize(("raw", "words"), [
    ({"act_bits": 8, "act_dynamic": True}, ["act_dynamic", "weight_bits 32"]),
    ({"weight_bits": 8, "act_bits": 32, "act_dynamic": True}, ["act_dynamic", "act_bits 32"]),
    ({"weight_bits": 4, "act_bits": 8, "codebook": True, "act_dynamic": True}, ["codebook"]),
    ({"weight_bits": 8, "act_bits": 8, "act_dynamic": "yes"}, ["act_dynamic"]),
])
def test_impossible_dynamic_configs_are_refused_by_field(raw: dict, words: list[str]) -> None:
    with pytest.raises(PolicyError) as e:
        Policy.from_dict({"layers": {"fc": raw}})
    assert all(w in str(e.value) for w in words) and "layers.fc" in str(e.value)


def test_a_convolution_is_refused_by_name_before_any_work() -> None:
    model = create_model("tiny-resdw-cnn", seed=0)
    name = next(n for n, m in iter_compressible(model) if isinstance(m, nn.Conv2d))
    with pytest.raises(PolicyError, match=rf"act_dynamic on layer '{name}'.*Linear layers only"):
        compress(model, Policy.from_dict({"layers": {name: DYN}}))


def test_a_layer_leaving_int8_does_not_inherit_dynamic() -> None:
    p = Policy.from_dict({"default": DYN, "layers": {"head": {"act_bits": 32}, "fc": {"weight_bits": 32}}})
    got = dict(p.layers)
    assert not got["head"].act_dynamic and not got["fc"].act_dynamic
    assert Policy.from_dict(p.to_dict()) == p


def test_search_space_dynamic_choice_is_linear_only() -> None:
    """``act_bits: [32, dynamic]`` samples dynamic int8 on Linear layers; a convolution, which
    has no dynamic kernel, gets static 8 bits instead."""
    import optuna

    model = create_model("tiny-resdw-cnn", seed=0)
    x = MODELS.get("tiny-resdw-cnn").example_input(batch=2)
    space = SearchSpace.from_dict({"rules": [{"layers": "default", "weight_bits": [8], "act_bits": [32, "dynamic"]}]})
    bound = space.bind(layers(model, x), channel_groups(model, x))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: set[tuple[str, int, bool]] = set()
    for _ in range(12):
        policy = bound.sample(study.ask())
        for name, cfg in policy.layers:
            kind = type(model.get_submodule(name)).__name__
            seen.add((kind, cfg.act_bits, cfg.act_dynamic))
        compress(model, policy, form="deploy", example_input=x)  # every sample is valid
    assert ("Linear", 8, True) in seen and ("Conv2d", 8, False) in seen
    assert not any(kind != "Linear" and dyn for kind, _, dyn in seen)


def test_onnx_runtime_runs_ort_s_dynamic_contract(tmp_path) -> None:
    onnx = pytest.importorskip("onnx", reason="the onnx extra: pip install 'autocompress[onnx]'")
    pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'autocompress[onnx]'")
    import numpy as np
    from onnx import numpy_helper

    from autocompress.runtime import OrtModel, export_onnx

    for name in TINY:
        model = create_model(name, seed=0).eval()
        x = MODELS.get(name).example_input(batch=4)
        policy = _dynamic_policy(model, symmetric=name != "tiny-mlp")
        deploy = compress(model, policy, form="deploy", example_input=x)
        if not any(isinstance(m, DeployLeaf) and m.cfg.act_dynamic for m in deploy.modules()):
            continue
        path = export_onnx(deploy, tmp_path / f"{name}.onnx", x)
        xs = x if isinstance(x, tuple) else (x,)
        with torch.no_grad():
            ref = deploy(*xs)
        assert _rel(OrtModel(path)(*xs), ref) <= 0.02, name
        graph = onnx.load(str(path)).graph
        ops = [n.op_type for n in graph.node]
        n_dyn = sum(1 for m in deploy.modules() if isinstance(m, DeployLeaf) and m.cfg.act_dynamic)
        # one DynamicQuantizeLinear + MatMulInteger per call (a shared layer is called twice)
        assert ops.count("DynamicQuantizeLinear") == ops.count("MatMulInteger") >= n_dyn, name
        int8_weights = [numpy_helper.to_array(i) for i in graph.initializer]
        assert sum(a.dtype == np.int8 and a.ndim == 2 for a in int8_weights) >= n_dyn, name


def test_hugging_face_bert_runs_dynamic_int8_in_torch_and_onnx_runtime(tmp_path) -> None:
    model = tiny_bert()
    x = torch.randint(1, 100, (3, 10))
    x[0, 7:] = 0  # padding
    policy = Policy.from_dict({"default": DYN})
    train = compress(model, policy).eval()
    deploy = compress(model, policy, form="deploy")
    leaves = [m for m in deploy.modules() if isinstance(m, DeployLeaf)]
    assert len(leaves) == 12 and all(m.kernel == "int8-dynamic" for m in leaves)
    with torch.no_grad():
        ref, got = model(x), deploy(x)
        assert _rel(got, train(x)) <= 1e-4
        assert float(nn.functional.cosine_similarity(got, ref).min()) > 0.99
    pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'autocompress[onnx]'")
    from autocompress.runtime import OrtModel, export_onnx

    path = export_onnx(deploy, tmp_path / "bert.onnx", x)
    assert _rel(OrtModel(path)(x), got) <= 0.02
