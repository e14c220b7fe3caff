"""The Ray Tune backend: candidates of a study as Tune trials across a Ray cluster, the
study's storage written by the driver alone. Ray is an optional extra (``autocompress[ray]``):
importing this package does not import Ray; using :func:`connect` or :func:`run_ray` does."""

from __future__ import annotations

from typing import Any

__all__ = ["connect", "run_ray"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from autocompress.search.ray_tune import _searcher

        return getattr(_searcher, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
