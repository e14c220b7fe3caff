from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autocompress.errors import ConfigError
from autocompress.policy import DistillConfig
from autocompress.techniques.distill import distill_loss, soft_loss


def _logits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    s = torch.randn(8, 5, generator=g, requires_grad=True)
    t = torch.randn(8, 5, generator=g)
    y = torch.randint(0, 5, (8,), generator=g)
    return s, t, y


def test_alpha_zero_is_cross_entropy() -> None:
    s, t, y = _logits()
    loss = distill_loss(s, t, y, DistillConfig(temperature=3.0, alpha=0.0))
    assert torch.equal(loss, F.cross_entropy(s, y))


def test_matches_definition_and_t2_scaling() -> None:
    s, t, y = _logits()
    for temp in (1.0, 2.0, 7.0):
        p_t = torch.softmax(t / temp, -1)
        kl = (p_t * (p_t.log() - torch.log_softmax(s / temp, -1))).sum(-1).mean()
        want = 0.3 * temp**2 * kl + 0.7 * F.cross_entropy(s, y)
        got = distill_loss(s, t, y, DistillConfig(temperature=temp, alpha=0.3))
        torch.testing.assert_close(got, want)
    ratio = soft_loss(s, t, 4.0) / F.kl_div(
        torch.log_softmax(s / 4, -1), torch.softmax(t / 4, -1), reduction="batchmean"
    )
    torch.testing.assert_close(ratio, torch.tensor(16.0))


def test_identical_logits_give_zero_soft_loss() -> None:
    s, _, y = _logits()
    assert distill_loss(s, s, y, DistillConfig(alpha=1.0)).abs().item() < 1e-6


def test_gradient_finite_and_teacher_detached() -> None:
    s, t, y = _logits()
    big_s = (s * 1e4).detach().requires_grad_()
    t = (t * 1e4).requires_grad_()
    loss = distill_loss(big_s, t, y, DistillConfig(temperature=1.0, alpha=0.5))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(big_s.grad).all()
    assert t.grad is None


def test_custom_hard_loss_and_shape_error() -> None:
    s, t, y = _logits()
    loss = distill_loss(s, t, y, DistillConfig(alpha=0.0), hard_loss=F.multi_margin_loss)
    assert torch.equal(loss, F.multi_margin_loss(s, y))
    with pytest.raises(ConfigError, match=r"student \(8, 5\) and teacher \(8, 4\)"):
        distill_loss(s, t[:, :4], y, DistillConfig())
