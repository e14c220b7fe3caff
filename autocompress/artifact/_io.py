"""Writing and reading artifacts: one safetensors file with the deploy form's tensors.

Loading never unpickles anything: safetensors holds raw tensors and string metadata. The
structure is rebuilt on a fresh instance of the architecture by replaying the policy
(``compress(fresh, policy, form="deploy")``), then the stored tensors are checked against
their checksums and loaded into it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autocompress import files
from autocompress.artifact._format import FORMAT, READABLE_VERSIONS, TensorSpec, file_nbytes, metadata
from autocompress.artifact._integrity import check_finite, checksums, verify
from autocompress.errors import ArtifactError, AutocompressError
from autocompress.policy import Policy


@dataclass(frozen=True)
class ArtifactInfo:
    path: Path
    file_bytes: int  # the whole file on disk (header included): what the size objective predicts
    tensor_bytes: int  # the tensors alone: what ``size_bytes`` predicts


def unique_state(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict with tied tensors stored once: (tensors, alias -> stored key)."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...], torch.dtype], str] = {}
    for key, t in model.state_dict().items():
        ident = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)
        if t.numel() > 0 and ident in seen:
            aliases[key] = seen[ident]
            continue
        seen[ident] = key
        tensors[key] = t.detach().contiguous().clone()
    return tensors, aliases


def state_bytes(model: nn.Module) -> int:
    """Bytes of the unique tensors of a model's state dict."""
    tensors, _ = unique_state(model)
    return sum(t.numel() * t.element_size() for t in tensors.values())


def save_artifact(
    model: nn.Module,
    policy: Policy,
    path: str | Path,
    example_input: torch.Tensor | tuple[torch.Tensor, ...],
) -> ArtifactInfo:
    """Write a deploy-form model to ``path`` (``.safetensors``), atomically.

    ``example_input``: a batch of inputs, or a tuple of them for a model of several inputs;
    their per-sample shapes and dtypes go into the header so :func:`load_artifact` can
    rebuild the deploy form without data. The header holds only what loading needs; the
    policy's ``meta`` (provenance) is left out. A model with NaN or infinite weights is refused.
    """
    from safetensors.torch import save_file

    p = Path(path)
    check_finite(model, p, "not saved")
    tensors, aliases = unique_state(model)
    header = metadata(policy, example_input, aliases, checksums(tensors))
    if not p.parent.is_dir():
        files.check_output_dir(p.parent, "artifact")
    with files.atomic_path(p, "artifact") as tmp:
        save_file(tensors, str(tmp), metadata=header)
    specs = [TensorSpec(k, tuple(t.shape), t.dtype) for k, t in tensors.items()]
    info = ArtifactInfo(p, p.stat().st_size, sum(s.nbytes for s in specs))
    if info.file_bytes != file_nbytes(specs, header):  # the size model relies on this layout
        raise ArtifactError(f"{p}: safetensors wrote {info.file_bytes} bytes where {file_nbytes(specs, header)} "
                            "were expected; this safetensors version lays files out differently (report it)")
    return info


def _example_from_header(header: dict[str, str], path: str | Path) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """A zero batch of 2 shaped like the inputs recorded by :func:`metadata`."""
    try:
        if "input_shapes" in header:
            shapes, dtypes = json.loads(header["input_shapes"]), json.loads(header["input_dtypes"])
            return tuple(torch.zeros((2, *s), dtype=_dtype(d)) for s, d in zip(shapes, dtypes, strict=True))
        return torch.zeros((2, *json.loads(header["input_shape"])), dtype=_dtype(header["input_dtype"]))
    except (KeyError, ValueError, TypeError, AttributeError, RuntimeError) as e:
        raise ArtifactError(f"{path}: the header's input shapes are missing or malformed ({e!r})") from None


def _dtype(name: Any) -> torch.dtype:
    dt = getattr(torch, name, None) if isinstance(name, str) else None
    if not isinstance(dt, torch.dtype):
        raise ValueError(f"not a torch dtype: {name!r}")
    return dt


def read_header(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"{p}: artifact file not found")
    try:
        with safe_open(str(p), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as e:
        raise ArtifactError(f"{p}: not a readable safetensors artifact ({' '.join(str(e).split())})") from None
    if header.get("format") != FORMAT:
        raise ArtifactError(f"{p}: not an autocompress artifact (format={header.get('format')!r})")
    if header.get("version") not in READABLE_VERSIONS:
        raise ArtifactError(f"{p}: artifact version {header.get('version')!r}; this reader knows "
                            f"{', '.join(READABLE_VERSIONS)} (written by a newer autocompress?)")
    return header


def embedded_policy(header: dict[str, str], path: str | Path) -> Policy:
    source = f"{path} (embedded policy)"
    if header.get("version") == "2":
        return Policy.from_yaml(header.get("policy", ""), source=source)
    try:
        raw = json.loads(header["policy"])
    except (KeyError, ValueError) as e:
        raise ArtifactError(f"{source}: missing or not JSON ({e})") from None
    return Policy.from_dict(raw, source)


def load_artifact(path: str | Path, fresh_model: nn.Module) -> nn.Module:
    """Rebuild the deploy form on ``fresh_model`` (same architecture) and load the tensors.

    Every tensor is checked against its CRC-32 before it is used, and the weights must be
    finite; a damaged file is refused with one line naming the tensor.

    Example::

        small = load_artifact("lenet.safetensors", LeNet300())
    """
    from safetensors.torch import load_file

    from autocompress.compress import compress

    header = read_header(path)
    policy = embedded_policy(header, path)
    example = _example_from_header(header, path)
    try:
        tensors = load_file(str(path))
    except Exception as e:
        raise ArtifactError(f"{path}: the tensors cannot be read ({' '.join(str(e).split())})") from None
    if header.get("version") != "2":
        verify(tensors, header.get("crc32", ""), path)
    aliases = _aliases(header, tensors, path)
    try:
        model = compress(fresh_model, policy, form="deploy", example_input=example)
    except AutocompressError as e:
        raise ArtifactError(f"{path}: its policy does not fit this model ({e}); pass a fresh instance of "
                            "the architecture it was made from") from None
    except Exception as e:  # the model cannot even run on the recorded input shapes
        first = " ".join(str(e).split())[:300]
        raise ArtifactError(f"{path}: the artifact does not fit this model (running it on the recorded input "
                            f"shapes failed: {type(e).__name__}: {first}); pass a fresh instance of the "
                            "architecture it was made from") from None
    for alias, key in aliases.items():
        tensors[alias] = tensors[key]
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as e:  # shapes differ: another architecture, or another width
        first = " ".join(str(e).split("\n\t")[1:2]) or " ".join(str(e).split())
        raise ArtifactError(f"{path}: the artifact does not fit this model ({first[:300]}); pass a fresh "
                            "instance of the architecture it was made from") from None
    if missing or unexpected:
        raise ArtifactError(
            f"{path}: the artifact does not fit this model (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}); pass a fresh instance of the architecture it was made from"
        )
    check_finite(model, path, "not loaded")
    return model.eval()


def _aliases(header: dict[str, str], tensors: dict[str, torch.Tensor], path: str | Path) -> dict[str, str]:
    try:
        raw = json.loads(header.get("aliases") or "{}")
    except ValueError:
        raw = None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and v in tensors for k, v in raw.items()):
        raise ArtifactError(f"{path}: the header's aliases are malformed or name tensors the file lacks")
    return raw
