"""One exception hierarchy for the package.

Every message states the rule, the value received and the fix, e.g.
``weight_bits must be one of (2, 3, 4, 5, 6, 8, 16, 32), got 7 for layer 'fc1'``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AutocompressError(Exception):
    """Base class of every error autocompress raises on purpose."""


class PolicyError(AutocompressError, ValueError):
    """A policy file or policy object is invalid for the model it is applied to."""


class GraphError(AutocompressError):
    """The model graph cannot be analysed for the requested operation."""


class ConfigError(AutocompressError, ValueError):
    """A study, search-space or task configuration is invalid."""


class DataError(AutocompressError):
    """Data files are missing, corrupt or of the wrong shape."""


class ArtifactError(AutocompressError):
    """A compressed artifact cannot be written or read."""


class InputFileError(PolicyError, ConfigError):
    """An input file (policy, study, space, profile) cannot be read: missing, too large, not
    UTF-8 text, not valid YAML. A PolicyError and a ConfigError at once, so callers that catch
    either for their own kind of file keep working."""


class OutputError(AutocompressError):
    """An output (policy, artifact, report, table) cannot be written where it was asked for."""


class TrialFailed(AutocompressError):
    """A candidate could not be evaluated (diverging fine-tune, ...); the search goes on."""


def nearest(name: str, known: Iterable[str], n: int = 3) -> str:
    """A short 'did you mean' hint listing the closest known names."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=n, cutoff=0.4)
    if close:
        return f"did you mean {', '.join(repr(c) for c in close)}?"
    shown = ", ".join(repr(k) for k in known[:10])
    more = f" (and {len(known) - 10} more)" if len(known) > 10 else ""
    return f"known names: {shown}{more}"
