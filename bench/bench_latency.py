"""Latency models against measured deploy forms: a CNN and an MLP, N random policies each.

Run: ``python bench/bench_latency.py [--policies 30] [--threads 1]``. Prints, per model and
latency model, MAPE, Spearman and the share within +-10%, and the prediction time for a
50-leaf plan. Uses the cache in ``$AUTOCOMPRESS_CACHE`` (measured leaves are reused).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from autocompress.cost import LeafPlan
from autocompress.cost.latency import AnalyticModel, MeasuredModel, device_profile
from autocompress.cost.profiling.check import local_device, run_check
from autocompress.cost.profiling.profiler import CALIBRATION_POLICIES


def bench_cnn() -> nn.Module:
    def block(i: int, o: int, s: int) -> list[nn.Module]:
        return [nn.Conv2d(i, o, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    return nn.Sequential(*block(3, 32, 1), *block(32, 64, 2), *block(64, 64, 1),
                         *block(64, 128, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(128, 10))


def bench_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                         nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, 10))


def fifty_leaves() -> list[LeafPlan]:
    return [LeafPlan(layer=f"l{i}", leaf=f"l{i}", kind="conv2d", in_channels=64, out_channels=64,
                     kernel_size=(3, 3), groups=1, stride=(1, 1), has_bias=False,
                     weight_shape=(64, 64, 3, 3), input_shape=(8, 64, 16, 16),
                     output_shape=(8, 64, 16, 16), macs=64 * 64 * 9 * 256, calls=1,
                     weight_bits=(4, 8, 32)[i % 3], act_bits=(8, 32)[i % 2], sparsity=0.0,
                     pattern="unstructured", kernel="int8" if i % 6 in (0, 4) else "fp32")
            for i in range(50)]


def prediction_time_ms(threads: int) -> dict[str, float]:
    leaves = fifty_leaves()
    out = {}
    for label, lm, dev in (("analytic/a100", AnalyticModel(), device_profile("a100")),
                           ("analytic/local", AnalyticModel(), local_device(threads)),
                           ("measured/local", MeasuredModel(), local_device(threads))):
        lm.predict(leaves, dev)  # warm (table load, fits)
        t0 = time.perf_counter()
        for _ in range(100):
            lm.predict(leaves, dev)
        out[label] = (time.perf_counter() - t0) * 10.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--policies", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interleave", action="store_true",
                    help="time all policies and their leaves round-robin, best round each (default: each "
                         "policy right after re-timing its leaves)")
    ap.add_argument("--only", choices=["cnn", "mlp"], default=None)
    ap.add_argument("--calibration", type=int, default=CALIBRATION_POLICIES,
                    help="random policies (their own seed) added to the per-model overhead fit")
    ap.add_argument("--details", action="store_true", help="print every policy's measured and predicted ms")
    args = ap.parse_args()
    torch.manual_seed(0)
    cases = (("cnn", bench_cnn(), torch.randn(8, 3, 32, 32)),
             ("mlp", bench_mlp(), torch.randn(64, 784)))
    for name, model, x in cases:
        if args.only and name != args.only:
            continue
        t0 = time.perf_counter()
        report = run_check(model.eval(), x, n_policies=args.policies, seed=args.seed,
                           threads=args.threads, name=name, rounds=args.rounds, interleave=args.interleave,
                           calibration=args.calibration)
        print(report.table())
        if args.details:
            for i, (m, p) in enumerate(zip(report.measured_ms, report.predicted_ms["measured"], strict=True)):
                print(f"  policy {i:2d}: measured {m:7.3f} ms, predicted {p:7.3f} ms ({100 * (p - m) / m:+5.1f}%)")
        if report.skipped:
            print(f"  skipped {len(report.skipped)}: {report.skipped[:3]}")
        print(f"  ({time.perf_counter() - t0:.0f} s)\n")
    for label, ms in prediction_time_ms(args.threads).items():
        print(f"predict, 50 leaves, {label}: {ms:.3f} ms")


if __name__ == "__main__":
    main()
