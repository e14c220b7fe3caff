"""The artifact's header: what loading needs, and its exact size before anything is built.

An artifact is one safetensors file: an 8-byte length, a JSON header (each tensor's dtype,
shape and byte range, plus ``__metadata__``, a map of strings), then the tensors' bytes. Our
metadata holds only what :func:`~autocompress.artifact.load_artifact` needs:

- ``format``, ``version``;
- ``policy``: the compression settings as compact JSON, *without* ``meta`` (the provenance
  goes beside the artifact, e.g. ``apply``'s ``policy.yaml`` and ``report.json``);
- ``input_shape`` / ``input_dtype`` (or ``input_shapes`` / ``input_dtypes`` for a tuple);
- ``aliases``: tied tensors stored once (only when there are any);
- ``crc32``: one CRC-32 per tensor, 8 hex digits each, in sorted tensor-name order.

:func:`file_nbytes` computes the whole file's size from the tensors' names, shapes and dtypes
and the metadata, exactly as safetensors lays it out (tensors sorted by dtype, then name; the
header padded with spaces to 8 bytes). The dtype order and the padding are read once from the
installed safetensors itself (:func:`_layout`), so the prediction follows its version.
"""

from __future__ import annotations

import functools
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from autocompress.errors import ArtifactError
from autocompress.policy import Policy

FORMAT = "autocompress.artifact"
VERSION = "3"  # 3: slim header (policy JSON without meta), CRC-32 per tensor
READABLE_VERSIONS = ("2", "3")  # 2: YAML policy with meta, no checksums
CRC_DIGITS = 8


@dataclass(frozen=True)
class TensorSpec:
    """One stored tensor, as the header describes it."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def policy_text(policy: Policy) -> str:
    """The policy as the header stores it: compact JSON of its settings, no ``meta``."""
    return json.dumps(policy.without_meta().to_dict(), separators=(",", ":"), sort_keys=True)


def input_metadata(x: torch.Tensor | tuple[torch.Tensor, ...]) -> dict[str, str]:
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


def metadata(policy: Policy, example_input: torch.Tensor | tuple[torch.Tensor, ...],
             aliases: Mapping[str, str], crc32: str) -> dict[str, str]:
    """The ``__metadata__`` of an artifact (``crc32``: the checksums, or a placeholder of the
    same length when only the size is wanted)."""
    out = {"format": FORMAT, "version": VERSION, "policy": policy_text(policy), **input_metadata(example_input)}
    if aliases:
        out["aliases"] = json.dumps(dict(aliases), separators=(",", ":"))
    out["crc32"] = crc32
    return out


def crc_placeholder(n_tensors: int) -> str:
    return "0" * (CRC_DIGITS * n_tensors)


def file_nbytes(specs: Sequence[TensorSpec], meta: Mapping[str, str]) -> int:
    """Exact size of the safetensors file holding ``specs`` with ``meta``."""
    return 8 + header_nbytes(specs, meta) + sum(s.nbytes for s in specs)


def header_nbytes(specs: Sequence[TensorSpec], meta: Mapping[str, str]) -> int:
    rank, pad = _layout()
    order = sorted(specs, key=lambda s: (-rank[_st_dtype(s.dtype)], s.name.encode("utf-8")))
    entries: dict[str, object] = {"__metadata__": dict(meta)}
    offset = 0
    for s in order:
        entries[s.name] = {"dtype": _st_dtype(s.dtype), "shape": list(s.shape),
                           "data_offsets": [offset, offset + s.nbytes]}
        offset += s.nbytes
    n = len(json.dumps(entries, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return n + (-n % 8 if pad else 0)


_ST_DTYPES = {torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16",
              torch.float16: "F16", torch.bfloat16: "BF16", torch.int32: "I32", torch.float32: "F32",
              torch.float64: "F64", torch.int64: "I64"}


def _st_dtype(dtype: torch.dtype) -> str:
    if dtype not in _ST_DTYPES:
        raise ArtifactError(f"artifact tensors of dtype {dtype} are not supported; known: {list(_ST_DTYPES)}")
    return _ST_DTYPES[dtype]


@functools.lru_cache(maxsize=1)
def _layout() -> tuple[dict[str, int], bool]:
    """(dtype -> rank in safetensors' storage order, whether the header is padded to 8 bytes),
    read from the installed safetensors by writing one tiny file in memory."""
    from safetensors.torch import save

    probe = {f"t{i}": torch.zeros(1, dtype=dt) for i, dt in enumerate(_ST_DTYPES)}
    for k in range(1, 9):  # a metadata length whose compact header is not a multiple of 8
        meta = {"k": "v" * k}
        raw = save(probe, metadata=meta)
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        header.pop("__metadata__", None)
        compact = len(json.dumps({"__metadata__": meta, **header}, separators=(",", ":")))
        if compact % 8:
            break
    by_offset = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    rank = {entry["dtype"]: len(by_offset) - i for i, (_, entry) in enumerate(by_offset)}
    return rank, n != compact
