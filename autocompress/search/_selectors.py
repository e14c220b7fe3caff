"""Layer selectors of search spaces: an exact module path, ``re:<regex>``, ``@first``, ``@last``.

``@first`` / ``@last`` are the first / last compressible layer in model (registration)
order, usually the stem and the classifier. A ``re:`` selector must match the whole path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from autocompress.errors import ConfigError

SPECIAL: tuple[str, ...] = ("@first", "@last")


def parse(raw: Any, where: str) -> str:
    """Validate one selector (compiles ``re:`` patterns)."""
    if not isinstance(raw, str) or not raw:
        raise ConfigError(
            f"{where}: a layer selector must be a module path, 're:<regex>', '@first' or '@last', "
            f"got {raw!r}"
        )
    if raw.startswith("re:"):
        try:
            re.compile(raw[3:])
        except re.error as e:
            raise ConfigError(f"{where}: invalid regular expression {raw[3:]!r}: {e}") from None
    elif raw.startswith("@") and raw not in SPECIAL:
        raise ConfigError(f"{where}: unknown special selector {raw!r}; allowed: {list(SPECIAL)}")
    return raw


def is_exact(sel: str) -> bool:
    """Exact paths and ``@first`` / ``@last`` (they beat ``re:`` patterns)."""
    return not sel.startswith("re:")


def matches(sel: str, name: str, names: Sequence[str]) -> bool:
    if sel.startswith("re:"):
        return re.fullmatch(sel[3:], name) is not None
    if sel == "@first":
        return bool(names) and names[0] == name
    if sel == "@last":
        return bool(names) and names[-1] == name
    return sel == name


def select(sels: Sequence[str], names: Sequence[str]) -> list[str]:
    """The names (in model order) that any selector matches."""
    return [n for n in names if any(matches(s, n, names) for s in sels)]
