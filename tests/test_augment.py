"""Fine-tune augmentation: RandomShift itself, and finetune.augment in the evaluator."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from autocompress.errors import ConfigError
from autocompress.evaluate import Evaluator, FinetuneConfig
from autocompress.policy import Policy
from autocompress.search._study_parts import parse_finetune
from autocompress.tasks import RandomShift, Task, TrainConfig, get_task, load_digits_data, train_base

POLICY = Policy.from_dict({"default": {"weight_bits": 4, "act_bits": 32, "pattern": "2:4"},
                           "distill": {"alpha": 0.5, "temperature": 2.0}})
AUGMENTED = FinetuneConfig(steps=12, eval_every=6, batch_size=16, augment=True)


def _window(padded: torch.Tensor, dy: int, dx: int, h: int, w: int) -> torch.Tensor:
    return padded[..., dy:dy + h, dx:dx + w]


def test_shift_moves_each_image_within_the_limit_and_fills_with_background() -> None:
    x = torch.randn(64, 3, 7, 9)
    out = RandomShift(pixels=2, fill=-5.0)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = nn.functional.pad(x, (2, 2, 2, 2), value=-5.0)
    seen = set()
    for i in range(len(x)):
        # every sample is exactly one window of its padded self, the same for all channels
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if torch.equal(out[i], _window(padded[i], dy, dx, 7, 9))]
        assert len(hits) == 1, f"sample {i} is no single shifted copy"
        seen.add(hits[0])
    assert len(seen) > 10  # shifts vary over samples (25 possible)
    assert (out == -5.0).any()  # what came in is the fill value


def test_shift_is_deterministic_per_generator_and_identity_at_zero() -> None:
    x = torch.randn(8, 1, 28, 28)
    a = RandomShift(2)(x, torch.Generator().manual_seed(3))
    b = RandomShift(2)(x, torch.Generator().manual_seed(3))
    c = RandomShift(2)(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(RandomShift(0)(x, torch.Generator()), x)


def test_shift_along_sequences() -> None:
    x = torch.arange(10.0).view(1, 1, 10).repeat(16, 2, 1)
    out = RandomShift(pixels=3, fill=0.0, dims=1)(x, torch.Generator().manual_seed(0))
    padded = nn.functional.pad(x, (3, 3))
    for i in range(16):
        assert any(torch.equal(out[i], padded[i, :, s:s + 10]) for s in range(7))


def test_shift_refuses_bad_settings_and_inputs() -> None:
    with pytest.raises(ConfigError, match=r"RandomShift\.pixels"):
        RandomShift(pixels=-1)
    with pytest.raises(ConfigError, match=r"RandomShift\.dims"):
        RandomShift(dims=3)
    with pytest.raises(ConfigError, match=r"at least 3 axes.*\(4, 28\)"):
        RandomShift()(torch.zeros(4, 28), torch.Generator())


def test_augment_setting_is_validated_by_config_and_study_parser() -> None:
    with pytest.raises(ConfigError, match=r"finetune\.augment"):
        FinetuneConfig(augment="yes")  # type: ignore[arg-type]
    assert parse_finetune({"augment": True}, "study.finetune").augment is True
    assert parse_finetune({}, "study.finetune").augment is False
    with pytest.raises(ConfigError, match=r"study\.finetune: augment: must be true or false, got 'often'"):
        parse_finetune({"augment": "often"}, "study.finetune")


def test_task_augment_must_be_callable() -> None:
    with pytest.raises(ConfigError, match=r"task 'bad': augment must be a callable"):
        Task("bad", "tiny-mlp", load_digits_data, augment=2)  # type: ignore[arg-type]


def test_mnist_tasks_offer_a_two_pixel_shift() -> None:
    for name in ("mnist-lenet300", "mnist-lenet5"):
        shift = get_task(name).augment
        assert isinstance(shift, RandomShift) and shift.pixels == 2
        assert shift.fill == pytest.approx(-0.1307 / 0.3081)  # a normalised black pixel


@pytest.fixture(scope="module")
def shifting() -> tuple[Task, nn.Module, list[int]]:
    """Digits through the tiny MLP, with one-pixel shifts; trains in about a second."""
    calls: list[int] = []

    def shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        calls.append(len(x))
        return RandomShift(1, fill=0.0)(x, g)

    task = Task("tiny-shift", "tiny-mlp", load_digits_data, train=TrainConfig(epochs=3), augment=shift)
    return task, train_base(task, seed=0, progress=False), calls


def test_augmented_finetune_runs_teacher_on_augmented_batches(
    shifting: tuple[Task, nn.Module, list[int]],
) -> None:
    task, base, calls = shifting
    ev = Evaluator(task, base, AUGMENTED)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    assert ev._teacher is not None
    ev._teacher.register_forward_hook(lambda m, args, out: seen.append((args[0].clone(), out.clone())))
    calls.clear()
    first = ev.evaluate(POLICY, seed=0)
    assert calls == [16] * 12  # every step's batch went through the augmentation
    assert len(seen) == 12
    x, out = seen[0]
    assert torch.allclose(out, base.eval()(x))  # the teacher is the base model, on the shifted batch
    again = ev.evaluate(POLICY, seed=0)
    assert again.history == first.history  # deterministic per seed
    plain = Evaluator(task, base, dataclasses.replace(AUGMENTED, augment=False)).evaluate(POLICY, seed=0)
    assert plain.history != first.history


def test_augment_on_a_task_without_one_is_refused() -> None:
    task = Task("tiny-plain", "tiny-mlp", load_digits_data, train=TrainConfig(epochs=1))
    base = train_base(task, seed=0, progress=False)
    with pytest.raises(ConfigError, match=r"finetune\.augment is true but task 'tiny-plain' defines no augmentation"):
        Evaluator(task, base, AUGMENTED)


def test_apply_reads_augment_from_the_exported_policy() -> None:
    """`apply` rebuilds the study's fine-tune from the policy's meta, augmentation included."""
    from autocompress.apply import _finetune_config

    meta = {"finetune": {**dataclasses.asdict(AUGMENTED)}}
    exported = Policy(layers=POLICY.layers, default=POLICY.default, distill=POLICY.distill, meta=meta)
    assert _finetune_config(exported, steps=40) == dataclasses.replace(AUGMENTED, steps=40)
    older = Policy(layers=POLICY.layers, default=POLICY.default, distill=POLICY.distill,
                   meta={"finetune": {"steps": 10}})  # written before finetune.augment existed
    assert _finetune_config(older, steps=None).augment is False


def test_an_augmentation_that_changes_the_shape_is_refused_by_name() -> None:
    task = Task("tiny-crop", "tiny-mlp", load_digits_data, train=TrainConfig(epochs=1),
                augment=lambda x, g: x[..., 1:, :])
    ev = Evaluator(task, train_base(task, seed=0, progress=False), AUGMENTED)
    with pytest.raises(ConfigError, match=r"task 'tiny-crop': its augment returned \(16, 1, 7, 8\) for a batch "
                                          r"of shape \(16, 1, 8, 8\)"):
        ev.evaluate(POLICY)
