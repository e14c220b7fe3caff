"""Codebook (weight-sharing) quantisation: one table of ``2^b`` values per layer.

Deep Compression (Han et al., ICLR 2016) shares weights through k-means centroids instead of
evenly spaced levels. Here the table always holds an exact 0.0 (pruned weights, and any
weight nearest to it) and ``2^b - 1`` centroids of the non-zero weights, found by Lloyd's
algorithm in 1-D (on the sorted values, with prefix sums) from a linear initialisation over
[min, max] (the paper's best), for a fixed number of iterations, on at most
``MAX_SAMPLES`` evenly strided weights (so a large layer costs milliseconds per forward): a
deterministic function of the weights, recomputed in every forward of the train form and
once by the codec, so both give the same values. Codes index the sorted table.

Example::

    table = kmeans_table(w, bits=3)          # 8 sorted values, one of them 0.0
    codes = nearest(table, w)                # int64 indices, w's shape
    w_hat = table[codes]
"""

from __future__ import annotations

import torch

ITERATIONS = 12
MAX_SAMPLES = 1 << 16  # larger layers fit the table on an evenly strided subset of their weights


def nearest(table: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Index of the nearest entry of the sorted ``table`` for every element of ``w``."""
    mids = (table[1:] + table[:-1]) / 2
    return torch.bucketize(w.detach().float().contiguous(), mids)


@torch.no_grad()
def kmeans_table(w: torch.Tensor, bits: int) -> torch.Tensor:
    """The sorted float32 table of ``2^bits`` values for ``w`` (0.0 included exactly).

    Lloyd's algorithm on the sorted non-zero values: 1-D clusters are runs of the sorted
    values between midpoints, so each step needs only a search of ``2^bits`` midpoints and
    prefix sums (the same membership :func:`nearest` gives: a value on a midpoint goes down).
    """
    k = 2**bits
    v = w.detach().float().reshape(-1)
    v = v[v != 0]
    if v.numel() == 0:
        return torch.zeros(k)
    if v.numel() > MAX_SAMPLES:  # deterministic, so train form and codec still agree
        v = v[:: -(-v.numel() // MAX_SAMPLES)]
    v = v.sort().values
    prefix = torch.cat([torch.zeros(1, dtype=torch.float64), v.double().cumsum(0)])
    free = torch.linspace(float(v[0]), float(v[-1]), k - 1)
    zero_at = int((free < 0).sum())  # the fixed 0.0 sits between the negative and the rest
    table = torch.cat([free[:zero_at], torch.zeros(1), free[zero_at:]]).double()
    ends = torch.empty(k + 1, dtype=torch.int64)
    ends[0], ends[-1] = 0, v.numel()
    for _ in range(ITERATIONS):
        mids = ((table[1:] + table[:-1]) / 2).float()
        ends[1:-1] = torch.searchsorted(v, mids, right=True)
        counts = (ends[1:] - ends[:-1]).double()
        sums = prefix[ends[1:]] - prefix[ends[:-1]]
        table = torch.where(counts > 0, sums / counts.clamp(min=1), table)
        table[zero_at] = 0.0
    return table.float().sort().values


__all__ = ["ITERATIONS", "MAX_SAMPLES", "kmeans_table", "nearest"]
