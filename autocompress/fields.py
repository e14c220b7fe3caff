"""Field validation for every config: each error names the file, the field path, the value
and what is allowed.

``where`` strings look like ``"studies/quickstart.yaml: finetune.steps"`` (:func:`join`
builds them). Errors are ``ConfigError`` unless a caller passes its own ``error`` class (a
subclass of ``AutocompressError``). Used by study files, search spaces, the fine-tune and
training configs and device profiles; policy files keep their own per-layer messages
(``policy/_config.py``: "weight_bits must be one of ..., got 7 for layer 'fc1'").

Example::

    steps = as_int(raw.get("steps", 100), join("study.yaml: finetune", "steps"), lo=0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from autocompress.errors import AutocompressError, ConfigError, nearest

Error = type[AutocompressError]


def mapping(raw: Any, where: str, error: Error = ConfigError) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise error(
            f"{where}: expected a mapping (key: value), got {type(raw).__name__} {raw!r}"
        )
    return raw


def check_keys(raw: dict[str, Any], allowed: Iterable[str], where: str, error: Error = ConfigError) -> None:
    allowed = list(allowed)
    for k in raw:
        if k not in allowed:
            raise error(f"{where}: unknown field {k!r}; {nearest(str(k), allowed)}")


def join(where: str, key: str | int) -> str:
    """Extend a field path: ``("f.yaml: rules", 2) -> "f.yaml: rules[2]"``, ``("f.yaml", "seed")
    -> "f.yaml: seed"``, ``("f.yaml: budget", "trials") -> "f.yaml: budget.trials"``."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def as_int(v: Any, where: str, lo: int | None = None, error: Error = ConfigError) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
        floor = f" >= {lo}" if lo is not None else ""
        raise error(f"{where}: must be an integer{floor}, got {v!r}")
    return v


def as_float(
    v: Any, where: str, lo: float | None = None, hi: float | None = None, *, open_lo: bool = False,
    open_hi: bool = False, error: Error = ConfigError, field: str | None = None,
) -> float:
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    if ok and lo is not None:
        ok = v > lo if open_lo else v >= lo
    if ok and hi is not None:
        ok = v < hi if open_hi else v <= hi
    if not ok:
        rng = (
            f" in {'(' if open_lo else '['}{lo}, {hi}{')' if open_hi else ']'}"
            if lo is not None and hi is not None else ""
        )
        rng = rng or (f" {'>' if open_lo else '>='} {lo}" if lo is not None else "")
        raise error(f"{_at(where, field)} must be a number{rng}, got {v!r}")
    return float(v)


def as_bool(v: Any, where: str, error: Error = ConfigError, field: str | None = None) -> bool:
    if not isinstance(v, bool):
        raise error(f"{_at(where, field)} must be true or false, got {v!r}")
    return v


def as_str(v: Any, where: str, error: Error = ConfigError) -> str:
    if not isinstance(v, str) or not v:
        raise error(f"{where}: must be a non-empty string, got {v!r}")
    return v


def one_of(v: Any, options: Sequence[Any], where: str, error: Error = ConfigError,
           field: str | None = None) -> Any:
    """``v`` if it is one of ``options`` (a bool never stands for 0/1, a float never for an int)."""
    wrong_type = (isinstance(v, bool) != any(isinstance(o, bool) for o in options)
                  or (isinstance(v, float) and all(type(o) is int for o in options)))
    if wrong_type or v not in options:
        raise error(f"{_at(where, field)} must be one of {list(options)}, got {v!r}")
    return v


def _at(where: str, field: str | None) -> str:
    """``"where:"``, or ``"where: field"`` where messages name the field in the sentence
    (``layers.fc1: weight_bits must be one of ...``)."""
    if field:
        return f"{where}: {field}" if where else field
    return f"{where}:"


def as_list(v: Any, where: str, *, allow_scalar: bool = True, allow_empty: bool = False,
            error: Error = ConfigError) -> list[Any]:
    """A YAML list; a single scalar means a one-element list when ``allow_scalar``."""
    if isinstance(v, list):
        if not v and not allow_empty:
            raise error(f"{where}: must not be an empty list")
        return v
    if allow_scalar and not isinstance(v, dict) and v is not None:
        return [v]
    raise error(f"{where}: must be a list such as [4, 8], got {v!r}")
