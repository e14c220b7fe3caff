"""Tasks: an architecture, data with fixed train / validation / test splits, a loss, a metric,
and a base model trained once and cached.

Example::

    from autocompress.tasks import base_model, get_task, test_metric
    task = get_task("digits-cnn")
    model = base_model(task, seed=0)          # trained once, then read from the cache
    print(test_metric(task, model))
"""

from autocompress.tasks import _builtin  # noqa: F401  (registers the built-in tasks)
from autocompress.tasks._augment import Augment, RandomShift
from autocompress.tasks._base import CACHE_ENV, base_key, base_model, base_record, train_base
from autocompress.tasks._builtin import DEFAULT_TASK, TASK_EXTRAS, missing_extra
from autocompress.tasks._datasets import load_digits_data, load_mnist1d_data, load_mnist_data
from autocompress.tasks._embedding import (
    FIDELITY,
    cosine_distance,
    fidelity,
    fidelity_parts,
    mean_cosine,
    retrieval_agreement,
)
from autocompress.tasks._idx import MNIST_DIR_ENV, read_idx, read_mnist_split
from autocompress.tasks._minilm import load_minilm_texts
from autocompress.tasks._registry import (
    TASKS,
    TaskBuilder,
    check_builtin_task,
    get_task,
    is_user_task,
    register_task,
)
from autocompress.tasks._task import (
    ACCURACY,
    Metric,
    Split,
    Task,
    TaskData,
    TrainConfig,
    accuracy,
)
from autocompress.tasks._texts import generate_sentences
from autocompress.tasks._train import (
    batches,
    make_optimizer,
    make_schedule,
    predict,
    score,
    score_parts,
    test_metric,
    validation_metric,
)

__all__ = [
    "ACCURACY",
    "CACHE_ENV",
    "DEFAULT_TASK",
    "FIDELITY",
    "MNIST_DIR_ENV",
    "TASKS",
    "TASK_EXTRAS",
    "Augment",
    "Metric",
    "RandomShift",
    "Split",
    "Task",
    "TaskBuilder",
    "TaskData",
    "TrainConfig",
    "accuracy",
    "base_key",
    "base_model",
    "base_record",
    "batches",
    "check_builtin_task",
    "cosine_distance",
    "fidelity",
    "fidelity_parts",
    "generate_sentences",
    "get_task",
    "is_user_task",
    "load_digits_data",
    "load_minilm_texts",
    "load_mnist1d_data",
    "load_mnist_data",
    "make_optimizer",
    "make_schedule",
    "mean_cosine",
    "missing_extra",
    "predict",
    "read_idx",
    "read_mnist_split",
    "register_task",
    "retrieval_agreement",
    "score",
    "score_parts",
    "test_metric",
    "train_base",
    "validation_metric",
]
