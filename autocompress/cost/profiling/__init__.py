"""Timing real kernels on this machine: what the measured latency model and the ``local``
device profile are made of, and the check of every latency model against measurement.

- :func:`profile_device`: this machine's ``local`` profile (peak throughput, caches);
- :func:`profile_plan` / :func:`profile_model`: time a plan's leaves alone and fit what the
  sum of leaves misses inside a model (into a :class:`~autocompress.cost.latency.LeafTable`);
- :func:`measure_model`: one model end to end (median, fixed threads, pinned allocator);
- :func:`run_check` (``autocompress latency-check``): predictions vs measurements.

The predictors themselves are in :mod:`autocompress.cost.latency` and never time anything.
"""

from autocompress.cost.profiling._local import measure_profile, profile_device
from autocompress.cost.profiling._ort import OrtTimer
from autocompress.cost.profiling._policies import channel_policy, prunable_groups, random_policy
from autocompress.cost.profiling._timing import clock_for, steady_allocator, time_ms, timing_batch, torch_threads
from autocompress.cost.profiling.check import CheckReport, local_device, mape, run_check, spearman, within
from autocompress.cost.profiling.profiler import (
    CALIBRATION_POLICIES,
    deploy_leaf,
    measure_leaf,
    measure_model,
    measure_rest,
    profile_model,
    profile_plan,
)

__all__ = [
    "CALIBRATION_POLICIES",
    "CheckReport",
    "OrtTimer",
    "channel_policy",
    "clock_for",
    "deploy_leaf",
    "local_device",
    "mape",
    "measure_leaf",
    "measure_model",
    "measure_profile",
    "measure_rest",
    "profile_device",
    "profile_model",
    "profile_plan",
    "prunable_groups",
    "random_policy",
    "run_check",
    "spearman",
    "steady_allocator",
    "time_ms",
    "timing_batch",
    "torch_threads",
    "within",
]
