"""Pareto fronts and hypervolume: small pure numpy functions, no study objects.

Every function takes ``points`` of shape ``(n, d)`` and one direction per column
(``"maximize"`` or ``"minimize"``). Internally all columns are turned into losses
(maximised columns negated), so "a dominates b" means ``a <= b`` everywhere and ``a < b``
somewhere. Rows holding NaN (failed trials) are never on the front and dominate nothing.

Example::

    pts = [[0.98, 12_000, 1.2], [0.97, 6_000, 0.9], [0.95, 7_000, 1.0]]   # acc, bytes, ms
    dirs = ("maximize", "minimize", "minimize")
    pareto_mask(pts, dirs)                 # -> [True, True, False]
    hypervolume(normalise(pts, [0.99, 40_000, 2.0], dirs), normalised_reference(dirs), dirs)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autocompress.errors import ConfigError

Direction = Literal["maximize", "minimize"]
DIRECTIONS: tuple[str, ...] = ("maximize", "minimize")

__all__ = [
    "DIRECTIONS",
    "Direction",
    "hypervolume",
    "normalise",
    "normalised_hypervolume",
    "normalised_reference",
    "pareto_front",
    "pareto_mask",
    "to_losses",
]


def to_losses(points: ArrayLike, directions: Sequence[str]) -> NDArray[np.float64]:
    """``points`` as a float ``(n, d)`` array where smaller is better in every column."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, len(directions))
    if arr.ndim != 2:
        raise ValueError(f"points must be a 2-d array (n, d), got shape {arr.shape}")
    if arr.shape[1] != len(directions):
        raise ValueError(
            f"points have {arr.shape[1]} column(s) but {len(directions)} direction(s) were given"
        )
    sign = np.array([_sign(d, i) for i, d in enumerate(directions)], dtype=np.float64)
    return arr * sign


def _sign(direction: str, i: int) -> float:
    if direction not in DIRECTIONS:
        raise ConfigError(f"directions[{i}] must be one of {DIRECTIONS}, got {direction!r}")
    return -1.0 if direction == "maximize" else 1.0


def pareto_mask(
    points: ArrayLike, directions: Sequence[str], *, keep_duplicates: bool = True
) -> NDArray[np.bool_]:
    """True for every row that no other row dominates.

    Identical rows do not dominate each other: with ``keep_duplicates`` every copy of a
    non-dominated row is marked, otherwise only the first (lowest index) copy is.
    """
    loss = to_losses(points, directions)
    n = loss.shape[0]
    valid = ~np.isnan(loss).any(axis=1)
    mask = valid.copy()
    for i in np.flatnonzero(valid):
        if not mask[i]:
            continue  # a dominated row's dominated rows are dominated by its dominator too
        le = (loss[i] <= loss).all(axis=1)
        lt = (loss[i] < loss).any(axis=1)
        mask &= ~(le & lt)
    if not keep_duplicates and n:
        _, first = np.unique(loss[mask], axis=0, return_index=True)
        keep = np.zeros(n, dtype=bool)
        keep[np.flatnonzero(mask)[first]] = True
        mask = keep
    return mask


def pareto_front(
    points: ArrayLike, directions: Sequence[str], *, keep_duplicates: bool = True
) -> NDArray[np.intp]:
    """Row indices of the front, best first by the first objective (ties: later columns, index)."""
    loss = to_losses(points, directions)
    mins = ["minimize"] * loss.shape[1]
    idx = np.flatnonzero(pareto_mask(loss, mins, keep_duplicates=keep_duplicates))
    if idx.size == 0:
        return idx
    keys = [idx] + [loss[idx, j] for j in range(loss.shape[1] - 1, -1, -1)]
    return idx[np.lexsort(keys)]


