"""Embedding fidelity: the metric and loss of tasks judged against the base model itself.

The targets of such a task are the uncompressed model's embeddings of its inputs, so a
compressed candidate is scored by how faithfully it reproduces them:

- ``mean_cosine``: the mean cosine similarity between each candidate embedding and the
  uncompressed one of the same input (1 = the same directions);
- ``top10_agreement``: for each input, the overlap of its 10 nearest neighbours (cosine,
  itself excluded) among the split's inputs under the candidate and under the uncompressed
  model, averaged (1 = every neighbour list unchanged). It needs the whole split's
  embeddings, which is what a Metric receives (``score`` predicts the split, then scores it);
- ``fidelity`` = their mean: the one number the search maximises (1.0 for the base model).

Example::

    fidelity(candidate_embeddings, base_embeddings)        # -> 0.97
    fidelity_parts(candidate_embeddings, base_embeddings)  # -> {"mean_cosine": ..., ...}
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autocompress.tasks._task import Metric

TOP_K = 10


def cosine_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - cos(pred, target)`` per row, averaged: the fine-tune loss (0 = same directions)."""
    return (1.0 - F.cosine_similarity(pred, target, dim=1)).mean()


def mean_cosine(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean cosine similarity of each predicted embedding to its target."""
    return float(F.cosine_similarity(pred, target, dim=1).mean())


def _neighbours(emb: torch.Tensor, k: int) -> torch.Tensor:
    unit = F.normalize(emb.float(), dim=1)
    sim = unit @ unit.T
    sim.fill_diagonal_(float("-inf"))  # an input is not its own neighbour
    return sim.topk(k, dim=1).indices


def retrieval_agreement(pred: torch.Tensor, target: torch.Tensor, k: int = TOP_K) -> float:
    """Mean overlap (0..1) of each row's ``k`` nearest neighbours under ``pred`` and ``target``.

    A split of one row has no neighbours: its agreement is 1.
    """
    k = min(k, len(pred) - 1)
    if k < 1:
        return 1.0
    a, b = _neighbours(pred, k), _neighbours(target, k)
    shared = (a.unsqueeze(2) == b.unsqueeze(1)).any(dim=2).sum(dim=1)
    return float(shared.float().mean() / k)


def fidelity_parts(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """The two parts of :func:`fidelity`, by name."""
    return {"mean_cosine": mean_cosine(pred, target),
            f"top{TOP_K}_agreement": retrieval_agreement(pred, target)}


def fidelity(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean of the mean cosine and the top-10 retrieval agreement (see the module docstring)."""
    parts = fidelity_parts(pred, target)
    return sum(parts.values()) / len(parts)


FIDELITY = Metric("fidelity", fidelity, parts=fidelity_parts)
