"""Tasks: an architecture, data with fixed train / validation / test splits, a loss, a metric,
and a base model trained once and cached.

Example::

    from autocompress.tasks import base_model, get_task, test_metric
    task = get_task("digits-cnn")
    model = base_model(task, seed=0)          # trained once, then read from the cache
    print(test_metric(task, model))
"""

from autocompress.tasks import _builtin  # noqa: F401  (registers the built-in tasks)
from autocompress.tasks._base import CACHE_ENV, base_key, base_model, base_record, train_base
from autocompress.tasks._builtin import DEFAULT_TASK
from autocompress.tasks._datasets import load_digits_data, load_mnist1d_data, load_mnist_data
from autocompress.tasks._idx import MNIST_DIR_ENV, read_idx, read_mnist_split
from autocompress.tasks._registry import TASKS, TaskBuilder, get_task, register_task
from autocompress.tasks._task import (
    ACCURACY,
    Metric,
    Split,
    Task,
    TaskData,
    TrainConfig,
    accuracy,
)
from autocompress.tasks._train import predict, score, test_metric, validation_metric

__all__ = [
    "ACCURACY",
    "CACHE_ENV",
    "DEFAULT_TASK",
    "MNIST_DIR_ENV",
    "TASKS",
    "Metric",
    "Split",
    "Task",
    "TaskBuilder",
    "TaskData",
    "TrainConfig",
    "accuracy",
    "base_key",
    "base_model",
    "base_record",
    "get_task",
    "load_digits_data",
    "load_mnist1d_data",
    "load_mnist_data",
    "predict",
    "read_idx",
    "read_mnist_split",
    "register_task",
    "score",
    "test_metric",
    "train_base",
    "validation_metric",
]