def hypervolume(points: ArrayLike, reference: ArrayLike, directions: Sequence[str]) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (same units as points).

    Exact in every dimension: 1-d and 2-d by a sweep, higher dimensions by slicing along
    the last objective (exact, ``O(n^(d-1) log n)``: fine for fronts of a few hundred
    points in 3-d, meant for small sets beyond). Points not strictly better than the
    reference in every column add nothing; NaN rows are ignored.
    """
    loss = to_losses(points, directions)
    ref = to_losses(np.asarray(reference, dtype=np.float64).reshape(1, -1), directions)[0]
    if np.isnan(ref).any():
        raise ValueError(f"reference must not hold NaN, got {np.asarray(reference).tolist()}")
    loss = loss[~np.isnan(loss).any(axis=1)]
    loss = loss[(loss < ref).all(axis=1)]
    if loss.shape[0] == 0:
        return 0.0
    loss = np.unique(loss, axis=0)
    loss = loss[pareto_mask(loss, ["minimize"] * loss.shape[1])]
    return float(_hv(loss, ref))


def _hv(loss: NDArray[np.float64], ref: NDArray[np.float64]) -> float:
    """Hypervolume of loss points all strictly below ``ref`` (minimisation)."""
    d = loss.shape[1]
    if d == 1:
        return float(ref[0] - loss[:, 0].min())
    if d == 2:
        return _hv2(loss, ref)
    order = np.argsort(loss[:, -1], kind="stable")
    pts = loss[order]
    z = np.append(pts[:, -1], ref[-1])
    total = 0.0
    for i in range(pts.shape[0]):
        thick = z[i + 1] - z[i]
        if thick > 0:
            total += thick * _hv(pts[: i + 1, :-1], ref[:-1])
    return total


def _hv2(loss: NDArray[np.float64], ref: NDArray[np.float64]) -> float:
    order = np.lexsort((loss[:, 1], loss[:, 0]))
    x, y = loss[order, 0], loss[order, 1]
    best_y = np.minimum.accumulate(y)
    width = np.append(x[1:], ref[0]) - x
    return float(np.sum(width * (ref[1] - best_y)))


# ---- normalised objectives (metric, size, latency) -------------------------------------


def normalise(
    points: ArrayLike, baseline: ArrayLike, directions: Sequence[str]
) -> NDArray[np.float64]:
    """Each column divided by the uncompressed base model's value (1.0 = as good as the base).

    Ratios make hypervolumes comparable across models and units. ``baseline`` must be
    finite and > 0 in every column (metric, size in bytes, latency in ms).
    """
    arr = to_losses(points, directions)  # validates the shape and the directions
    arr = arr * to_losses(np.ones((1, arr.shape[1])), directions)[0]  # undo the sign flips
    base = np.asarray(baseline, dtype=np.float64).reshape(-1)
    if base.shape[0] != arr.shape[1] or not np.all(np.isfinite(base)) or np.any(base <= 0):
        raise ValueError(
            f"baseline needs one finite value > 0 per objective ({arr.shape[1]}), "
            f"got {base.tolist()}"
        )
    return arr / base


def normalised_reference(directions: Sequence[str]) -> NDArray[np.float64]:
    """The documented reference point for :func:`normalise`-d objectives.

    ``0.0`` for a maximised column (any positive metric counts), ``1.0`` for a minimised
    one (only candidates smaller / faster than the base model count). So the base model
    itself has hypervolume 0 and the ideal point (metric ratio 1, size 0, latency 0) has 1.
    A *minimised metric* (a loss) needs an explicit reference instead, e.g. 2.0 = twice
    the base loss.
    """
    return np.array([0.0 if _sign(d, i) < 0 else 1.0 for i, d in enumerate(directions)])


def normalised_hypervolume(
    points: ArrayLike,
    baseline: ArrayLike,
    directions: Sequence[str],
    reference: ArrayLike | None = None,
) -> float:
    """Hypervolume of ``normalise(points, baseline)`` w.r.t. :func:`normalised_reference`."""
    ref = normalised_reference(directions) if reference is None else reference
    return hypervolume(normalise(points, baseline, directions), ref, directions)
