"""Timing done the same way everywhere: fixed threads, warm-up, median of blocks.

At one thread torch runs every kernel inline in the calling thread, so the calling thread's
CPU time (``clock="cpu"``) is the latency the model would have on an idle machine, and it
does not count time the thread spends preempted by other processes: figures stay stable on
a busy machine. With more threads only wall time (``clock="wall"``) is meaningful.

The C allocator is pinned first (:func:`steady_allocator`). glibc serves allocations above a
threshold with a fresh ``mmap`` and returns them on free, so every forward page-faults its
activation buffers in again; the threshold moves up only after a larger block has been freed,
so the same layer timed in two processes (or twice in one) could differ by up to 5x (digits-
size conv 3->32 on 8x32x32: 0.93 vs 0.16 ms; docs/benchmarks-history.md, issue 4). A serving process that
has loaded its model is in the second state; timings here always are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import torch

Clock = Literal["wall", "cpu"]


def clock_for(threads: int) -> Clock:
    """Thread CPU time at one thread (robust to other processes), else wall time."""
    return "cpu" if threads == 1 else "wall"


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` intra-op threads; the previous setting is restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)



_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its moving threshold (64-bit)


@functools.cache
def steady_allocator() -> bool:
    """Pin glibc's mmap threshold at 32 MiB and its trim threshold at 64 MiB, once per process,
    so that blocks below 32 MiB are reused from the heap instead of mapped and page-faulted
    in on every call. True if pinned; False where the C library is not glibc (nothing to do)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD))


def timing_batch(x: torch.Tensor, n: int) -> torch.Tensor:
    """``n`` samples of ``x`` (repeated when it holds fewer): an input to time a model at batch ``n``."""
    if len(x) >= n:
        return x[:n]
    return x.repeat(-(-n // len(x)), *([1] * (x.dim() - 1)))[:n]


def time_ms(fn: Callable[[], object], *, warmup: int = 5, repeats: int = 21,
            min_block_ms: float = 2.0, clock: Clock = "wall", rounds: int = 3) -> float:
    """Milliseconds of one call of ``fn`` (no grad, GC paused): the minimum over ``rounds``
    of the median over ``repeats`` timed blocks.

    Calls are grouped in blocks long enough (``min_block_ms``) that timer resolution and
    scheduler jitter stay small. Other processes only ever slow a round down (shared caches,
    memory bandwidth), so the best round's median is the steadiest estimate. The allocator
    is pinned first (:func:`steady_allocator`).
    """
    steady_allocator()
    return min(_median_ms(fn, warmup, repeats, min_block_ms, clock) for _ in range(max(rounds, 1)))


def _median_ms(fn: Callable[[], object], warmup: int, repeats: int, min_block_ms: float,
               clock: Clock) -> float:
    now = time.thread_time if clock == "cpu" else time.perf_counter
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                fn()
            t0 = now()
            fn()
            one = max(now() - t0, 1e-7)
            n = max(1, int(min_block_ms * 1e-3 / one))
            samples = []
            for _ in range(repeats):
                t0 = now()
                for _ in range(n):
                    fn()
                samples.append((now() - t0) / n)
    finally:
        if was_enabled:
            gc.enable()
    return 1e3 * statistics.median(samples)
