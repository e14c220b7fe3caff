"""Where measurements live: the cache directory and this machine's fingerprint.

Measured figures are only valid on the machine, thread count, torch build and timing method
that produced them, so every cache file is keyed by a fingerprint of the four (a new timing
method starts new tables; old ones are left alone). The directory comes from
``AUTOCOMPRESS_CACHE`` (default ``~/.cache/autocompress``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

# How autocompress.cost.profiling times kernels: part of the fingerprint (a change of method
# invalidates the tables measured with the old one).
TIMING_METHOD = "cpu-or-wall/median-of-blocks/allocator-32MiB"


@dataclass(frozen=True)
class Fingerprint:
    """What a measurement depends on: CPU model, thread count, torch version, timing method."""

    cpu: str
    threads: int
    torch: str
    timing: str = TIMING_METHOD

    @property
    def key(self) -> str:
        raw = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha1(raw).hexdigest()[:16]

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "key": self.key}


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown-cpu"


def fingerprint(threads: int = 1) -> Fingerprint:
    """This machine's fingerprint at ``threads`` intra-op threads."""
    return Fingerprint(cpu=cpu_model(), threads=int(threads), torch=torch.__version__)


def cache_dir() -> Path:
    """``$AUTOCOMPRESS_CACHE`` or ``~/.cache/autocompress`` (not created here)."""
    env = os.environ.get("AUTOCOMPRESS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "autocompress"


def latency_dir() -> Path:
    return cache_dir() / "latency"
