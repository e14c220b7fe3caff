"""The deploy form shipped to ONNX Runtime: latency of fp32 and int8 (QDQ) ONNX exports against
torch's fp32 model and autocompress's own eager deploy form, same process, same inputs.

Models: digits-cnn (the quickstart's task, trained base, int8 calibrated on 256 training
images) and LeNet-5 (random weights: speed does not depend on training; calibrated on its
example inputs). Batch 1 and 64, 1 thread; medians via ``measure_model`` (thread CPU time at
1 thread; ONNX Runtime runs on the calling thread with intra_op_num_threads=1).

    python bench/bench_onnx.py
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

import torch

from autocompress import Policy, compress
from autocompress.compress import to_deploy
from autocompress.cost.profiling import measure_model, steady_allocator
from autocompress.models import MODELS, create_model
from autocompress.runtime import OrtModel, export_onnx
from autocompress.tasks import base_model, get_task
from autocompress.techniques.quantize import calibrate

INT8 = Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}})


def _models() -> list[tuple[str, torch.nn.Module, torch.Tensor, torch.Tensor]]:
    task = get_task("digits-cnn")
    data = task.data()
    out = [("digits-cnn", base_model(task, seed=0, progress=False).eval(), data.train.x[:256], data.test.x[:64])]
    spec = MODELS.get("lenet-5")
    out.append(("lenet-5", create_model("lenet-5", seed=0).eval(), spec.example_input(256), spec.example_input(64)))
    return out


def main() -> None:
    steady_allocator()
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}")
    print("| model | batch | torch fp32 ms | torch int8 (eager deploy) | ORT fp32 | ORT int8 QDQ | "
          "ORT int8 vs torch fp32 | ORT int8 vs ORT fp32 |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for name, base, calib, test in _models():
            train = compress(base, INT8, form="train", example_input=calib[:64]).eval()
            calibrate(train, calib)
            deploy = to_deploy(train, INT8)
            f32 = OrtModel(export_onnx(base, Path(d) / f"{name}-fp32.onnx", calib[:64]))
            i8 = OrtModel(export_onnx(deploy, Path(d) / f"{name}-int8.onnx", calib[:64]))
            for batch in (1, 64):
                x = test[:batch]
                with torch.no_grad():
                    ms = [measure_model(m, x) for m in (base, deploy, f32, i8)]
                print(f"| {name} | {batch} | {ms[0]:.4f} | {ms[1]:.4f} | {ms[2]:.4f} | {ms[3]:.4f} | "
                      f"{ms[0] / ms[3]:.2f}x | {ms[2] / ms[3]:.2f}x |")


if __name__ == "__main__":
    main()
