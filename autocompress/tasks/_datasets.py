"""The built-in data sets, all offline, with fixed seeded splits.

Validation data is always carved from the training data; the test split is held out and
never used for selection.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from autocompress.tasks._idx import mnist_dir, read_mnist_split
from autocompress.tasks._task import Split, TaskData

SPLIT_SEED = 0  # the splits never depend on the model seed
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
MNIST_VAL = 5_000  # the last 5k training images


def _split(x: np.ndarray, y: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                 torch.from_numpy(np.asarray(y, dtype=np.int64)))


def load_digits_data(val: float = 0.1, test: float = 0.2) -> TaskData:
    """scikit-learn's 8x8 digits (1797 images), scaled to [0, 1], shape (n, 1, 8, 8).

    A fixed seeded permutation; test = the first 20%, validation = the next 10%.
    """
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    bunch = load_digits()
    x = (bunch.images / 16.0).reshape(-1, 1, 8, 8)
    y = bunch.target
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    n_test, n_val = round(test * len(y)), round(val * len(y))
    te, va, tr = np.split(order, [n_test, n_test + n_val])
    return TaskData(train=_split(x[tr], y[tr]), val=_split(x[va], y[va]),
                    test=_split(x[te], y[te]))


def load_mnist_data(data_dir: str | os.PathLike[str] | None) -> TaskData:
    """MNIST from IDX files: train = first 55k, val = last 5k of train, test = t10k.

    Normalised with the usual mean/std, shape (n, 1, 28, 28).
    """
    directory = mnist_dir(data_dir)
    train_x, train_y = read_mnist_split(directory, "train")
    test_x, test_y = read_mnist_split(directory, "test")

    def norm(a: np.ndarray) -> np.ndarray:
        return ((a.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD)[:, None]

    cut = len(train_y) - MNIST_VAL
    return TaskData(
        train=_split(norm(train_x[:cut]), train_y[:cut]),
        val=_split(norm(train_x[cut:]), train_y[cut:]),
        test=_split(norm(test_x), test_y),
    )


def load_mnist1d_data(val: int = 500) -> TaskData:
    """MNIST-1D generated offline by ``mnist1d.data.make_dataset`` with its default args
    (4000 train / 1000 test sequences of length 40, seed 42), shape (n, 1, 40).

    Validation = the last ``val`` of the generated training set. ``make_dataset`` seeds the
    global ``random``/``numpy`` generators, so their state is restored afterwards.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        ds = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    x, y = ds["x"][:, None], ds["y"]
    cut = len(y) - val
    return TaskData(
        train=_split(x[:cut], y[:cut]),
        val=_split(x[cut:], y[cut:]),
        test=_split(ds["x_test"][:, None], ds["y_test"]),
    )
