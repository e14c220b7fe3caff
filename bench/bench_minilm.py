"""all-MiniLM-L6-v2 compressed, against the standard CPU recipes for transformers, side by side in
one process: torch fp32, torch ``quantize_dynamic`` (int8 Linear, the recipe's defaults), the fp32
ONNX export in ONNX Runtime, ORT's ``quantize_dynamic`` of that file (its defaults: int8 weights,
MatMul and Gather quantised), autocompress's uniform dynamic int8 (``act_dynamic``, no fine-tune)
in torch and in ORT, and, with ``--study``, every front point of a ``minilm-embed`` study
fine-tuned again as ``apply`` does, in torch and in ORT.

Fidelity (the task's metric: mean cosine to the fp32 embeddings and top-10 retrieval agreement,
averaged) on the validation and test splits (500 sentences each); file bytes (the artifact for
autocompress's torch rows, the ONNX file for ORT rows, ``torch.save`` of the state dict for
``quantize_dynamic``); latency at batch 32 and 1 (x 32 tokens), 1 and 2 threads, medians of
``measure_model`` (thread CPU time at 1 thread, wall clock at 2).

    python bench/bench_minilm.py
    python bench/bench_minilm.py --study runs/minilm_embed/study.db
"""

from __future__ import annotations

import argparse
import copy
import io
import logging
import platform
import tempfile
import time
import warnings
from pathlib import Path

import torch
from _front import front_points
from torch import nn

from autocompress import Policy, compress, save_artifact
from autocompress.cost.profiling import measure_model, steady_allocator
from autocompress.runtime import OrtModel, export_onnx
from autocompress.tasks import base_model, get_task
from autocompress.tasks._train import score

DYNAMIC = Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8, "act_dynamic": True}})
SHAPES = ((32, 1), (32, 2), (1, 1), (1, 2))  # (batch, threads)


def _state_bytes(model: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", default=None, help="a minilm-embed study (file or storage): add its front points")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per figure (median)")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    steady_allocator()
    task = get_task("minilm-embed")
    data = task.data()
    base = base_model(task, seed=0, progress=False).eval()
    x = data.test.x[:32]
    rows: list[tuple[str, nn.Module, int]] = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        from onnxruntime.quantization import QuantType, quantize_dynamic

        fp32_onnx = export_onnx(base, tmp / "fp32.onnx", x)
        qd_onnx = tmp / "qd.onnx"
        quantize_dynamic(str(fp32_onnx), str(qd_onnx), weight_type=QuantType.QInt8)
        torch_qd = torch.ao.quantization.quantize_dynamic(copy.deepcopy(base), {nn.Linear}, dtype=torch.qint8)
        rows += [("torch fp32", base, _state_bytes(base)),
                 ("torch quantize_dynamic", torch_qd, _state_bytes(torch_qd)),
                 ("ORT fp32", OrtModel(fp32_onnx), fp32_onnx.stat().st_size),
                 ("ORT quantize_dynamic", OrtModel(qd_onnx), qd_onnx.stat().st_size)]
        ours = [("uniform dynamic int8", DYNAMIC, compress(base, DYNAMIC, form="deploy"))]
        if args.study:
            ours += front_points(args.study, base, task, "minilm-embed")
        for i, (label, policy, deploy) in enumerate(ours):
            art = save_artifact(deploy, policy, tmp / f"{i}.safetensors", x)
            path = export_onnx(deploy, tmp / f"{i}.onnx", x)
            rows += [(f"{label} (torch)", deploy, art.file_bytes),
                     (f"{label} (ORT)", OrtModel(path), path.stat().st_size)]
        print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{time.strftime('%Y-%m-%d %H:%M')}; fidelity on val / test (500 each); ms per call x 32 tokens")
        head = " | ".join(f"b{b} t{t} ms" for b, t in SHAPES)
        print(f"| candidate | val | test | MB | {head} | b32 t1 vs torch fp32 |")
        print("|---|---|---|---|" + "---|" * len(SHAPES) + "---|")
        base_ms = None
        for label, model, nbytes in rows:
            with torch.no_grad():
                val, test = score(model, data.val, task.metric), score(model, data.test, task.metric)
                ms = []
                for b, t in SHAPES:
                    m = OrtModel(model.path, threads=t) if isinstance(model, OrtModel) and t != 1 else model
                    ms.append(measure_model(m, x[:b], threads=t, repeats=args.repeats, rounds=1))
            base_ms = base_ms or ms[0]
            print(f"| {label} | {val:.4f} | {test:.4f} | {nbytes / 1e6:.1f} | "
                  + " | ".join(f"{v:.1f}" for v in ms) + f" | {base_ms / ms[0]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
