"""The built-in tasks. All offline; MNIST is read from a directory the user names.

``minilm-embed`` (a sentence-embedding model) is not built in yet.
"""

from __future__ import annotations

import functools
import os

from autocompress.tasks._datasets import load_digits_data, load_mnist1d_data, load_mnist_data
from autocompress.tasks._registry import register_task
from autocompress.tasks._task import Task, TrainConfig

DEFAULT_TASK = "digits-cnn"


@register_task("digits-cnn")
def digits_cnn() -> Task:
    """scikit-learn digits 8x8, a 3-conv CNN (40k parameters). The default task."""
    return Task("digits-cnn", "digits-cnn", load_digits_data,
                train=TrainConfig(epochs=40, lr=3e-3))


@register_task("digits-resdw")
def digits_resdw() -> Task:
    """Digits with inverted residual blocks and depthwise convs, for structure and latency."""
    return Task("digits-resdw", "digits-resdw", load_digits_data, train=TrainConfig(epochs=60))


@register_task("mnist-lenet300")
def mnist_lenet300(data_dir: str | os.PathLike[str] | None = None) -> Task:
    """MNIST, LeNet-300-100 (784-300-100-10)."""
    return Task(
        "mnist-lenet300",
        "lenet-300-100",
        functools.partial(load_mnist_data, data_dir),
        train=TrainConfig(epochs=20, batch_size=128, weight_decay=0.0),
    )


@register_task("mnist-lenet5")
def mnist_lenet5(data_dir: str | os.PathLike[str] | None = None) -> Task:
    """MNIST, Caffe LeNet-5 as in Han et al. (431k parameters)."""
    return Task(
        "mnist-lenet5",
        "lenet-5",
        functools.partial(load_mnist_data, data_dir),
        train=TrainConfig(epochs=10, batch_size=128),
    )


@register_task("mnist1d-cnn")
def mnist1d_cnn() -> Task:
    """MNIST-1D (generated offline, default args), a 3-conv 1-D CNN (8k parameters)."""
    return Task("mnist1d-cnn", "mnist1d-cnn", load_mnist1d_data,
                train=TrainConfig(epochs=100, batch_size=100, lr=1e-2))
