"""The deploy form shipped to ONNX Runtime, against ORT's own recipe: latency, test accuracy and
file bytes of torch fp32, autocompress's eager deploy form, the fp32 ONNX export, ORT's
``quantize_static`` int8 of that fp32 file (QDQ, per-channel weights, the same 256
calibration images), and autocompress's int8 export, in one process, same inputs.

Models: digits-cnn (the quickstart's task, trained base, int8 calibrated on 256 training
images) and LeNet-5 (random weights: speed does not depend on training; calibrated on its
example inputs; no accuracy). Batch 1 and 64, 1 thread; medians via ``measure_model`` (thread
CPU time at 1 thread; ONNX Runtime runs on the calling thread with intra_op_num_threads=1).

    python bench/bench_onnx.py
    python bench/bench_onnx.py --study runs/quickstart/study.db   # + that study's front points

With ``--study`` (a digits-cnn study), every Pareto-front point is fine-tuned again as ``apply``
does (the study's fine-tune, seed and data), turned into its deploy form, exported and timed in
the same table, with its test accuracy and file bytes: the search's own candidates against the
baselines, all in one process.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
from _front import front_points

from autocompress import Policy, compress
from autocompress.compress import to_deploy
from autocompress.cost.profiling import measure_model, steady_allocator
from autocompress.models import MODELS, create_model
from autocompress.runtime import OrtModel, export_onnx
from autocompress.tasks import base_model, get_task, test_metric
from autocompress.techniques.quantize import calibrate

INT8 = Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}})


def _models() -> list[tuple[str, torch.nn.Module, torch.Tensor, torch.Tensor, object]]:
    task = get_task("digits-cnn")
    data = task.data()
    out = [("digits-cnn", base_model(task, seed=0, progress=False).eval(), data.train.x[:256], data.test.x[:64],
            task)]
    spec = MODELS.get("lenet-5")
    out.append(("lenet-5", create_model("lenet-5", seed=0).eval(), spec.example_input(256), spec.example_input(64),
                None))
    return out


def ort_quantize_static(fp32: Path, out: Path, calib: torch.Tensor) -> Path:
    """ONNX Runtime's own static int8 recipe on the fp32 export (QDQ, per-channel int8
    weights, uint8 activations, min/max calibration on the same images)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": calib[i:i + 32].numpy()} for i in range(0, len(calib), 32)])

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def main() -> None:
    import logging

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", default=None, help="a digits-cnn study (file or storage): add its front points")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    steady_allocator()
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}")
    print("| model | batch | torch fp32 ms | torch int8 (eager deploy) | ORT fp32 | ORT quantize_static | "
          "ours in ORT | ours vs torch fp32 | ours vs ORT fp32 | ours vs quantize_static |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    notes = []
    with tempfile.TemporaryDirectory() as d:
        for name, base, calib, test, task in _models():
            train = compress(base, INT8, form="train", example_input=calib[:64]).eval()
            calibrate(train, calib)
            candidates = [("uniform int8", to_deploy(train, INT8))]
            if args.study and task is not None:
                front = front_points(args.study, base, task, "digits-cnn")
                candidates += [(label, deploy) for label, _, deploy in front]
            f32_path = export_onnx(base, Path(d) / f"{name}-fp32.onnx", calib[:64])
            qs_path = ort_quantize_static(f32_path, Path(d) / f"{name}-qs.onnx", calib)
            f32, qs = OrtModel(f32_path), OrtModel(qs_path)
            sizes = {"fp32": f32_path.stat().st_size, "quantize_static": qs_path.stat().st_size}
            acc = {} if task is None else {k: round(test_metric(task, m), 4)  # type: ignore[arg-type]
                                            for k, m in (("torch fp32", base), ("ORT fp32", f32),
                                                         ("quantize_static", qs))}
            for i, (label, deploy) in enumerate(candidates):
                path = export_onnx(deploy, Path(d) / f"{name}-{i}.onnx", calib[:64])
                ours = OrtModel(path)
                sizes[label] = path.stat().st_size
                if task is not None:
                    acc[label] = round(test_metric(task, ours), 4)  # type: ignore[arg-type]
                for batch in (1, 64):
                    x = test[:batch]
                    with torch.no_grad():
                        ms = [measure_model(m, x) for m in (base, deploy, f32, qs, ours)]
                    print(f"| {name}, {label} | {batch} | {ms[0]:.4f} | {ms[1]:.4f} | {ms[2]:.4f} | {ms[3]:.4f} | "
                          f"{ms[4]:.4f} | {ms[0] / ms[4]:.2f}x | {ms[2] / ms[4]:.2f}x | {ms[3] / ms[4]:.2f}x |")
            notes.append(f"{name}: file bytes {sizes}" + (f"; test accuracy {acc}" if acc else ""))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
