"""An exported ONNX model run by ONNX Runtime, behind the ``nn.Module`` call the task metrics,
``measure_model`` and the parity checks use (numpy in, torch out; no autograd)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autocompress.errors import ArtifactError


class OrtModel(nn.Module):
    """``OrtModel("model.onnx")(x)``: the ONNX model's first output, as a torch tensor.

    ``threads``: ONNX Runtime's intra-op threads (1 matches the latency figures elsewhere).
    All graph optimisations are on, so QDQ pairs are fused into integer kernels.
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise ArtifactError("running ONNX needs the onnx extra: pip install 'autocompress[onnx]'") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ArtifactError(f"{path}: ONNX Runtime cannot load it ({' '.join(str(e).split())[:300]})") from None
        self.names = [i.name for i in self.session.get_inputs()]
        self.path = Path(path)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        feed: dict[str, Any] = {n: np.ascontiguousarray(t.detach().cpu().numpy()) for n, t in zip(self.names, inputs,
                                                                                                strict=True)}
        return torch.from_numpy(self.session.run(None, feed)[0])
