"""Knowledge distillation loss for the fine-tune of a compressed student.

``loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * hard``

The ``T^2`` factor keeps the soft term's gradient scale independent of the temperature
(Hinton et al., 2015). The KL is computed from two log-softmaxes (``log_target=True``), which
stays finite where a softmax underflows to 0. The teacher is detached: no gradient reaches it.

Example::

    loss = distill_loss(student(x), teacher(x).detach(), y, DistillConfig(temperature=4, alpha=0.5))
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from autocompress.errors import ConfigError
from autocompress.policy import DistillConfig

HardLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def soft_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
              temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(t / T) || softmax(s / T))``, averaged over the batch."""
    t = float(temperature)
    log_s = F.log_softmax(student_logits / t, dim=-1)
    log_t = F.log_softmax(teacher_logits.detach() / t, dim=-1)
    return F.kl_div(log_s, log_t, reduction="batchmean", log_target=True) * (t * t)


def distill_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    cfg: DistillConfig,
    hard_loss: HardLoss = F.cross_entropy,
) -> torch.Tensor:
    """The distillation loss of ``(batch, classes)`` logits; see the module docstring.

    ``alpha == 0`` returns ``hard_loss(student, targets)`` exactly; ``alpha == 1`` skips it.
    """
    if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
        raise ConfigError(
            "distill_loss needs (batch, classes) logits of the same shape for student and "
            f"teacher, got student {tuple(student_logits.shape)} and teacher "
            f"{tuple(teacher_logits.shape)}; the teacher must be the same task's base model"
        )
    alpha = float(cfg.alpha)
    if alpha == 0.0:
        return hard_loss(student_logits, targets)
    soft = soft_loss(student_logits, teacher_logits, cfg.temperature)
    if alpha == 1.0:
        return soft
    return alpha * soft + (1.0 - alpha) * hard_loss(student_logits, targets)
