"""Codebook (weight-sharing) quantisation: one table of ``2^b`` values per layer.

Deep Compression (Han et al., ICLR 2016) shares weights through k-means centroids instead of
evenly spaced levels. Here the table always holds an exact 0.0 (pruned weights, and any
weight nearest to it) and ``2^b - 1`` centroids of the non-zero weights, found by Lloyd's
algorithm in 1-D from a linear initialisation over [min, max] (the paper's best), for a
fixed number of iterations (on at most ``MAX_SAMPLES`` evenly strided weights, so a large
layer costs milliseconds per forward): a deterministic function of the weights, recomputed in every
forward of the train form and once by the codec, so both give the same values. Codes index
the sorted table.

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
    """The sorted float32 table of ``2^bits`` values for ``w`` (0.0 included exactly)."""
    k = 2**bits
    v = w.detach().float().reshape(-1)
    v = v[v != 0]
    if v.numel() == 0:
        return torch.zeros(k)
    if v.numel() > MAX_SAMPLES:  # deterministic, so train form and codec still agree
        v = v[:: -(-v.numel() // MAX_SAMPLES)].contiguous()
    free = torch.linspace(float(v.min()), float(v.max()), k - 1)
    for _ in range(ITERATIONS):
        table, order = torch.sort(torch.cat([free, torch.zeros(1)]))
        idx = nearest(table, v)
        sums = torch.zeros(k).index_add_(0, idx, v)
        counts = torch.bincount(idx, minlength=k).float()
        moved = torch.where(counts > 0, sums / counts.clamp(min=1), table)
        zero_at = int((order == k - 1).nonzero()[0, 0])  # the fixed 0.0 stays where it is
        moved[zero_at] = 0.0
        keep = torch.ones(k, dtype=torch.bool)
        keep[zero_at] = False
        free = moved[keep]
    return torch.sort(torch.cat([free, torch.zeros(1)])).values


__all__ = ["ITERATIONS", "MAX_SAMPLES", "kmeans_table", "nearest"]
