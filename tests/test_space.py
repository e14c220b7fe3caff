from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import FixedTrial

from autocompress.errors import ConfigError
from autocompress.graph import channel_groups, layers
from autocompress.models import MODELS, create_model
from autocompress.policy import LayerConfig, Policy
from autocompress.search import SearchSpace, load_space

ROOT = Path(__file__).resolve().parents[1]
SPACES = sorted((ROOT / "search_spaces").glob("*.yaml"))
# spaces written for one architecture (their rules name its layers), tested on that model
FOR_MODEL = {"deep_compression_lenet300": "lenet-300-100", "deep_compression_lenet300_codebook": "lenet-300-100",
             "deep_compression_lenet5": "lenet-5"}
GENERIC = [p for p in SPACES if p.stem not in FOR_MODEL]
TINY = [n for n in MODELS if MODELS.get(n).tiny]
optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class G:  # a hand-made channel group
    producers: tuple[str, ...]
    members: tuple[str, ...] = ()
    blocked_by: str | None = None
    channels: int = 8


def trials(n: int, seed: int = 0) -> list[optuna.trial.Trial]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        t = study.ask()
        out.append(t)
    return out


def model_and_input(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    return create_model(name), MODELS.get(name).example_input(2)


def test_shipped_spaces_exist_and_round_trip() -> None:
    assert {p.stem for p in SPACES} >= {"mixed_precision", "pruning", "lowrank", "joint"}
    for p in SPACES:
        space = load_space(p)
        assert SearchSpace.from_dict(space.to_dict(), "again") == space


_CASES = [(p, m) for p in GENERIC for m in TINY] + [(p, FOR_MODEL[p.stem]) for p in SPACES if p.stem in FOR_MODEL]


@pytest.mark.parametrize(("space_path", "model"), _CASES, ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_sampling_is_valid_replayable_and_tied(space_path: Path, model: str) -> None:
    m, x = model_and_input(model)
    infos, groups = layers(m, x), channel_groups(m, x)
    bound = load_space(space_path).bind(infos, groups)
    names = [i.name for i in infos]
    for t in trials(8):
        policy = bound.sample(t)
        assert set(t.params) <= set(bound.param_names())
        assert bound.sample(FixedTrial(t.params)) == policy  # export replays the same policy
        cfgs = policy.resolve(names)
        assert Policy.from_dict(policy.to_dict()) == policy
        for g in groups:
            ratios = {
                cfgs[p].sparsity if cfgs[p].pattern == "channel" else 0.0 for p in g.producers
            }
            assert len(ratios) == 1, f"producers of one group disagree: {ratios}"
            if g.blocked_by is not None:
                assert all(cfgs[p].pattern != "channel" for p in g.producers)
        for info in infos:
            c = cfgs[info.name]
            if c.nm is not None:
                in_flat = math.prod(info.weight_shape[1:])
                assert in_flat % c.nm[1] == 0 and c.rank is None
            if info.groups != 1:
                assert c.rank is None


def test_sampled_policies_compress_in_both_forms() -> None:
    from autocompress.compress import compress

    space = load_space(ROOT / "search_spaces" / "joint.yaml")
    for model in TINY:
        m, x = model_and_input(model)
        bound = space.bind(layers(m, x), channel_groups(m, x))
        for t in trials(2, seed=1):
            policy = bound.sample(t)
            for form in ("train", "deploy"):
                mm = copy.deepcopy(m)
                out = compress(mm, policy, form=form, example_input=x)
                assert (out or mm)(x).shape[0] == x.shape[0]


SPACE = """
exclude: [skip]
tie: [[a, b]]
rules:
  - layers: ["@first"]
    weight_bits: [8]
  - layers: "re:[a-z]"
    weight_bits: [4, 8]
    act_bits: [8, 32]
    sparsity: [0.0, 0.5]
    patterns: [unstructured, channel, "2:4"]
    rank_ratios: [null, 0.5]
  - layers: default
    weight_bits: [2]
distill: {temperature: [2, 6], alpha: 0.3}
"""
NAMES = ["stem", "a", "b", "c", "skip", "head1"]


def test_rule_resolution_ties_excludes_and_param_names() -> None:
    space = SearchSpace.from_yaml(SPACE, "t.yaml")
    assert space.rule_for("stem", NAMES) is space.rules[0]  # @first beats the pattern
    assert space.rule_for("c", NAMES) is space.rules[1]
    assert space.rule_for("head1", NAMES) is space.rules[2]  # "re:[a-z]" must match fully
    bound = space.bind(NAMES)
    assert bound.param_names() == [
        "distill.temperature",
        "a.weight_bits",
        "a.act_bits",
        "a.rank",
        "a.sparsity",
        "c.weight_bits",
        "c.act_bits",
        "c.rank",
        "c.sparsity",
    ]
    for t in trials(10):
        p = bound.sample(t)
        cfg = dict(p.layers)
        assert cfg["a"] == cfg["b"]
        assert cfg["skip"] == LayerConfig()
        assert cfg["stem"] == LayerConfig(weight_bits=8)
        assert cfg["head1"] == LayerConfig(weight_bits=2)
        assert p.distill.alpha == 0.3 and 2 <= p.distill.temperature <= 6


def test_channel_groups_are_tied_and_blocked_groups_never_pruned() -> None:
    space = SearchSpace.from_yaml(SPACE.replace("tie: [[a, b]]", ""), "t.yaml")
    groups = [G(("b", "a"), members=("a", "b", "c")), G(("c",), blocked_by="view in node x")]
    bound = space.bind(NAMES, groups)
    assert "a.channels" in bound.param_names() and "c.channels" not in bound.param_names()
    seen = set()
    for t in trials(30):
        cfg = dict(bound.sample(t).layers)
        assert (cfg["a"].pattern == "channel") == (cfg["b"].pattern == "channel")
        if cfg["a"].pattern == "channel":
            assert cfg["a"].sparsity == cfg["b"].sparsity == t.params["a.channels"] > 0
            assert "a.sparsity" not in t.params and "b.sparsity" not in t.params
            assert cfg["c"].nm is None  # its input channels shrink: 2:4 -> unstructured 0.5
        assert cfg["c"].pattern != "channel"
        seen.add(cfg["a"].pattern)
    assert "channel" in seen and "unstructured" in seen


def test_group_with_a_producer_outside_the_space_is_not_offered() -> None:
    space = SearchSpace.from_yaml(SPACE, "t.yaml")
    bound = space.bind(NAMES, [G(("a", "skip")), G(("stem", "c"))])
    assert bound.channels == ()


def test_fixed_choices_suggest_nothing() -> None:
    space = SearchSpace.from_yaml("rules: [{layers: default, weight_bits: [8]}]", "s")
    t = trials(1)[0]
    p = space.sample(t, ["x", "y"])
    assert t.params == {} and dict(p.layers)["y"] == LayerConfig(weight_bits=8)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("rules:\n  - layers: default\n   weight_bits: [4]\n", r":3:\d+: not valid YAML"),
        ("rules: [{layers: default, weight_bits: [7]}]", r"rules\[0\]\.weight_bits\[0\].*7"),
        ("rules: [{layers: default, act_bits: [4]}]", r"rules\[0\]\.act_bits\[0\]"),
        ("rules: [{layers: default, sparsity: [1.0]}]", r"rules\[0\]\.sparsity\[0\]"),
        ("rules: [{layers: default, sparsity: {low: 0, high: 0.5}}]", r"step is missing"),
        ("rules: [{layers: default, patterns: [2:4]}]", r"patterns\[0\].*quote"),
        ("rules: [{layers: default, rank_ratios: [0]}]", r"rank_ratios\[0\]"),
        (
            "rules: [{layers: default, wieght_bits: [4]}]",
            r"unknown field 'wieght_bits'.*weight_bits",
        ),
        ("rules: [{layers: 're:(('}]", r"rules\[0\]\.layers\[0\].*regular expression"),
        ("rules: [{layers: '@middle'}]", r"@middle"),
        ("rules: [{weight_bits: [4]}]", r"rules\[0\].*missing `layers`"),
        ("rules: [{layers: default}, {layers: default}]", r"only one rule"),
        ("rules: []", r"rules.*empty"),
        ("rules: [{layers: default}]\ndistill: {alpha: [0.9, 0.1]}", r"distill\.alpha"),
        ("rules: [{layers: default}]\nversion: 2", r"version"),
    ],
)
def test_malformed_spaces_name_the_field(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as e:
        SearchSpace.from_yaml(text, "bad.yaml")
    assert str(e.value).startswith("bad.yaml")


def test_bind_rejects_unknown_exact_layer_and_double_ties() -> None:
    space = SearchSpace.from_yaml("rules: [{layers: [fc9], weight_bits: [4, 8]}]", "s.yaml")
    with pytest.raises(ConfigError, match="'fc9'"):
        space.bind(["fc1", "fc2"])
    space = SearchSpace.from_yaml("tie: [[fc1, fc2], ['re:fc.*']]\nrules: [{layers: default}]", "s")
    with pytest.raises(ConfigError, match=r"tie\[1\].*'fc1'"):
        space.bind(["fc1", "fc2"])


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_space(tmp_path / "nope.yaml")


def test_distillation_ranges_dropped_when_the_task_distils_by_itself() -> None:
    from types import SimpleNamespace

    from autocompress.search._context import bind_space

    m, x = model_and_input("tiny-mlp")
    cfg = SimpleNamespace(space=load_space(ROOT / "search_spaces" / "joint.yaml"))
    labels = bind_space(cfg, m, x, SimpleNamespace(targets="labels"))  # type: ignore[arg-type]
    own = bind_space(cfg, m, x, SimpleNamespace(targets="base_outputs"))  # type: ignore[arg-type]
    assert "distill.temperature" in labels.param_names()
    assert not any(p.startswith("distill.") for p in own.param_names())


class _ConvFc(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(torch.relu(self.conv2(torch.relu(self.conv1(x)))), 1))


@pytest.mark.parametrize(("params", "layer", "pattern"), [
    ({"conv1.channels": 0.25, "conv2.sparsity": "2:4"}, "conv2", "2:4"),  # 12 x 9 = 108 = 27 x 4
    ({"conv1.channels": 0.25, "conv2.sparsity": "1:8"}, "conv2", "unstructured"),  # 108 % 8 != 0
    ({"conv2.channels": 0.25, "fc.sparsity": "2:16"}, "fc", "2:16"),  # flatten: 12 x 16 = 192 = 12 x 16
    ({"conv2.channels": 0.5, "fc.sparsity": "1:8"}, "fc", "1:8"),  # 8 x 16 = 128
])
def test_nm_kept_when_pruned_input_still_divides(params: dict, layer: str, pattern: str) -> None:
    from autocompress import compress, size_bytes
    from autocompress.artifact import state_bytes

    model, x = _ConvFc().eval(), torch.randn(2, 1, 4, 4)
    space = SearchSpace.from_dict({"rules": [{
        "layers": "default", "weight_bits": [8], "sparsity": [0.0],
        "patterns": ["channel", "2:4", "1:8", "2:16"], "channel_ratios": [0.0, 0.25, 0.5]}]})
    bound = space.bind(layers(model, x), channel_groups(model, x))
    full = {"conv1.channels": 0.0, "conv2.channels": 0.0, "conv1.sparsity": 0.0, "conv2.sparsity": 0.0,
            "fc.sparsity": 0.0, **params}
    policy = bound.sample(FixedTrial({k: v for k, v in full.items() if k in bound.param_names()}))
    cfg = policy.resolve([i.name for i in layers(model, x)])[layer]
    assert cfg.pattern == pattern and cfg.sparsity > 0
    for form in ("train", "deploy"):
        compress(model, policy, form=form, example_input=x)
    assert size_bytes(model, policy, x) == state_bytes(compress(model, policy, form="deploy", example_input=x))
