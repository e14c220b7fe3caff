from __future__ import annotations

import itertools

import numpy as np
import pytest

from autocompress.errors import ConfigError
from autocompress.results._pareto import (
    hypervolume,
    normalise,
    normalised_hypervolume,
    normalised_reference,
    pareto_front,
    pareto_mask,
    to_losses,
)


def brute_mask(loss: np.ndarray) -> np.ndarray:
    n = len(loss)
    out = np.ones(n, dtype=bool)
    for i, j in itertools.product(range(n), range(n)):
        if np.all(loss[j] <= loss[i]) and np.any(loss[j] < loss[i]):
            out[i] = False
    return out


def grid_hv(loss: np.ndarray, ref: np.ndarray) -> float:
    """Exact for integer points: count the unit cells some point dominates."""
    d = loss.shape[1]
    lo = int(loss.min()) if len(loss) else 0
    count = 0
    for cell in itertools.product(*[range(lo, int(r)) for r in ref]):
        if np.any(np.all(loss <= np.array(cell), axis=1)):
            count += 1
    assert d == len(ref)
    return float(count)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", range(5))
def test_pareto_mask_matches_brute_force(d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 5, size=(30, d)).astype(float)  # many ties and duplicates
    dirs = [("maximize", "minimize")[k % 2] for k in range(d)]
    assert np.array_equal(pareto_mask(pts, dirs), brute_mask(to_losses(pts, dirs)))


def test_duplicates_are_deterministic() -> None:
    pts = np.array([[1.0, 2.0], [2.0, 1.0], [1.0, 2.0], [3.0, 3.0]])
    dirs = ["minimize", "minimize"]
    assert pareto_mask(pts, dirs).tolist() == [True, True, True, False]
    assert pareto_mask(pts, dirs, keep_duplicates=False).tolist() == [True, True, False, False]
    assert pareto_front(pts, dirs, keep_duplicates=False).tolist() == [0, 1]
    assert pareto_front(pts, dirs).tolist() == [0, 2, 1]


def test_nan_rows_are_never_on_the_front() -> None:
    pts = np.array([[np.nan, 0.0], [1.0, 1.0], [0.5, np.nan]])
    assert pareto_mask(pts, ["minimize", "minimize"]).tolist() == [False, True, False]
    assert hypervolume(pts, [2.0, 2.0], ["minimize", "minimize"]) == 1.0


def test_front_order_best_first() -> None:
    pts = [[0.90, 10.0], [0.95, 20.0], [0.80, 5.0], [0.85, 30.0]]
    assert pareto_front(pts, ["maximize", "minimize"]).tolist() == [1, 0, 2]


def test_empty_and_bad_inputs() -> None:
    assert pareto_mask(np.zeros((0, 2)), ["minimize", "maximize"]).shape == (0,)
    assert hypervolume(np.zeros((0, 3)), [1, 1, 1], ["minimize"] * 3) == 0.0
    with pytest.raises(ConfigError, match=r"directions\[1\]"):
        pareto_mask([[1.0, 2.0]], ["minimize", "up"])
    with pytest.raises(ValueError, match="2 direction"):
        pareto_mask([[1.0, 2.0, 3.0]], ["minimize", "minimize"])


@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", range(4))
def test_hypervolume_exact_against_grid_counting(d: int, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    pts = rng.integers(0, 6, size=(12, d)).astype(float)
    ref = np.full(d, 6.0)
    assert hypervolume(pts, ref, ["minimize"] * d) == grid_hv(pts, ref)


def test_hypervolume_matches_monte_carlo_with_mixed_directions() -> None:
    rng = np.random.default_rng(7)
    pts = rng.random((15, 3))
    dirs = ["maximize", "minimize", "minimize"]
    ref = np.array([0.0, 1.0, 1.0])
    hv = hypervolume(pts, ref, dirs)
    samples = rng.random((200_000, 3))  # the box [0, 1]^3 has volume 1
    covered = np.zeros(len(samples), dtype=bool)
    for p in pts:
        covered |= (samples[:, 0] <= p[0]) & np.all(samples[:, 1:] >= p[1:], axis=1)
    assert hv == pytest.approx(covered.mean(), abs=0.005)


@pytest.mark.parametrize("d", [2, 3, 4, 5])
def test_hypervolume_matches_optuna(d: int) -> None:
    hvmod = pytest.importorskip("optuna._hypervolume")
    rng = np.random.default_rng(d)
    pts = rng.random((25 if d < 5 else 12, d))
    ref = np.full(d, 1.1)
    expected = hvmod.compute_hypervolume(pts, ref)
    assert hypervolume(pts, ref, ["minimize"] * d) == pytest.approx(expected, rel=1e-12)
    # maximised columns: mirror the points
    dirs = ["maximize"] + ["minimize"] * (d - 1)
    mirrored = pts.copy()
    mirrored[:, 0] = 1.0 - mirrored[:, 0]
    ref2 = ref.copy()
    ref2[0] = 1.0 - 1.1
    assert hypervolume(mirrored, ref2, dirs) == pytest.approx(expected, rel=1e-12)


def test_pareto_mask_matches_optuna() -> None:
    mo = pytest.importorskip("optuna.study._multi_objective")
    rng = np.random.default_rng(3)
    pts = rng.integers(0, 8, size=(60, 3)).astype(float)
    expected = mo._is_pareto_front(pts, assume_unique_lexsorted=False)
    assert np.array_equal(pareto_mask(pts, ["minimize"] * 3), expected)


def test_points_worse_than_reference_add_nothing() -> None:
    dirs = ["minimize", "minimize"]
    assert hypervolume([[2.0, 0.0]], [1.0, 1.0], dirs) == 0.0
    assert hypervolume([[0.0, 0.0], [2.0, -5.0]], [1.0, 1.0], dirs) == 1.0


def test_normalised_hypervolume_reference_point() -> None:
    dirs = ["maximize", "minimize", "minimize"]
    base = [0.98, 40_000.0, 2.0]
    assert normalised_reference(dirs).tolist() == [0.0, 1.0, 1.0]
    assert normalised_hypervolume([base], base, dirs) == 0.0  # the base model adds nothing
    assert normalised_hypervolume([[0.98, 0.0, 0.0]], base, dirs) == pytest.approx(1.0)
    half = normalised_hypervolume([[0.49, 20_000.0, 1.0]], base, dirs)
    assert half == pytest.approx(0.5 * 0.5 * 0.5)
    assert normalise([[0.49, 20_000.0, 1.0]], base, dirs).tolist() == [[0.5, 0.5, 0.5]]
    with pytest.raises(ValueError, match="baseline"):
        normalise([[1.0, 1.0, 1.0]], [1.0, 0.0, 1.0], dirs)
