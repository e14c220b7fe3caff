"""Pick a latency model by the device name a study file gives.

- ``local`` (or ``local-measured``): this machine's measured model. At the start of a study
  the machine profile is measured if missing and the base model's per-model terms are
  fitted (``profile_model``) unless this machine's cache already holds them (the fit with
  its 6 calibration policies takes a minute on MiniLM, so it is done once); during the
  search every leaf configuration a candidate uses that is not yet in the table is timed
  on the real deploy kernels before the prediction (cached on disk, keyed by the machine
  fingerprint), so figures are measured, not guessed.
- ``ort``: ONNX Runtime on this machine, each candidate exported and timed end to end
  (``cost.profiling.OrtTimer``; needs the onnx extra);
- any other name (``xeon-8480``, ``a100``, ``h100``, ``orin``, ``cortex-a76``): the analytic
  roofline model on that device's published-spec profile.

Every predictor works at the batch of its example input (the study's ``latency.batch``); the
device label it records says the batch when it is not 1 (``"ort, batch 64"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from autocompress.cost.latency import (
    LatencyEstimate,
    LeafTable,
    MeasuredModel,
    device_profile,
    fingerprint,
    get_latency_model,
    known_devices,
)
from autocompress.errors import ArtifactError, ConfigError
from autocompress.policy import Policy

MEASURED_NAMES = ("local", "local-measured")
RUNTIME_NAMES = ("ort",)


@dataclass(frozen=True)
class LatencyPredictor:
    """A latency model bound to one device; ``model``/``device`` are recorded with results."""

    model: str
    device: str
    predict: Callable[[Policy], LatencyEstimate]


def check_device(device: str) -> None:
    known = [*MEASURED_NAMES, *RUNTIME_NAMES, *known_devices()]
    if device not in known:
        raise ConfigError(f"latency device {device!r} is unknown; known devices: {known}")


def device_label(device: str, batch: int) -> str:
    """How results name the device: ``"ort"`` at batch 1, ``"ort, batch 64"`` otherwise."""
    return device if batch == 1 else f"{device}, batch {batch}"


def latency_predictor(device: str, base: nn.Module, example: torch.Tensor, threads: int = 1, *,
                      calibration: torch.Tensor | None = None) -> LatencyPredictor:
    """The latency of a policy's deploy form of ``base`` at ``example``'s batch on ``device``;
    ``calibration``: inputs for activation ranges where a device builds the candidate (``ort``)."""
    from autocompress.cost import plan as leaf_plan

    check_device(device)
    label = device_label(device, int(example.shape[0]))
    if device in RUNTIME_NAMES:
        from autocompress.cost.profiling import OrtTimer

        try:
            timer = OrtTimer(base, example, calibration, threads=threads)
        except ArtifactError as e:
            raise ConfigError(f"latency device 'ort': {e}") from None
        return LatencyPredictor(OrtTimer.MODEL, label, timer.estimate)
    if device not in MEASURED_NAMES:
        model = get_latency_model("analytic")
        profile = device_profile(device, threads=threads)
        return LatencyPredictor(model.name, label,
                                lambda policy: model.predict(leaf_plan(base, policy, example), profile))
    from autocompress.cost.profiling.check import local_device
    from autocompress.cost.profiling.profiler import CALIBRATION_POLICIES, profile_model, profile_plan

    profile = local_device(threads)  # measured once per machine, then cached
    table = LeafTable.load(fingerprint(threads))
    fitted = table.fitted_with(leaf_plan(base, Policy(), example))
    if fitted is None or fitted < CALIBRATION_POLICIES:  # fitted once per machine and model, then cached
        profile_model(base, example, table, threads=threads)
    measured = MeasuredModel(table)

    def predict(policy: Policy) -> LatencyEstimate:
        plan = leaf_plan(base, policy, example)
        profile_plan(plan, table, threads=threads)  # time unseen leaf configurations first
        return measured.predict(plan, profile)

    return LatencyPredictor(measured.name, device_label(profile.name, int(example.shape[0])), predict)
