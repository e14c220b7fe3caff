"""The artifact: one safetensors file with the deploy form's tensors and its policy.

Loading never unpickles anything: safetensors holds raw tensors and string metadata. The
structure is rebuilt on a fresh instance of the architecture by replaying the policy
(``compress(fresh, policy, form="deploy")``), then the stored tensors are loaded into it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from autocompress.errors import ArtifactError
from autocompress.policy import Policy

FORMAT = "autocompress.artifact"
VERSION = "2"  # 2: N:M indices as one combinatorial rank per group


@dataclass(frozen=True)
class ArtifactInfo:
    path: Path
    file_bytes: int  # the whole file on disk (header included)
    tensor_bytes: int  # the tensors alone: what the size model predicts


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
    meta: dict[str, str] | None = None,
) -> ArtifactInfo:
    """Write a deploy-form model to ``path`` (``.safetensors``).

    ``example_input``: a batch of inputs, or a tuple of them for a model of several inputs;
    their per-sample shapes and dtypes go into the header so :func:`load_artifact` can
    rebuild the deploy form without data."""
    from safetensors.torch import save_file

    tensors, aliases = unique_state(model)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "policy": policy.to_yaml(),
        **_input_header(example_input),
        "aliases": json.dumps(aliases),
        "torch": torch.__version__,
        **(meta or {}),
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(p), metadata=header)
    return ArtifactInfo(p, p.stat().st_size, sum(t.numel() * t.element_size() for t in tensors.values()))


def _input_header(x: torch.Tensor | tuple[torch.Tensor, ...]) -> dict[str, str]:
    """Header keys for the inputs: one tensor keeps the original keys, a tuple gets lists."""
    def dtype(t: torch.Tensor) -> str:
        return str(t.dtype).replace("torch.", "")

    if isinstance(x, torch.Tensor):
        return {"input_shape": json.dumps(list(x.shape[1:])), "input_dtype": dtype(x)}
    if isinstance(x, tuple) and x and all(isinstance(t, torch.Tensor) for t in x):
        return {"input_shapes": json.dumps([list(t.shape[1:]) for t in x]),
                "input_dtypes": json.dumps([dtype(t) for t in x])}
    raise ArtifactError(
        f"save_artifact: example_input must be a tensor or a non-empty tuple of tensors (one per forward "
        f"argument), got {type(x).__name__}; pass the batch the model was compressed with")


def _example_from_header(header: dict[str, str], path: str | Path) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """A zero batch of 2 shaped like the inputs recorded by :func:`_input_header`."""
    try:
        if "input_shapes" in header:
            shapes, dtypes = json.loads(header["input_shapes"]), json.loads(header["input_dtypes"])
            return tuple(torch.zeros((2, *s), dtype=getattr(torch, d)) for s, d in zip(shapes, dtypes, strict=True))
        return torch.zeros((2, *json.loads(header["input_shape"])), dtype=getattr(torch, header["input_dtype"]))
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise ArtifactError(f"{path}: the header's input shapes are missing or malformed ({e!r})") from None


def read_header(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"{p}: artifact file not found")
    try:
        with safe_open(str(p), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as e:
        raise ArtifactError(f"{p}: not a readable safetensors artifact ({e})") from None
    if header.get("format") != FORMAT:
        raise ArtifactError(f"{p}: not an autocompress artifact (format={header.get('format')!r})")
    if header.get("version") != VERSION:
        raise ArtifactError(f"{p}: artifact version {header.get('version')!r}; this reader knows {VERSION}")
    return header


def load_artifact(path: str | Path, fresh_model: nn.Module) -> nn.Module:
    """Rebuild the deploy form on ``fresh_model`` (same architecture) and load the tensors.

    Example::

        small = load_artifact("lenet.safetensors", LeNet300())
    """
    from safetensors.torch import load_file

    from autocompress.compress import compress

    header = read_header(path)
    policy = Policy.from_yaml(header["policy"], source=f"{path} (embedded policy)")
    example = _example_from_header(header, path)
    model = compress(fresh_model, policy, form="deploy", example_input=example)
    tensors = load_file(str(path))
    for alias, key in json.loads(header["aliases"]).items():
        tensors[alias] = tensors[key]
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ArtifactError(
            f"{path}: the artifact does not fit this model (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}); pass a fresh instance of the architecture it was made from"
        )
    return model.eval()
