"""Pick a latency model by the device name a study file gives.

- ``local`` (or ``local-measured``): this machine's measured model. At the start of a study
  the machine profile is measured if missing and the base model's per-model terms are
  fitted (``profile_model``) unless this machine's cache already holds them (the fit with
  its 6 calibration policies takes a minute on MiniLM, so it is done once); during the
  search every leaf configuration a candidate uses that is not yet in the table is timed
  on the real deploy kernels before the prediction (cached on disk, keyed by the machine
  fingerprint), so figures are measured, not guessed.
- any other name (``xeon-8480``, ``a100``, ``h100``, ``orin``, ``cortex-a76``): the analytic
  roofline model on that device's published-spec profile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from autocompress.cost import LeafPlan
from autocompress.cost.latency import (
    LatencyEstimate,
    LeafTable,
    MeasuredModel,
    device_profile,
    fingerprint,
    get_latency_model,
    known_devices,
)
from autocompress.errors import ConfigError

MEASURED_NAMES = ("local", "local-measured")


@dataclass(frozen=True)
class LatencyPredictor:
    """A latency model bound to one device; ``model``/``device`` are recorded with results."""

    model: str
    device: str
    predict: Callable[[Sequence[LeafPlan]], LatencyEstimate]


def check_device(device: str) -> None:
    known = [*MEASURED_NAMES, *known_devices()]
    if device not in known:
        raise ConfigError(f"latency device {device!r} is unknown; known devices: {known}")


def latency_predictor(device: str, base: nn.Module, example: torch.Tensor, threads: int = 1) -> LatencyPredictor:
    check_device(device)
    if device not in MEASURED_NAMES:
        model = get_latency_model("analytic")
        profile = device_profile(device, threads=threads)
        return LatencyPredictor(model.name, profile.name, lambda plan: model.predict(plan, profile))
    from autocompress.cost import plan as leaf_plan
    from autocompress.cost.profiling.check import local_device
    from autocompress.cost.profiling.profiler import CALIBRATION_POLICIES, profile_model, profile_plan
    from autocompress.policy import Policy

    profile = local_device(threads)  # measured once per machine, then cached
    table = LeafTable.load(fingerprint(threads))
    fitted = table.fitted_with(leaf_plan(base, Policy(), example))
    if fitted is None or fitted < CALIBRATION_POLICIES:  # fitted once per machine and model, then cached
        profile_model(base, example, table, threads=threads)
    measured = MeasuredModel(table)

    def predict(plan: Sequence[LeafPlan]) -> LatencyEstimate:
        profile_plan(plan, table, threads=threads)  # time unseen leaf configurations first
        return measured.predict(plan, profile)

    return LatencyPredictor(measured.name, profile.name, predict)
