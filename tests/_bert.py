"""A Hugging Face ``BertModel`` from a small config (random weights) behind the MiniLM task's
sentence encoder: the transformer layout users bring, for the dynamic int8 and head pruning
tests. Needs the ``minilm`` extra (``transformers``); skips the calling test without it."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def tiny_bert() -> nn.Module:
    pytest.importorskip("transformers", reason="the minilm extra: pip install 'autocompress[minilm]'")
    from transformers import BertConfig, BertModel

    from autocompress.models.minilm import SentenceEncoder

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=16, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    return SentenceEncoder(BertModel(cfg, add_pooling_layer=False)).eval()
