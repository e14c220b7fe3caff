"""Tiny architectures for fast tests: every structure a user's model may have."""

from __future__ import annotations

import torch
from torch import nn

from autocompress.models._registry import ModelSpec, register_model


class TinyMLP(nn.Module):
    def __init__(self, d_in: int = 64, hidden: int = 48, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden // 2)
        self.fc3 = nn.Linear(hidden // 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class ResDWBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise 3x3 -> 1x1 project, plus the skip."""

    def __init__(self, c: int, expand: int = 2) -> None:
        super().__init__()
        h = c * expand
        self.expand = nn.Conv2d(c, h, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(h)
        self.dw = nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False)
        self.bn2 = nn.BatchNorm2d(h)
        self.project = nn.Conv2d(h, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.expand(x)))
        y = torch.relu(self.bn2(self.dw(y)))
        return x + self.bn3(self.project(y))


class TinyResDWCNN(nn.Module):
    """A CNN with a residual stream, depthwise convs, BatchNorm and a flatten -> Linear head."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.block1 = ResDWBlock(8)
        self.block2 = ResDWBlock(8)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Linear(8 * 2 * 2, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.block2(self.block1(x))
        return self.head(torch.flatten(self.pool(x), 1))


class TinyConcatCNN(nn.Module):
    """Two branches concatenated along channels (Inception / DenseNet style)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 6, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 5, padding=2)
        self.mix = nn.Conv2d(10, 8, 3, padding=1)
        self.head = nn.Linear(8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], dim=1)
        y = torch.relu(self.mix(y))
        return self.head(y.mean(dim=(2, 3)))


class TinySharedMLP(nn.Module):
    """One Linear layer applied twice (weight sharing)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.inp = nn.Linear(16, 24)
        self.shared = nn.Linear(24, 24)
        self.out = nn.Linear(24, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        h = torch.relu(self.shared(h))
        h = torch.relu(self.shared(h))
        return self.out(h)


class Attention(nn.Module):
    """Multi-head self-attention with explicit q/k/v/o Linear layers."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (
            p(x).view(b, t, self.heads, -1).transpose(1, 2) for p in (self.q, self.k, self.v)
        )
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.o(y.transpose(1, 2).reshape(b, t, -1))


class EncoderBlock(nn.Module):
    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, ff)
        self.ff2 = nn.Linear(ff, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.ff2(torch.nn.functional.gelu(self.ff1(self.ln2(x))))


class TinyTransformer(nn.Module):
    """A 2-block pre-norm transformer encoder over token ids, mean-pooled classifier."""

    def __init__(self, vocab: int = 50, d: int = 32, heads: int = 4, ff: int = 64,
                 classes: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.Sequential(EncoderBlock(d, heads, ff), EncoderBlock(d, heads, ff))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(self.embed(tokens))).mean(dim=1))


class TinyMHA(nn.Module):
    """Uses torch's own nn.MultiheadAttention (packed in-projection)."""

    def __init__(self, d: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(8, d)
        self.mha = nn.MultiheadAttention(d, 2, batch_first=True)
        self.head = nn.Linear(d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        h, _ = self.mha(h, h, h, need_weights=False)
        return self.head(h.mean(dim=1))


register_model("tiny-mlp", ModelSpec(TinyMLP, (64,), 10, tiny=True))
register_model("tiny-resdw-cnn", ModelSpec(TinyResDWCNN, (1, 12, 12), 10, tiny=True))
register_model("tiny-concat-cnn", ModelSpec(TinyConcatCNN, (1, 8, 8), 10, tiny=True))
register_model("tiny-shared-mlp", ModelSpec(TinySharedMLP, (16,), 10, tiny=True))
register_model(
    "tiny-transformer",
    ModelSpec(TinyTransformer, (12,), 4, tiny=True, input_dtype=torch.long, input_high=50),
)
register_model("tiny-mha", ModelSpec(TinyMHA, (6, 8), 3, tiny=True))
