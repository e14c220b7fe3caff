"""A policy's ``meta``: where it came from, as a typed, validated record.

``autocompress export`` writes it; ``apply`` and the dashboard read it. Every field is
optional (a hand-written policy has none) and every field is *data*: the task it names is
only a name. A built-in task name is looked up in the registry; a ``package.module:function``
name is never imported because a policy file says so (``apply`` asks for ``--task`` or
``--study`` to run user code knowingly).

Example::

    meta = PolicyMeta.from_dict({"study": "quickstart", "trial": 12,
                                 "task": {"name": "digits-cnn", "seed": 0}}, "policy.yaml")
    meta.task.name, meta.task.is_user_code    # ('digits-cnn', False)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from autocompress.errors import PolicyError, nearest

Scalar = str | int | float | bool | None
_TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TASK_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_TEXT = 4096  # characters of any one string field


@dataclass(frozen=True)
class TaskRef:
    """The task a policy was searched on: a name, its settings, the base-model seed."""

    name: str
    settings: Mapping[str, Scalar] = field(default_factory=dict)
    seed: int = 0

    @property
    def is_user_code(self) -> bool:
        """``package.module:function``: running it imports and calls someone's code."""
        return ":" in self.name


@dataclass(frozen=True)
class Predicted:
    """What the search predicted for the policy (before any artifact was built)."""

    metric: float | None = None
    metric_name: str | None = None
    size_bytes: int | None = None  # the artifact file, header included (the size objective)
    tensor_bytes: int | None = None  # its tensors alone
    latency_ms: float | None = None
    latency_device: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Provenance:
    """Task, base-model checksum, latency model and package versions of the search."""

    task: str | None = None
    task_settings: Mapping[str, str] = field(default_factory=dict)
    seed: int | None = None
    base_sha256: str | None = None
    latency_model: str | None = None
    latency_device: str | None = None
    latency_batch: int | None = None
    versions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyMeta:
    """The whole ``meta`` record; :meth:`from_dict` validates it field by field."""

    note: str | None = None
    study: str | None = None
    trial: int | None = None
    storage: str | None = None
    predicted: Predicted = field(default_factory=Predicted)
    provenance: Provenance = field(default_factory=Provenance)
    task: TaskRef | None = None
    finetune: Mapping[str, Scalar] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Any, source: str = "policy") -> PolicyMeta:
        where = f"{source}: meta"
        m = _mapping(raw, where, _FIELDS)
        return cls(
            note=_text(m.get("note"), f"{where}.note"),
            study=_name(m.get("study"), f"{where}.study"),
            trial=_int(m.get("trial"), f"{where}.trial"),
            storage=_text(m.get("storage"), f"{where}.storage"),
            predicted=_predicted(m.get("predicted"), f"{where}.predicted"),
            provenance=_provenance(m.get("provenance"), f"{where}.provenance"),
            task=_task(m.get("task"), f"{where}.task"),
            finetune=_scalars(m.get("finetune"), f"{where}.finetune"),
        )


_FIELDS = ("note", "study", "trial", "storage", "predicted", "provenance", "task", "finetune")


def _mapping(raw: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: must be a mapping of {', '.join(allowed)}, got {type(raw).__name__}")
    for k in raw:
        if k not in allowed:
            raise PolicyError(f"{where}: unknown field {k!r}; {nearest(str(k), allowed)}")
    return raw


def _text(v: Any, where: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > _MAX_TEXT:
        raise PolicyError(f"{where}: must be a string of at most {_MAX_TEXT} characters, got {_short(v)}")
    return v


def _name(v: Any, where: str) -> str | None:
    s = _text(v, where)
    if s is not None and not _TASK_NAME.match(s):
        raise PolicyError(f"{where}: must be letters, digits, '_', '-', '.', got {_short(v)}")
    return s


def _int(v: Any, where: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise PolicyError(f"{where}: must be an integer >= 0, got {_short(v)}")
    return v


def _num(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise PolicyError(f"{where}: must be a finite number, got {_short(v)}")
    return float(v)


def _scalars(raw: Any, where: str, *, as_str: bool = False) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: must be a mapping of names to plain values, got {type(raw).__name__}")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not k.isidentifier():
            raise PolicyError(f"{where}: keys must be identifiers, got {_short(k)}")
        ok = isinstance(v, str) if as_str else (v is None or isinstance(v, (str, bool, int, float)))
        if not ok or (isinstance(v, str) and len(v) > _MAX_TEXT):
            kind = "a string" if as_str else "a plain value (string, number, true/false, null)"
            raise PolicyError(f"{where}.{k}: must be {kind}, got {_short(v)}")
        if isinstance(v, float) and not math.isfinite(v):
            raise PolicyError(f"{where}.{k}: must be finite, got {v!r}")
        out[k] = v
    return out


def _predicted(raw: Any, where: str) -> Predicted:
    m = _mapping(raw, where, ("metric", "metric_name", "size_bytes", "tensor_bytes", "latency_ms",
                              "latency_device", "status"))
    return Predicted(
        metric=_num(m.get("metric"), f"{where}.metric"),
        metric_name=_text(m.get("metric_name"), f"{where}.metric_name"),
        size_bytes=_int(m.get("size_bytes"), f"{where}.size_bytes"),
        tensor_bytes=_int(m.get("tensor_bytes"), f"{where}.tensor_bytes"),
        latency_ms=_num(m.get("latency_ms"), f"{where}.latency_ms"),
        latency_device=_text(m.get("latency_device"), f"{where}.latency_device"),
        status=_text(m.get("status"), f"{where}.status"),
    )


def _provenance(raw: Any, where: str) -> Provenance:
    m = _mapping(raw, where, ("task", "task_settings", "seed", "base_sha256", "latency_model",
                              "latency_device", "latency_batch", "versions"))
    sha = _text(m.get("base_sha256"), f"{where}.base_sha256")
    if sha is not None and not _SHA256.match(sha):
        raise PolicyError(f"{where}.base_sha256: must be 64 lowercase hex digits, got {_short(sha)}")
    return Provenance(
        task=_text(m.get("task"), f"{where}.task"),
        task_settings=_scalars(m.get("task_settings"), f"{where}.task_settings", as_str=True),
        seed=_int(m.get("seed"), f"{where}.seed"),
        base_sha256=sha,
        latency_model=_text(m.get("latency_model"), f"{where}.latency_model"),
        latency_device=_text(m.get("latency_device"), f"{where}.latency_device"),
        latency_batch=_int(m.get("latency_batch"), f"{where}.latency_batch"),
        versions=_scalars(m.get("versions"), f"{where}.versions", as_str=True),
    )


def _task(raw: Any, where: str) -> TaskRef | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raise PolicyError(f"{where}: must be a mapping such as {{name: {raw}, seed: 0}}, got the string {_short(raw)}")
    m = _mapping(raw, where, ("name", "settings", "seed"))
    name = m.get("name")
    if not isinstance(name, str) or not (_TASK_NAME.match(name) or _TASK_PATH.match(name)):
        raise PolicyError(f"{where}.name: must be a task name (e.g. digits-cnn) or 'package.module:function', "
                          f"got {_short(name)}")
    seed = _int(m.get("seed", 0), f"{where}.seed")
    return TaskRef(name, _scalars(m.get("settings"), f"{where}.settings"), seed or 0)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."
