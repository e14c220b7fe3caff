"""The candidate evaluator on a tiny task: determinism, early stop, NaN handling, memory."""

from __future__ import annotations

import gc
import resource
from collections import Counter

import pytest
import torch
from torch import nn

from autocompress import evaluate as ac_evaluate  # its test_metric is no test to collect
from autocompress.errors import ConfigError, TrialFailed
from autocompress.evaluate import Evaluator, FinetuneConfig, evaluate_policy, validation_metric
from autocompress.policy import Policy
from autocompress.tasks import Task, TrainConfig, load_digits_data, train_base

INT8_SPARSE = Policy.from_dict(
    {"default": {"weight_bits": 8, "act_bits": 8, "sparsity": 0.5}, "distill": {"alpha": 0.7}}
)
QUICK = FinetuneConfig(steps=20, eval_every=10, batch_size=32)


@pytest.fixture(scope="module")
def task() -> Task:
    """Digits through the tiny MLP: a real task that trains in about a second."""
    return Task("tiny-digits", "tiny-mlp", load_digits_data, train=TrainConfig(epochs=3))


@pytest.fixture(scope="module")
def base(task: Task) -> nn.Module:
    return train_base(task, seed=0, progress=False)


def test_finetune_config_validation() -> None:
    assert FinetuneConfig(steps=200, eval_every=50).checkpoints() == [50, 100, 150, 200]
    assert FinetuneConfig(steps=120, eval_every=50).checkpoints() == [50, 100, 120]
    assert FinetuneConfig(steps=30, eval_every=0).checkpoints() == [30]
    with pytest.raises(ConfigError, match=r"finetune\.lr"):
        FinetuneConfig(lr=0)
    with pytest.raises(ConfigError, match=r"finetune\.optimizer"):
        FinetuneConfig(optimizer="rmsprop")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"finetune\.steps"):
        FinetuneConfig(steps=-1)
    with pytest.raises(ConfigError, match=r"finetune\.prune_schedule.*gradual"):
        FinetuneConfig(prune_schedule="cubic")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"finetune\.prune_ramp"):
        FinetuneConfig(prune_ramp=0)
    with pytest.raises(ConfigError, match=r"finetune\.prune_start_density"):
        FinetuneConfig(prune_start_density=0.5)
    assert FinetuneConfig(steps=200).ramp_steps() == 0
    assert FinetuneConfig(steps=200, prune_schedule="gradual", prune_ramp=0.3).ramp_steps() == 60


def test_refit_trains_on_train_and_validation(task: Task, base: nn.Module) -> None:
    """``train_on="train+val"`` (apply --refit) fine-tunes on every labelled sample, the teacher
    included; the default keeps validation held out. A bad value names the choices."""
    data = task.data()
    held_out = Evaluator(task, base, QUICK)
    refit = Evaluator(task, base, QUICK, train_on="train+val")
    assert len(held_out._train) == len(data.train)
    assert len(refit._train) == len(data.train) + len(data.val)
    assert torch.equal(refit._train.x[len(data.train):], data.val.x)
    assert refit.teacher_logits.shape[0] == len(refit._train)
    cfg = FinetuneConfig(steps=30, eval_every=30, batch_size=256)
    a = Evaluator(task, base, cfg).finetune(INT8_SPARSE)[0]
    b = Evaluator(task, base, cfg, train_on="train+val").finetune(INT8_SPARSE)[0]
    assert not torch.equal(a.fc1.weight, b.fc1.weight)  # type: ignore[union-attr,arg-type]
    with pytest.raises(ConfigError, match=r"train_on='val'.*train\+val"):
        Evaluator(task, base, QUICK, train_on="val")  # type: ignore[arg-type]

    from autocompress.evaluate._evaluator import _joined
    from autocompress.tasks import Split

    with pytest.raises(ConfigError, match=r"cannot fine-tune on train\+val: validation y"):
        _joined(data.train, Split(data.val.x, data.val.y.float()[:, None]), "tiny-digits")


