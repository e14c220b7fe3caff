"""``autocompress apply policy.yaml -o OUT``: build the real artifact and measure it.

From a fresh base model: compress (train form) -> the same short distilled fine-tune the
search ran (same seed; ``--steps`` makes it longer, ``--refit`` trains on train+validation
once the policy is chosen) -> deploy form -> ``OUT/model.safetensors``. Then measures the
file, its tensors, CPU latency (1 thread, median) and the TEST metric, printed beside the
predictions, and written to ``OUT/report.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("policy", type=Path, help="a policy file (from `autocompress export`, or your own)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--task", default=None, help="task name (default: the one recorded in the policy)")
    p.add_argument("--data-dir", default=None, help="data directory for tasks that read files (MNIST)")
    p.add_argument("--seed", type=int, default=None, help="base-model / fine-tune seed (default: recorded)")
    p.add_argument("--steps", type=int, default=None, help="fine-tune steps (default: recorded; 0 = none)")
    p.add_argument("--refit", action="store_true",
                   help="fine-tune on train+validation (once the policy is chosen); validation is then not held out")


def run(args: argparse.Namespace) -> int:
    import json

    from autocompress.apply import apply_policy
    from autocompress.policy import Policy

    policy = Policy.load(args.policy)
    report = apply_policy(policy, args.output, task=args.task, data_dir=args.data_dir,
                          seed=args.seed, steps=args.steps, refit=args.refit)
    (args.output / "report.json").write_text(json.dumps(report, indent=1, default=str))
    from autocompress.apply import record_measured

    print(record_measured(policy, report))
    print(f"artifact: {report['artifact']}")
    rows = [("size (tensor bytes)", report["predicted"].get("size_bytes"), report["measured"]["tensor_bytes"]),
            ("size (file bytes)", None, report["measured"]["file_bytes"]),
            ("latency ms (1 thread, batch 1)", report["predicted"].get("latency_ms"),
             report["measured"]["latency_ms"]),
            ("  latency predicted for / measured on", report["predicted"].get("latency_device") or "-",
             "this machine"),
            (f"validation {report['metric_name']}" + ("" if report["measured"]["val_held_out"] else
                                                      " (trained on)"),
             report["predicted"].get("metric"), report["measured"]["val_metric"]),
            (f"test {report['metric_name']}", None, report["measured"]["test_metric"])]
    print(f"{'':34s}{'predicted':>14s}{'measured':>14s}")
    for name, pred, meas in rows:
        p = "-" if pred is None else pred if isinstance(pred, str) else f"{pred:.5g}"
        m = meas if isinstance(meas, str) else f"{meas:.5g}"
        print(f"{name:34s}{p:>14s}{m:>14s}")
    print(f"fp32 base: {report['fp32']['tensor_bytes']} bytes, {report['fp32']['latency_ms']:.4g} ms, "
          f"test {report['metric_name']} {report['fp32']['test_metric']:.4f}")
    return 0
