"""Registry of architectures. Tiny ones live here like real ones, so tests that loop over
the registry cover every model (timm ``tests/test_models.py`` habit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from autocompress.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model and an example input batch for it."""

    factory: Callable[[], nn.Module]
    input_shape: tuple[int, ...]  # one sample, without the batch dimension
    num_outputs: int
    tiny: bool = False  # part of the fast unit-test sweep
    input_dtype: torch.dtype = torch.float32
    input_high: int = 0  # for integer (token) inputs: values in [0, input_high)

    def example_input(self, batch: int = 2, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        if self.input_dtype.is_floating_point:
            return torch.randn((batch, *self.input_shape), generator=g)
        return torch.randint(0, self.input_high, (batch, *self.input_shape), generator=g)


MODELS: Registry[ModelSpec] = Registry("model")


def register_model(name: str, spec: ModelSpec) -> ModelSpec:
    return MODELS.register(name)(spec)


def create_model(name: str, seed: int = 0) -> nn.Module:
    """Build a registered architecture with deterministic initial weights."""
    spec = MODELS.get(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return spec.factory()