def test_gradual_pruning_ends_at_the_policys_exact_sparsity_and_size(task: Task, base: nn.Module) -> None:
    """A gradual fine-tune starts denser, but the model it returns (and its artifact) has
    exactly the N:M and unstructured masks the policy asks for, so the size model holds."""
    from autocompress.artifact import state_bytes
    from autocompress.compress import to_deploy
    from autocompress.cost import size_bytes
    from autocompress.techniques.sparsify import get_mask

    policy = Policy.from_dict({"layers": {"fc1": {"weight_bits": 4, "pattern": "2:8"},
                                          "fc2": {"weight_bits": 8, "sparsity": 0.75}}})
    cfg = FinetuneConfig(steps=40, eval_every=10, batch_size=32, prune_schedule="gradual", prune_every=5,
                         prune_start_density=3.0)
    ev = Evaluator(task, base, cfg)
    model = ev.build(policy)
    kept = {"fc1": int(get_mask(model.fc1).sum()), "fc2": int(get_mask(model.fc2).sum())}  # type: ignore[union-attr]
    model, result = ev.finetune(policy)
    assert result.steps == 40 and [s for s, _ in result.history] == [10, 20, 30, 40]
    fc1, fc2 = get_mask(model.fc1), get_mask(model.fc2)
    assert fc1 is not None and fc2 is not None
    assert torch.equal(fc1.view(-1, 8).sum(dim=1), torch.full((fc1.numel() // 8,), 2))
    assert int(fc1.sum()) == kept["fc1"] and int(fc2.sum()) == kept["fc2"]
    x = task.data().train.x[:4]
    assert state_bytes(to_deploy(model, policy)) == size_bytes(ev.fresh_base(), policy, x)
    # The schedule matters: the gradual fine-tune's weights differ from the one-shot one's.
    oneshot, _ = Evaluator(task, base, FinetuneConfig(steps=40, eval_every=10, batch_size=32)).finetune(policy)
    assert not torch.equal(model.fc3.weight, oneshot.fc3.weight)


@pytest.mark.parametrize("policy", [Policy(), INT8_SPARSE], ids=["identity", "int8-sparse"])
def test_deterministic_for_a_seed(task: Task, base: nn.Module, policy: Policy) -> None:
    ev = Evaluator(task, base, QUICK)
    first, second = ev.evaluate(policy, seed=3), ev.evaluate(policy, seed=3)
    assert first.history == second.history and first.metric == second.metric
    assert [s for s, _ in first.history] == [10, 20] and first.steps == 20
    assert 0.0 <= first.metric <= 1.0 and first.metric_name == "accuracy"
    # A fresh evaluator (new teacher cache) gives the same number too.
    assert Evaluator(task, base, QUICK).evaluate(policy, seed=3).metric == first.metric


def test_base_model_untouched_and_finetune_helps(task: Task, base: nn.Module) -> None:
    before = {k: v.clone() for k, v in base.state_dict().items()}
    ev = Evaluator(task, base, FinetuneConfig(steps=60, eval_every=30))
    assert ev.teacher_logits.shape == (len(task.data().train), 10)
    result = ev.evaluate(Policy())
    for k, v in base.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert result.metric >= ev.base_metric - 0.05
    assert ev.base_metric == validation_metric(task, base)
    assert 0.0 <= ac_evaluate.test_metric(task, base) <= 1.0


def test_callback_stops_early(task: Task, base: nn.Module) -> None:
    seen: list[tuple[int, float]] = []

    def stop_at_first(step: int, metric: float) -> bool:
        seen.append((step, metric))
        return True

    result = Evaluator(task, base, QUICK).evaluate(INT8_SPARSE, callback=stop_at_first)
    assert result.stopped_early and result.steps == 10 and len(seen) == 1
    assert result.history == tuple(seen) and result.metric == seen[0][1]


def test_diverging_finetune_raises_trial_failed(task: Task, base: nn.Module) -> None:
    huge = FinetuneConfig(steps=50, optimizer="sgd", lr=1e12, schedule="constant")
    with pytest.raises(TrialFailed, match=r"diverged at step \d+: loss=(nan|inf)"):
        Evaluator(task, base, huge).evaluate(Policy())


def test_evaluate_policy_one_off(task: Task, base: nn.Module) -> None:
    result = evaluate_policy(task, Policy(), config=FinetuneConfig(steps=0), base=base)
    assert result.steps == 0 and result.history[0][0] == 0


def _live_objects() -> Counter[str]:
    gc.collect()
    kinds: Counter[str] = Counter()
    for obj in gc.get_objects():
        kind = type(obj)  # not isinstance: that touches lazy modules' attributes
        if issubclass(kind, nn.Module):
            kinds["module"] += 1
        elif issubclass(kind, torch.Tensor):
            kinds["tensor"] += 1
        elif issubclass(kind, torch.optim.Optimizer):
            kinds["optimizer"] += 1
    return kinds


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def test_memory_flat_over_many_candidates(task: Task, base: nn.Module) -> None:
    ev = Evaluator(task, base, FinetuneConfig(steps=3, eval_every=3, batch_size=16))
    policies = [Policy(), INT8_SPARSE, Policy.from_dict({"default": {"weight_bits": 4}})]
    for i in range(10):  # warm up allocator caches and lazily imported modules
        ev.evaluate(policies[i % 3], seed=i)
    objects, rss = _live_objects(), _rss_mib()
    for i in range(40):
        ev.evaluate(policies[i % 3], seed=i)
    assert _live_objects() == objects  # no model, tensor or optimiser survives a candidate
    assert _rss_mib() - rss < 40.0
