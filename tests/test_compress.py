"""compress() over the whole tiny-model registry: every technique, compositions, both forms,
the size model against the real artifact, and nothing half-applied on errors."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from autocompress import Policy, compress, layers, load_artifact, save_artifact, size_bytes
from autocompress.errors import PolicyError
from autocompress.models import MODELS, create_model

TINY = [n for n in MODELS.names() if MODELS.get(n).tiny]


def _setup(name: str):
    spec = MODELS.get(name)
    torch.manual_seed(0)
    return create_model(name, seed=0).eval(), spec.example_input(batch=8)


def _fp32_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


@pytest.mark.parametrize("name", TINY)
def test_identity_policy_changes_nothing(name: str) -> None:
    model, x = _setup(name)
    out = compress(model, Policy(), form="deploy", example_input=x)
    torch.testing.assert_close(out(x), model(x), rtol=1e-5, atol=1e-5)
    assert size_bytes(model, Policy(), x) == _fp32_bytes(out)


POLICIES = {
    "int8": {"default": {"weight_bits": 8, "act_bits": 8}},
    "w4": {"default": {"weight_bits": 4}},
    "w4-asym-tensor": {"default": {"weight_bits": 4, "granularity": "per_tensor", "symmetric": False}},
    "w2-sparse": {"default": {"weight_bits": 2, "sparsity": 0.6}},
    "fp16": {"default": {"weight_bits": 16, "act_bits": 16}},
    "sparse90": {"default": {"sparsity": 0.9}},
    "w8-sparse50": {"default": {"weight_bits": 8, "sparsity": 0.5}},
}


@pytest.mark.parametrize("pname", sorted(POLICIES))
@pytest.mark.parametrize("name", TINY)
def test_train_and_deploy_agree_and_size_is_exact(name: str, pname: str, tmp_path) -> None:
    model, x = _setup(name)
    policy = Policy.from_dict(POLICIES[pname])
    train = compress(model, policy, form="train", example_input=x).eval()
    deploy = compress(model, policy, form="deploy", example_input=x)
    with torch.no_grad():
        ref, yt, yd = model(x), train(x), deploy(x)
    scale = ref.abs().max().item() + 1e-6
    assert (yt - yd).abs().max().item() <= 0.05 * scale, "deploy form drifts from train form"
    info = save_artifact(deploy, policy, tmp_path / "a.safetensors", x)
    predicted = size_bytes(model, policy, x)
    assert abs(predicted - info.tensor_bytes) <= 0.01 * info.tensor_bytes
    assert info.tensor_bytes < _fp32_bytes(model) or pname == "fp16-none"
    again = load_artifact(tmp_path / "a.safetensors", create_model(name, seed=123).eval())
    with torch.no_grad():
        torch.testing.assert_close(again(x), yd, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["tiny-mlp", "tiny-resdw-cnn", "tiny-transformer"])
def test_size_model_matches_artifact_over_random_policies(name: str, tmp_path) -> None:
    model, x = _setup(name)
    rng = random.Random(0)
    names = [i.name for i in layers(model, x)]
    for k in range(6):
        entries = {}
        for n in names:
            if rng.random() < 0.3:
                continue
            entry = {"weight_bits": rng.choice([2, 3, 4, 5, 6, 8, 16, 32])}
            entry["act_bits"] = rng.choice([8, 32]) if entry["weight_bits"] <= 8 else 32
            r = rng.random()
            if r < 0.3:
                entry["sparsity"] = rng.choice([0.25, 0.5, 0.8])
            elif r < 0.4:
                entry["pattern"] = "2:4"
            entries[n] = entry
        policy = Policy.from_dict({"layers": entries})
        try:
            deploy = compress(model, policy, form="deploy", example_input=x)
        except PolicyError:
            continue  # e.g. N:M on a layer whose input size is not divisible by 4
        info = save_artifact(deploy, policy, tmp_path / f"{k}.safetensors", x)
        predicted = size_bytes(model, policy, x)
        assert abs(predicted - info.tensor_bytes) <= 0.01 * info.tensor_bytes, (k, policy.to_dict())


def test_channel_pruning_and_low_rank_really_shrink(tmp_path) -> None:
    model, x = _setup("tiny-resdw-cnn")
    policy = Policy.from_dict(
        {
            "layers": {
                "re:block.\\.expand": {"sparsity": 0.5, "pattern": "channel", "weight_bits": 8},
                "head": {"rank": 4},
            }
        }
    )
    deploy = compress(model, policy, form="deploy", example_input=x)
    assert deploy(x).shape == model(x).shape
    train = compress(model, policy, form="train", example_input=x)
    assert train.block1.expand.out_channels == 8 and train.block1.dw.groups == 8
    assert train.head.first.out_features == 4
    info = save_artifact(deploy, policy, tmp_path / "p.safetensors", x)
    assert info.tensor_bytes == size_bytes(model, policy, x)
    assert info.tensor_bytes < 0.7 * _fp32_bytes(model)


def test_failed_validation_leaves_model_untouched() -> None:
    model, x = _setup("tiny-mlp")
    before = copy.deepcopy(model.state_dict())
    bad = Policy.from_dict({"layers": {"fc1": {"weight_bits": 8}, "fc2": {"rank": 1000}}})
    with pytest.raises(PolicyError, match="fc2"):
        compress(model, bad, form="deploy", example_input=x)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert type(model.fc1) is torch.nn.Linear


def test_channel_pruning_of_output_layer_is_refused() -> None:
    model, x = _setup("tiny-mlp")
    with pytest.raises(PolicyError, match="fc3"):
        compress(model, Policy.from_dict({"layers": {"fc3": {"sparsity": 0.5, "pattern": "channel"}}}), example_input=x)


def test_activation_quant_requires_example_input() -> None:
    model, _ = _setup("tiny-mlp")
    with pytest.raises(PolicyError, match="example_input"):
        compress(model, Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}}))


def test_compress_is_deterministic() -> None:
    model, x = _setup("tiny-resdw-cnn")
    policy = Policy.from_dict({"default": {"weight_bits": 4, "sparsity": 0.5}})
    a = compress(model, policy, form="deploy", example_input=x).state_dict()
    b = compress(model, policy, form="deploy", example_input=x).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name, layers_cfg", [
    ("tiny-resdw-cnn", {"re:block.\\.expand": {"sparsity": 0.5, "pattern": "channel", "weight_bits": 8},
                        "head": {"rank": 4, "weight_bits": 4}, "block1.project": {"pattern": "2:4"}}),
    ("tiny-shared-mlp", {"shared": {"rank": 8, "weight_bits": 8, "act_bits": 8}, "inp": {"pattern": "2:4"}}),
    ("tiny-transformer", {"re:.*attn\\.q": {"weight_bits": 4, "sparsity": 0.5}, "blocks.0.ff1": {"rank": 4}}),
])
def test_to_deploy_of_the_train_form_resolves_the_policy_again(name: str, layers_cfg: dict) -> None:
    """The deploy form of a (fine-tuned) train form comes from the policy, not from anything
    left on its modules: to_deploy(train, policy) equals compress(..., form="deploy")."""
    from autocompress import to_deploy

    model, x = _setup(name)
    policy = Policy.from_dict({"layers": layers_cfg})
    train = compress(model, policy, form="train", example_input=x).eval()
    assert not any(k.startswith("autocompress") for m in train.modules() for k in vars(m))
    deploy = to_deploy(train, policy)
    ref = compress(model, policy, form="deploy", example_input=x)
    assert deploy.state_dict().keys() == ref.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(deploy.state_dict().values(), ref.state_dict().values(), strict=True))
    with torch.no_grad():
        assert torch.equal(deploy(x), ref(x))
    with pytest.raises(PolicyError, match="policy must be"):
        to_deploy(train, layers_cfg)  # type: ignore[arg-type]
