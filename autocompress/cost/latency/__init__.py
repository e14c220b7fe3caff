"""Latency models: predict a deploy form's latency on a device from its plan.

- ``analytic``: roofline per leaf from a device profile (published specs, or this machine);
- ``measured``: this machine's timings of real deploy-form leaves, interpolated, plus a
  fitted per-model overhead.

Device profiles are YAML data (``autocompress/cost/devices/``; ``local`` is measured by
``autocompress profile`` into the cache). Every estimate records its model and device.
This package only predicts (no torch ops, no timing); the code that times real kernels and
fills the measured tables is :mod:`autocompress.cost.profiling`.

Example::

    est = get_latency_model("analytic").predict(plan(net, policy, x), device_profile("h100"))
"""

from autocompress.cost.latency import _analytic as _analytic  # registers "analytic"
from autocompress.cost.latency import _measured as _measured  # registers "measured"
from autocompress.cost.latency._analytic import AnalyticModel
from autocompress.cost.latency._base import LatencyEstimate, LatencyModel, LeafLatency
from autocompress.cost.latency._cache import TIMING_METHOD, Fingerprint, cache_dir, cpu_model, fingerprint, latency_dir
from autocompress.cost.latency._device import FORMAT, DeviceProfile, device_profile, known_devices, local_profile_path
from autocompress.cost.latency._measured import MeasuredModel
from autocompress.cost.latency._registry import (
    LATENCY_MODELS,
    estimate_latency,
    get_latency_model,
    register_latency_model,
)
from autocompress.cost.latency._table import LeafTable, dense_key, leaf_key, model_signature, output_elements

__all__ = [
    "FORMAT",
    "LATENCY_MODELS",
    "TIMING_METHOD",
    "AnalyticModel",
    "DeviceProfile",
    "Fingerprint",
    "LatencyEstimate",
    "LatencyModel",
    "LeafLatency",
    "LeafTable",
    "MeasuredModel",
    "cache_dir",
    "cpu_model",
    "dense_key",
    "device_profile",
    "estimate_latency",
    "fingerprint",
    "get_latency_model",
    "known_devices",
    "latency_dir",
    "leaf_key",
    "local_profile_path",
    "model_signature",
    "output_elements",
    "register_latency_model",
]
