"""Latency models: predict a deploy form's latency on a device from its plan.

- ``analytic``: roofline per leaf from a device profile (published specs, or this machine);
- ``measured``: this machine's timings of real deploy-form leaves, interpolated, plus a
  fitted per-model overhead.

Device profiles are YAML data (``autocompress/cost/devices/``; ``local`` is measured by
``autocompress profile`` into the cache). Every estimate records its model and device.

Example::

    est = get_latency_model("analytic").predict(plan(net, policy, x), device_profile("h100"))
"""

from autocompress.cost.latency import _analytic as _analytic  # registers "analytic"
from autocompress.cost.latency import _measured as _measured  # registers "measured"
from autocompress.cost.latency._analytic import AnalyticModel
from autocompress.cost.latency._base import LatencyEstimate, LatencyModel, LeafLatency
from autocompress.cost.latency._cache import Fingerprint, cache_dir, fingerprint
from autocompress.cost.latency._device import DeviceProfile, device_profile, known_devices
from autocompress.cost.latency._local import profile_device
from autocompress.cost.latency._measured import MeasuredModel
from autocompress.cost.latency._registry import (
    LATENCY_MODELS,
    estimate_latency,
    get_latency_model,
    register_latency_model,
)
from autocompress.cost.latency._table import LeafTable, leaf_key
from autocompress.cost.latency.profiler import measure_model, profile_model, profile_plan

__all__ = [
    "LATENCY_MODELS",
    "AnalyticModel",
    "DeviceProfile",
    "Fingerprint",
    "LatencyEstimate",
    "LatencyModel",
    "LeafLatency",
    "LeafTable",
    "MeasuredModel",
    "cache_dir",
    "device_profile",
    "estimate_latency",
    "fingerprint",
    "get_latency_model",
    "known_devices",
    "leaf_key",
    "measure_model",
    "profile_device",
    "profile_model",
    "profile_plan",
    "register_latency_model",
]
