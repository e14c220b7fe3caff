"""Artifact integrity: a CRC-32 of every tensor in the header, checked at load, and no
non-finite weights in, or out.

CRC-32 catches what happens to files by accident (a flipped bit on disk, a truncated copy, a
tensor overwritten in place) at 8 hex digits per tensor. It is not a signature: someone who
edits a file on purpose can recompute it. Weights are checked to be finite as well, so an
artifact whose checksums were recomputed after writing NaN into a bias is still refused,
naming the tensor.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from autocompress.artifact._format import CRC_DIGITS
from autocompress.errors import ArtifactError


def tensor_crc32(t: torch.Tensor) -> int:
    flat = t.detach().contiguous().reshape(-1)
    if flat.numel() == 0:
        return zlib.crc32(b"")
    return zlib.crc32(flat.view(torch.uint8).numpy().tobytes())


def checksums(tensors: Mapping[str, torch.Tensor]) -> str:
    """8 hex digits per tensor, in sorted name order."""
    return "".join(f"{tensor_crc32(tensors[k]):08x}" for k in sorted(tensors))


def verify(tensors: Mapping[str, torch.Tensor], crc: str, path: str | Path) -> None:
    """Raise naming the first tensor whose bytes do not match the header's checksum."""
    names = sorted(tensors)
    if len(crc) != CRC_DIGITS * len(names):
        raise ArtifactError(f"{path}: the header has checksums for {len(crc) // CRC_DIGITS} tensors but the file "
                            f"holds {len(names)}; the file is damaged: write it again (autocompress apply)")
    for i, name in enumerate(names):
        want = crc[i * CRC_DIGITS:(i + 1) * CRC_DIGITS]
        if f"{tensor_crc32(tensors[name]):08x}" != want:
            raise ArtifactError(f"{path}: tensor {name!r} does not match its checksum (the file was damaged or "
                                "edited after it was written); write it again (autocompress apply)")


def check_finite(model: nn.Module, path: str | Path, verb: str) -> None:
    """Refuse a model whose parameters, or compressed-weight buffers, hold NaN or inf.

    Other buffers (attention masks filled with -inf, say) may be non-finite by design."""
    from autocompress.techniques.deploy import DeployLeaf

    named: list[tuple[str, torch.Tensor]] = list(model.named_parameters())
    for mod_name, mod in model.named_modules():
        if isinstance(mod, DeployLeaf):
            named += [(f"{mod_name}.{k}" if mod_name else k, b) for k, b in mod.named_buffers(recurse=False)]
    for name, t in named:
        if t is not None and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ArtifactError(f"{path}: {verb}: tensor {name!r} holds NaN or infinite values; a diverged "
                                "fine-tune or a damaged file: build the artifact again")
