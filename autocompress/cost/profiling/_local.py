"""Profile this machine into a ``local`` device profile for the analytic model.

Peaks and bandwidths are *achieved* figures measured through the same kernels the deploy
form runs (so efficiencies are 1.0); cache sizes come from sysfs. Written as YAML into the
cache, keyed by the machine fingerprint. What is not measured says ``estimate:``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from autocompress import files
from autocompress.cost._plan import LeafPlan
from autocompress.cost.latency import FORMAT, cpu_model, fingerprint, local_profile_path
from autocompress.cost.profiling._timing import clock_for, time_ms, torch_threads

_SYS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")


def _m(value: Any, how: str) -> dict[str, Any]:
    return {"value": value, "source": f"measured: {how}"}


def _e(value: Any, why: str) -> dict[str, Any]:
    return {"value": value, "source": f"estimate: {why}"}


def cache_sizes_kib() -> dict[str, float]:
    """Data/unified cache sizes per level from sysfs (empty where unavailable)."""
    out: dict[str, float] = {}
    for idx in sorted(_SYS_CACHE.glob("index*")):
        try:
            kind = (idx / "type").read_text().strip()
            level = (idx / "level").read_text().strip()
            size = (idx / "size").read_text().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        mult = {"K": 1.0, "M": 1024.0, "G": 1024.0 * 1024.0}.get(size[-1], 1.0 / 1024.0)
        out[f"l{level}"] = float(size.rstrip("KMG")) * mult
    return out


def _linear_plan(n: int, batch: int, wb: int, ab: int) -> LeafPlan:
    return LeafPlan(layer="leaf", leaf="leaf", kind="linear", in_channels=n, out_channels=n,
                    kernel_size=(), groups=1, stride=(), has_bias=False, weight_shape=(n, n),
                    input_shape=(batch, n), output_shape=(batch, n), macs=n * n, calls=1,
                    weight_bits=wb, act_bits=ab, sparsity=0.0, pattern="unstructured",
                    kernel="int8" if wb <= 8 and ab <= 8 else "fp32")


def _int8_tops(threads: int) -> float | None:
    """Achieved int8 tera-ops/s of the deploy form's int8 Linear (None if it has none)."""
    from autocompress.cost.profiling.profiler import deploy_leaf

    p = _linear_plan(1024, 256, 8, 8)
    try:
        mod, x = deploy_leaf(p)
    except ImportError:
        return None
    if getattr(mod, "kernel", None) != "int8":
        return None
    c = clock_for(threads)
    with torch_threads(threads):
        ms = time_ms(lambda: mod(x), repeats=9, clock=c)
    return 2.0 * p.macs * 256 / (ms * 1e-3) / 1e12


def _csr_min_sparsity() -> float:
    from autocompress.techniques.deploy import SPARSE_CSR_MIN_SPARSITY

    return float(SPARSE_CSR_MIN_SPARSITY)


def measure_profile(threads: int = 1) -> dict[str, Any]:
    """The raw ``local`` profile of this machine at ``threads`` threads."""
    n = 512
    a, b = torch.randn(n, n), torch.randn(n, n)
    big, big_dst = torch.ones(32 * 1024 * 1024), torch.empty(32 * 1024 * 1024)
    small, small_dst = torch.ones(128 * 1024), torch.empty(128 * 1024)
    tiny = torch.nn.Linear(4, 4)
    xt = torch.randn(1, 4)
    c = clock_for(threads)
    with torch_threads(threads):
        mm = time_ms(lambda: torch.mm(a, b), repeats=9, clock=c)
        dram = time_ms(lambda: big_dst.copy_(big), repeats=5, clock=c)
        llc = time_ms(lambda: small_dst.copy_(small), repeats=21, clock=c)
        op = time_ms(lambda: tiny(xt), repeats=21, clock=c)
        call = time_ms(lambda: torch.nn.Identity()(xt), repeats=21, clock=c)
    int8 = _int8_tops(threads)
    fp32 = 2.0 * n**3 / (mm * 1e-3) / 1e12
    peaks = {"fp32": _m(round(fp32, 5), f"torch.mm {n}x{n}x{n} at {threads} thread(s)")}
    if int8 is not None:
        peaks["int8"] = _m(round(int8, 5), "deploy-form int8 Linear 1024x1024, batch 256")
    caches = {k: _m(v, f"{_SYS_CACHE}") for k, v in cache_sizes_kib().items()}
    specs = {
        "memory_gbs": _m(round(2 * big.numel() * 4 / (dram * 1e-3) / 1e9, 3), "128 MiB copy_"),
        "cache_gbs": _m(round(2 * small.numel() * 4 / (llc * 1e-3) / 1e9, 3), "512 KiB copy_"),
        "compute_efficiency": _m(1.0, "peaks above are achieved, not theoretical"),
        "memory_efficiency": _m(1.0, "bandwidths above are achieved, not theoretical"),
        "op_overhead_us": _m(round(op * 1e3, 3), "nn.Linear(4, 4) call on one row"),
        "model_overhead_us": _m(round(call * 1e3, 3), "nn.Module call of an identity"),
        "int8_kernels": _m(int8 is not None, "deploy form built an int8 kernel module"),
        "fp16_kernels": _e(False, "the deploy form runs 16-bit layers in fp32 (CONTRACTS.md)"),
        "weight_only_bits": _e([], "weight-only layers are dequantised to fp32 at load (CONTRACTS.md)"),
        "nm_patterns": _e([], "no N:M sparse kernels in the CPU deploy form"),
        "nm_speedup": _e(1.0, "no N:M sparse kernels in the CPU deploy form"),
        "unstructured_min_sparsity": _m(_csr_min_sparsity(), "the deploy form's CSR threshold "
                                        "(autocompress.techniques.deploy.SPARSE_CSR_MIN_SPARSITY)"),
        "quant_boundary": _e(True, "each int8 deploy leaf quantises its float input and "
                                   "dequantises its output (per-leaf eager modules)"),
        "rest_ops_per_leaf": _e(2.0, "a norm and an activation after most layers, unfused"),
    }
    fp = fingerprint(threads)
    return {"format": FORMAT, "name": "local", "kind": "cpu",
            "description": f"this machine: {cpu_model()}, {threads} thread(s), torch {torch.__version__}",
            "fingerprint": fp.key, "threads": threads, "peak_tops": peaks, "cache_kib": caches, "specs": specs}


def profile_device(threads: int = 1) -> Path:
    """Measure this machine and write its ``local`` profile into the cache; returns the path.

    This is what ``autocompress profile`` runs.
    """
    raw = measure_profile(threads)
    path = local_profile_path(threads)
    files.check_output_file(path, "device profile")  # creates the cache folder
    files.write_text(path, yaml.safe_dump(raw, sort_keys=False), "device profile")
    return path
