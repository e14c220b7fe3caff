"""Size and CPU latency of real deploy-form artifacts vs fp32, for several policies.

Every figure is measured on the artifact: it is saved (safetensors), loaded back into a
fresh instance of the architecture, and timed (wall clock, median of repeated runs after
warm-up, torch.set_num_threads fixed, glibc's allocator pinned as in every latency
measurement of autocompress: ``autocompress.cost.profiling._timing.steady_allocator``). Targets (issue 2):
- CNN: int8 + 50% channel pruning >= 4x faster than fp32 at 1 thread;
- MLP: a 4-bit, 90%-sparse artifact <= 1/20 of the fp32 size.

    python bench/bench_compression.py [--repeats 200] [--batch 1]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from autocompress import Policy, compress, load_artifact, save_artifact
from autocompress.artifact import state_bytes
from autocompress.cost.profiling._timing import steady_allocator


class BenchCNN(nn.Module):
    """A VGG-style CNN for 3x32x32 inputs (about 0.3 GMAC... at 64-128 channels)."""

    def __init__(self, c: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.conv3 = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.conv4 = nn.Conv2d(2 * c, 2 * c, 3, padding=1)
        self.fc = nn.Linear(2 * c * 8 * 8, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        x = nn.functional.max_pool2d(x, 2)
        x = torch.relu(self.conv4(torch.relu(self.conv3(x))))
        x = nn.functional.max_pool2d(x, 2)
        return self.fc(torch.flatten(x, 1))


class BenchMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 1024)
        self.fc2 = nn.Linear(1024, 1024)
        self.fc3 = nn.Linear(1024, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))))


CNN_POLICIES = {
    "fp32": {},
    "int8 (w8a8)": {"default": {"weight_bits": 8, "act_bits": 8}},
    "50% channels": {"layers": {"re:conv[123]": {"sparsity": 0.5, "pattern": "channel"}}},
    "int8 + 50% channels": {
        "default": {"weight_bits": 8, "act_bits": 8},
        "layers": {"re:conv[123]": {"sparsity": 0.5, "pattern": "channel", "weight_bits": 8, "act_bits": 8}},
    },
    "4-bit weights": {"default": {"weight_bits": 4}},
    "low rank 0.25": {"layers": {"re:conv[234]": {"rank": 0.25}}},
}
MLP_POLICIES = {
    "fp32": {},
    "int8 (w8a8)": {"default": {"weight_bits": 8, "act_bits": 8}},
    "4-bit": {"default": {"weight_bits": 4}},
    "4-bit + 90% sparse": {"default": {"weight_bits": 4, "sparsity": 0.9}},
    "fp32 + 95% sparse (CSR)": {"default": {"sparsity": 0.95}},
    "2:4 + int8": {"default": {"weight_bits": 8, "act_bits": 8, "pattern": "2:4"}},
    "low rank 0.125": {"layers": {"re:fc[12]": {"rank": 0.125}}},
}


def median_ms(model: nn.Module, x: torch.Tensor, threads: int, repeats: int) -> float:
    torch.set_num_threads(threads)
    with torch.no_grad():
        for _ in range(max(10, repeats // 10)):
            model(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def run(name: str, factory, policies: dict, x: torch.Tensor, repeats: int, tmp: Path) -> list[dict]:
    torch.manual_seed(0)
    base = factory().eval()
    calib = torch.randn(64, *x.shape[1:])
    fp32_bytes = state_bytes(base)
    rows = []
    ref = {}
    for label, raw in policies.items():
        policy = Policy.from_dict(raw)
        deploy = compress(base, policy, form="deploy", example_input=calib)
        info = save_artifact(deploy, policy, tmp / f"{name}-{len(rows)}.safetensors", calib)
        loaded = load_artifact(info.path, factory().eval())
        row = {"model": name, "policy": label, "tensor_bytes": info.tensor_bytes, "file_bytes": info.file_bytes,
               "size_x": fp32_bytes / info.tensor_bytes}
        for threads in (1, 2):
            row[f"ms_{threads}t"] = median_ms(loaded, x, threads, repeats)
            ref.setdefault(threads, row[f"ms_{threads}t"])
            row[f"speed_{threads}t"] = ref[threads] / row[f"ms_{threads}t"]
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--unpinned-allocator", action="store_true",
                    help="leave glibc's moving mmap threshold alone (timings then depend on the process's history)")
    args = ap.parse_args()
    if not args.unpinned_allocator:
        steady_allocator()  # as every latency measurement of autocompress does
    rows = []
    with tempfile.TemporaryDirectory() as d:
        rows += run("cnn", BenchCNN, CNN_POLICIES, torch.randn(args.batch, 3, 32, 32), args.repeats, Path(d))
        rows += run("mlp", BenchMLP, MLP_POLICIES, torch.randn(args.batch, 784), args.repeats, Path(d))
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"batch {args.batch}, median of {args.repeats} runs")
    print("| model | policy | tensor bytes | file bytes | smaller | ms 1t | x 1t | ms 2t | x 2t |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['policy']} | {r['tensor_bytes']} | {r['file_bytes']} | {r['size_x']:.1f}x | "
              f"{r['ms_1t']:.3f} | {r['speed_1t']:.2f}x | {r['ms_2t']:.3f} | {r['speed_2t']:.2f}x |")


if __name__ == "__main__":
    main()
