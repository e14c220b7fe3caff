"""Latency where users run the model: each candidate's deploy form exported to ONNX and timed in
ONNX Runtime on this machine, at the batch size the study names (the ``ort`` latency device).

ONNX Runtime fuses what the exporter writes (QDQ pairs into integer kernels, linked int8
layers without a float round trip, Conv+ReLU, constant folding), so the time of a layer
depends on its neighbours; a sum of per-layer figures would have to model every fusion. The
candidate is therefore measured end to end: built in deploy form from the base weights (its
speed does not depend on the fine-tune), exported, loaded into an ONNX Runtime session with
all graph optimisations and timed like ``measure_model`` (median of repeated blocks; thread
CPU time at one thread). That takes about 0.2-0.5 s per candidate on the quickstart's CNN,
before any training; figures are cached per candidate for the life of the process.

Example::

    timer = OrtTimer(base, example_batch, calibration=x[:64])
    timer.estimate(policy).total_ms
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from torch import nn

from autocompress.cost.latency import LatencyEstimate
from autocompress.cost.profiling.profiler import measure_model
from autocompress.errors import ArtifactError
from autocompress.policy import Policy


class OrtTimer:
    """Times candidates of one base model in ONNX Runtime at one batch size and thread count."""

    DEVICE = "ort"
    MODEL = "ort-measured"

    def __init__(self, base: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...],
                 calibration: torch.Tensor | tuple[torch.Tensor, ...] | None = None, *, threads: int = 1) -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ArtifactError("it needs ONNX Runtime and onnx: pip install 'autocompress[onnx]'") from None
        self.base, self.example, self.threads = base, example, threads
        self.calibration = example if calibration is None else calibration
        self._cache: dict[str, float] = {}

    @property
    def batch(self) -> int:
        x = self.example[0] if isinstance(self.example, tuple) else self.example
        return int(x.shape[0])

    def measure(self, policy: Policy) -> float:
        """Median milliseconds of one ONNX Runtime run of ``policy``'s deploy form."""
        raw = policy.to_dict()
        key = json.dumps({k: raw.get(k) for k in ("default", "layers")}, sort_keys=True, default=str)
        if key not in self._cache:
            self._cache[key] = self._time(policy)
        return self._cache[key]

    def estimate(self, policy: Policy) -> LatencyEstimate:
        import onnxruntime

        ms = self.measure(policy)
        note = (f"measured end to end in ONNX Runtime {onnxruntime.__version__} (CPU), batch {self.batch}, "
                f"{self.threads} thread(s)")
        return LatencyEstimate(self.MODEL, self.DEVICE, (), ms, ms, (note,))

    def _time(self, policy: Policy) -> float:
        from autocompress.compress import compress

        return self.time_model(compress(self.base, policy, form="deploy", example_input=self.calibration))

    def time_model(self, model: nn.Module) -> float:
        """Median milliseconds of ``model`` (a deploy form, e.g. a loaded artifact) exported and
        run in ONNX Runtime at this timer's batch and threads (not cached)."""
        from autocompress.runtime import OrtModel, export_onnx

        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, Path(tmp) / "candidate.onnx", self.example)
            session = OrtModel(path, threads=self.threads)
        return measure_model(session, self.example, threads=self.threads)
