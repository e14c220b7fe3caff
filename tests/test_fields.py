"""One field-validation module for every config, and one table of samplers."""

from __future__ import annotations

import optuna
import pytest

from autocompress import fields as f
from autocompress.errors import ConfigError, PolicyError
from autocompress.search._samplers import SAMPLERS, build_sampler, check_settings
from autocompress.search._study_parts import parse_sampler


@pytest.mark.parametrize(("call", "message"), [
    (lambda: f.as_int(True, "s.yaml: budget.trials", 1), "s.yaml: budget.trials: must be an integer >= 1, got True"),
    (lambda: f.as_float(float("nan"), "s.yaml: lr", 0.0), "s.yaml: lr: must be a number >= 0.0, got nan"),
    (lambda: f.as_float(2, "x", 0.0, 1.0), r"x: must be a number in \[0.0, 1.0\], got 2"),
    (lambda: f.one_of("adamw", ("adam", "sgd"), "finetune.optimizer"), "must be one of"),
    (lambda: f.as_list([], "rules"), "must not be an empty list"),
    (lambda: f.check_keys({"stpes": 1}, ("steps",), "finetune"), "did you mean 'steps'"),
    (lambda: f.mapping([1], "budget"), "expected a mapping"),
    (lambda: f.as_float(1.0, "layers.fc", 0, 1, open_hi=True, field="sparsity"),
     r"layers.fc: sparsity must be a number in \[0, 1\), got 1.0"),
    (lambda: f.one_of(8.0, (4, 8), "layers.fc", field="weight_bits"),
     r"layers.fc: weight_bits must be one of \[4, 8\], got 8.0"),
    (lambda: f.one_of(True, (0, 1), "x"), r"x: must be one of \[0, 1\], got True"),
])
def test_errors_name_the_field_and_the_value(call, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()


def test_the_policy_validates_its_fields_here() -> None:
    """LayerConfig and DistillConfig go through this module, with their own field names."""
    from autocompress.policy import DistillConfig, LayerConfig

    with pytest.raises(PolicyError, match=r"^layer config: weight_bits must be one of \[2, 3, 4, 5, 6, 8, 16, 32\]"):
        LayerConfig(weight_bits=8.0)  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match=r"^distill.temperature must be a number in \(0, 100\], got 0"):
        DistillConfig(temperature=0)


def test_a_caller_chooses_its_error_class() -> None:
    with pytest.raises(PolicyError):
        f.as_bool("yes", "policy.yaml: layers.fc.codebook", error=PolicyError)
    assert f.as_list([], "specs.isa", allow_empty=True) == []
    assert f.join("s.yaml", "budget") == "s.yaml: budget"
    assert f.join("s.yaml: budget", "trials") == "s.yaml: budget.trials"


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_in_the_table_builds(name: str) -> None:
    sampler = build_sampler(name, {}, seed=0)
    assert isinstance(sampler, getattr(optuna.samplers, SAMPLERS[name].cls))
    assert parse_sampler({"name": name}, "s.yaml: sampler").name == name


def test_sampler_settings_are_checked_from_the_table() -> None:
    check_settings("tpe", {"multivariate": True, "n_startup_trials": 5}, "s.yaml: sampler")
    with pytest.raises(ConfigError, match="unknown field 'population_size'"):
        parse_sampler({"name": "tpe", "population_size": 4}, "s.yaml: sampler")
    with pytest.raises(ConfigError, match="population_size: must be an integer >= 2"):
        parse_sampler({"name": "nsga2", "population_size": 1}, "s.yaml: sampler")
    with pytest.raises(ConfigError, match="mutation_prob: must be a number in"):
        parse_sampler({"name": "nsga2", "mutation_prob": 1.5}, "s.yaml: sampler")
    with pytest.raises(ConfigError, match="must be one of"):
        parse_sampler({"name": "cmaes"}, "s.yaml: sampler")
