"""The ``minilm-embed`` data: generated sentences, the package's tokenizer, and the
pretrained MiniLM's embeddings of them as targets (computed once and cached)."""

from __future__ import annotations

import hashlib
import os

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from autocompress.errors import DataError
from autocompress.models.minilm import MAX_TOKENS, model_dir
from autocompress.tasks._base import cache_dir
from autocompress.tasks._task import Split, TaskData
from autocompress.tasks._texts import generate_sentences
from autocompress.tasks._train import predict

PER_TOPIC = 250  # 12 topics: 3000 sentences
N_TEST, N_VAL = 500, 500  # the first 500 sentences are the test split, the next 500 validation


def tokenize(sentences: list[str]) -> torch.Tensor:
    """Token ids (n, MAX_TOKENS) from the package's own tokenizer, padded with its pad id."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir()), local_files_only=True)
    enc = tok(sentences, padding="max_length", max_length=MAX_TOKENS, truncation=True,
              return_tensors="pt")
    if tok.pad_token_id != 0:
        raise DataError(f"the MiniLM tokenizer's pad id is {tok.pad_token_id}, the model expects 0")
    longest = int(enc["attention_mask"].sum(dim=1).max())
    if longest >= MAX_TOKENS:
        raise DataError(f"a sentence has {longest} tokens; the text set must fit in {MAX_TOKENS - 1}")
    return enc["input_ids"].to(torch.long)


def load_minilm_texts() -> TaskData:
    """The generated sentences (:mod:`._texts`), tokenized, with the pretrained MiniLM's
    embeddings as targets: test = the first 500, validation = the next 500, train = 2000.

    The embeddings take about 25 s on one thread; they are cached under ``$AUTOCOMPRESS_CACHE``,
    keyed by the token ids, the weights file and the torch and transformers versions.
    """
    from autocompress.models import create_model

    sentences, _ = generate_sentences(PER_TOPIC)
    tokens = tokenize(sentences)
    inputs = {"test": tokens[:N_TEST], "val": tokens[N_TEST:N_TEST + N_VAL],
              "train": tokens[N_TEST + N_VAL:]}
    path = cache_dir() / f"minilm-embed-targets-{_targets_key(inputs)}.safetensors"
    targets = _read_targets(path, inputs)
    if targets is None:
        model = create_model("minilm-l6")
        targets = {name: predict(model, x).contiguous() for name, x in inputs.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file(targets, str(tmp))
        os.replace(tmp, path)  # atomic: a killed run never leaves half a file
    return TaskData(**{name: Split(inputs[name], targets[name]) for name in ("train", "val", "test")})


def _targets_key(inputs: dict[str, torch.Tensor]) -> str:
    import transformers

    h = hashlib.blake2b(digest_size=8)
    h.update(f"{torch.__version__} {transformers.__version__}".encode())
    with open(model_dir() / "model.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    for name in sorted(inputs):
        h.update(name.encode() + str(tuple(inputs[name].shape)).encode())
        h.update(inputs[name].numpy().tobytes())
    return h.hexdigest()


def _read_targets(path: os.PathLike[str], inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    if not os.path.isfile(path):
        return None
    try:
        got = load_file(str(path))
    except (OSError, SafetensorError):  # a corrupt cache file: compute the targets again
        return None
    if set(got) != set(inputs) or any(len(got[n]) != len(x) for n, x in inputs.items()):
        return None
    return got
