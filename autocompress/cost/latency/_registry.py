"""Latency models by name (``"analytic"``, ``"measured"``), as a study file names them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from autocompress.registry import Registry

if TYPE_CHECKING:
    from autocompress.cost._plan import LeafPlan
    from autocompress.cost.latency._base import LatencyEstimate, LatencyModel

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


def estimate_latency(leaves: Sequence[LeafPlan], latency_model: str = "analytic",
                     device: str = "local", *, threads: int = 1) -> LatencyEstimate:
    """Predict by names, as a study file gives them: ``latency_model`` on ``device``.

    Example::

        est = estimate_latency(plan(net, policy, x), "analytic", "orin")
    """
    from autocompress.cost.latency._device import device_profile

    return get_latency_model(latency_model).predict(leaves, device_profile(device, threads=threads))
