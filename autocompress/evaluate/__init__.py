"""The candidate evaluator: compress (train form) -> short distilled fine-tune -> score.

Example::

    from autocompress.evaluate import Evaluator, FinetuneConfig
    from autocompress.tasks import base_model, get_task

    task = get_task("digits-cnn")
    ev = Evaluator(task, base_model(task), FinetuneConfig(steps=200, lr=5e-4))
    result = ev.evaluate(policy)          # validation metric after the fine-tune
"""

from autocompress.evaluate._config import PRUNE_SCHEDULES, Callback, EvalResult, FinetuneConfig
from autocompress.evaluate._evaluator import Evaluator, evaluate_policy
from autocompress.tasks import test_metric, validation_metric

__all__ = [
    "PRUNE_SCHEDULES",
    "Callback",
    "EvalResult",
    "Evaluator",
    "FinetuneConfig",
    "evaluate_policy",
    "test_metric",
    "validation_metric",
]
