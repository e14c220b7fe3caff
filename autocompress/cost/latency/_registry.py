"""Latency models by name (``"analytic"``, ``"measured"``), as a study file names them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from autocompress.registry import Registry

if TYPE_CHECKING:
    from autocompress.cost.latency._base import LatencyModel

LATENCY_MODELS: Registry[Callable[[], LatencyModel]] = Registry("latency model")


def register_latency_model(name: str) -> Callable[[type[LatencyModel]], type[LatencyModel]]:
    """Class decorator: register a latency model class under ``name``."""

    def deco(cls: type[LatencyModel]) -> type[LatencyModel]:
        LATENCY_MODELS.register(name)(cls)
        return cls

    return deco


def get_latency_model(name: str) -> LatencyModel:
    """A fresh instance of the latency model registered as ``name``."""
    return LATENCY_MODELS.get(name)()
