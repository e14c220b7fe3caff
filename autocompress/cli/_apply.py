"""``autocompress apply policy.yaml -o OUT``: build the real artifact and measure it.

From a fresh base model: compress (train form) -> the same short distilled fine-tune the
search ran (same seed; ``--steps`` makes it longer, ``--refit`` trains on train+validation
once the policy is chosen) -> deploy form -> ``OUT/model.safetensors`` (and the policy with
its provenance beside it, ``OUT/policy.yaml``). Then measures the file, its tensors, CPU
latency (1 thread, median) and the TEST metric, printed beside the predictions, and written
to ``OUT/report.json``.

The policy's recorded task is used only when it is a built-in task; a user task
(``package.module:function``) runs only when named here with ``--task`` or ``--study``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("policy", type=Path, help="a policy file (from `autocompress export`, or your own)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--task", default=None,
                   help="task name (default: the built-in task recorded in the policy); a "
                        "package.module:function task runs that code")
    p.add_argument("--study", type=Path, default=None,
                   help="the study file the policy came from: its task, settings, seed and fine-tune")
    p.add_argument("--storage", default=None,
                   help="study storage URL to record the measurements in (default: the policy's, if it is "
                        "an existing SQLite study file)")
    p.add_argument("--data-dir", default=None, help="data directory for tasks that read files (MNIST)")
    p.add_argument("--seed", type=int, default=None, help="base-model / fine-tune seed (default: recorded)")
    p.add_argument("--steps", type=int, default=None, help="fine-tune steps (default: recorded; 0 = none)")
    p.add_argument("--format", choices=("safetensors", "onnx", "both"), default="safetensors",
                   help="also export model.onnx and measure it in ONNX Runtime (onnx, both); the "
                        "safetensors artifact is always written (the ONNX file is exported from it)")
    p.add_argument("--refit", action="store_true",
                   help="fine-tune on train+validation (once the policy is chosen); validation is then not held out")


def run(args: argparse.Namespace) -> int:
    import json

    from autocompress import files
    from autocompress.apply import apply_policy, record_measured
    from autocompress.errors import ConfigError
    from autocompress.policy import Policy

    if args.task and args.study:
        raise ConfigError("give --task or --study, not both (the study file names its task)")
    policy = Policy.load(args.policy)
    study = None
    if args.study is not None:
        from autocompress.search import load_study_config

        study = load_study_config(args.study)
    report = apply_policy(policy, args.output, task=args.task, data_dir=args.data_dir, seed=args.seed,
                          steps=args.steps, refit=args.refit, study=study, source=str(args.policy),
                          format=args.format)
    files.write_text(args.output / "report.json", json.dumps(report, indent=1, default=str) + "\n", "report")
    print(record_measured(policy, report, args.storage))
    print(f"artifact: {report['artifact']} (provenance beside it: {args.output / 'policy.yaml'})")
    pred, meas = report["predicted"], report["measured"]
    rows = [("size (file bytes)", pred.get("size_bytes") if "tensor_bytes" in pred else None, meas["file_bytes"]),
            ("size (tensor bytes)", pred.get("tensor_bytes", pred.get("size_bytes")), meas["tensor_bytes"]),
            (f"latency ms ({meas['latency_threads']} thread, batch {meas['latency_batch']})", pred.get("latency_ms"),
             meas["latency_ms"]),
            ("  latency predicted for / measured on", pred.get("latency_device") or "-",
             "ORT here" if meas["latency_runtime"] == "onnxruntime" else "torch here"),
            (f"validation {report['metric_name']}" + ("" if meas["val_held_out"] else " (trained on)"),
             pred.get("metric"), meas["val_metric"]),
            (f"test {report['metric_name']}", None, meas["test_metric"])]
    print(f"{'':38s}{'predicted':>14s}{'measured':>14s}")
    for name, p, m in rows:
        ptext = "-" if p is None else p if isinstance(p, str) else f"{p:.5g}"
        mtext = m if isinstance(m, str) else f"{m:.5g}"
        print(f"{name:38s}{ptext:>14s}{mtext:>14s}")
    if "onnx" in report:
        o = report["onnx"]
        print(f"ONNX ({o['path']}, ONNX Runtime, {o['latency_threads']} thread): {o['file_bytes']} file bytes, "
              f"{o['latency_ms']:.4g} ms at batch {meas['latency_batch']} "
              f"(ONNX fp32 base {o['fp32_latency_ms']:.4g} ms: "
              f"{o['fp32_latency_ms'] / o['latency_ms']:.2f}x), test {report['metric_name']} {o['test_metric']:.4f}, "
              f"max |ONNX - artifact| {o['max_abs_diff_vs_artifact']:.3g}")
    fp32 = report["fp32"]
    print(f"fp32 base: {fp32['file_bytes']} file bytes ({fp32['tensor_bytes']} tensor bytes), "
          f"{fp32['latency_ms']:.4g} ms, test {report['metric_name']} {fp32['test_metric']:.4f}")
    return 0
