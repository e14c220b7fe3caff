"""Architectures: the tiny test models and the task models, in one registry."""

from autocompress.models import _tiny, _zoo, minilm  # noqa: F401  (register the models)
from autocompress.models._attention import SplitMultiheadAttention, split_attention
from autocompress.models._registry import MODELS, ModelSpec, create_model, register_model

__all__ = [
    "MODELS",
    "ModelSpec",
    "SplitMultiheadAttention",
    "create_model",
    "register_model",
    "split_attention",
]
