"""Training-input augmentations a task may offer to the candidate fine-tune.

An augmentation is a callable ``(inputs, generator) -> inputs`` applied to each fine-tune
batch when the study asks for it (``finetune.augment: true``); the base model is then run
on the same augmented batch as the teacher, so distillation matches what the student sees.
The base model's own training is never augmented (its cache key does not change).

Example::

    shift = RandomShift(pixels=2, fill=-0.4242)
    x = shift(images, torch.Generator().manual_seed(0))   # (N, C, H, W), same shape
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from autocompress.errors import ConfigError

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class RandomShift:
    """Move each sample by a random whole number of positions, up to ``pixels`` along each
    of its last ``dims`` axes (2: images ``(N, C, H, W)``; 1: sequences ``(N, C, L)``),
    filling what comes in with ``fill`` (the normalised background value).

    Shifts are drawn independently per sample and per axis, uniformly in
    ``[-pixels, pixels]``; shapes and dtype are kept.
    """

    pixels: int = 2
    fill: float = 0.0
    dims: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.pixels, int) or self.pixels < 0:
            raise ConfigError(f"RandomShift.pixels must be an integer >= 0, got {self.pixels!r}")
        if self.dims not in (1, 2):
            raise ConfigError(f"RandomShift.dims must be 1 (sequences) or 2 (images), got {self.dims!r}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.dim() < self.dims + 1:
            raise ConfigError(
                f"RandomShift(dims={self.dims}) needs batches with at least {self.dims + 1} axes "
                f"(batch first), got shape {tuple(x.shape)}; use dims=1 for (N, L) or (N, C, L) sequences"
            )
        if self.pixels == 0:
            return x
        p, n = self.pixels, x.shape[0]
        sizes = x.shape[-self.dims:]
        padded = torch.nn.functional.pad(x, (p, p) * self.dims, value=self.fill)
        # one offset in [0, 2p] per sample and axis; gather the window that starts there
        offsets = torch.randint(0, 2 * p + 1, (self.dims, n), generator=generator)
        out = padded
        for axis, size in enumerate(sizes):
            dim = x.dim() - self.dims + axis
            index = offsets[axis].view(n, *([1] * (x.dim() - 1))) + _arange_along(size, dim, x.dim())
            shape = list(out.shape)
            shape[dim] = size
            out = torch.gather(out, dim, index.expand(shape))
        return out


def _arange_along(size: int, dim: int, ndim: int) -> torch.Tensor:
    """``arange(size)`` shaped to broadcast along axis ``dim`` of an ``ndim``-axis tensor."""
    shape = [1] * ndim
    shape[dim] = size
    return torch.arange(size).view(shape)
