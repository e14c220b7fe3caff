"""The policy file: precedence, round trip, and errors that name field, value and fix."""

from __future__ import annotations

import pytest

from autocompress.errors import PolicyError
from autocompress.policy import DistillConfig, LayerConfig, Policy

NAMES = ["features.0", "features.3", "classifier.0", "classifier.2"]


def test_precedence_exact_then_first_pattern_then_default() -> None:
    p = Policy.from_dict(
        {
            "default": {"weight_bits": 8},
            "layers": {
                "re:features\\..*": {"weight_bits": 4},
                "re:.*\\.0": {"weight_bits": 2},  # later pattern: loses to the first
                "classifier.2": {"weight_bits": 32},
            },
        }
    )
    r = p.resolve(NAMES)
    assert r["features.0"].weight_bits == 4
    assert r["features.3"].weight_bits == 4
    assert r["classifier.0"].weight_bits == 2
    assert r["classifier.2"].weight_bits == 32


def test_entries_inherit_unset_fields_from_default_only() -> None:
    p = Policy.from_dict(
        {"default": {"weight_bits": 8, "act_bits": 8}, "layers": {"features.0": {"sparsity": 0.5}}}
    )
    c = p.resolve(NAMES)["features.0"]
    assert (c.weight_bits, c.act_bits, c.sparsity) == (8, 8, 0.5)


def test_no_default_means_identity() -> None:
    r = Policy().resolve(NAMES)
    assert all(c.is_identity for c in r.values())


def test_yaml_round_trip_exact(tmp_path) -> None:
    p = Policy.from_dict(
        {
            "default": {"weight_bits": 6, "granularity": "per_tensor", "symmetric": False},
            "layers": {
                "re:conv.*": {"pattern": "2:4"},
                "fc": {"rank": 0.25, "sparsity": 0.3, "pattern": "channel"},
                "fc2": {"rank": 7, "act_bits": 16},
            },
            "distill": {"temperature": 2.5, "alpha": 0.9},
            "meta": {"note": "kept"},
        }
    )
    f = tmp_path / "p.yaml"
    p.save(f)
    q = Policy.load(f)
    assert q == p
    assert q.to_dict() == p.to_dict()
    assert q.resolve(["conv1"], strict=False)["conv1"].sparsity == 0.5
    assert q.meta == {"note": "kept"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"layers": {"fc": {"weight_bits": 7}}}, "weight_bits must be one of"),
        ({"layers": {"fc": {"act_bits": 4}}}, "act_bits must be one of"),
        ({"layers": {"fc": {"sparsity": 1.0}}}, "sparsity must be a number in [0, 1)"),
        ({"layers": {"fc": {"sparsity": -0.1}}}, "sparsity must be a number in [0, 1)"),
        ({"layers": {"fc": {"pattern": "blocks"}}}, "pattern must be"),
        ({"layers": {"fc": {"pattern": "4:2"}}}, "0 < N < M"),
        ({"layers": {"fc": {"pattern": "2:4", "sparsity": 0.3}}}, "sparsity of an 2:4 pattern"),
        ({"layers": {"fc": {"rank": 0}}}, "absolute rank must be >= 1"),
        ({"layers": {"fc": {"rank": 1.5}}}, "rank ratio must be in (0, 1]"),
        ({"layers": {"fc": {"bits": 8}}}, "unknown field(s) ['bits']"),
        ({"layers": {"re:(": {}}}, "invalid regular expression"),
        ({"version": 99}, "version must be 1"),
        ({"extra": 1}, "unknown top-level key"),
        ({"distill": {"temperature": 0}}, "distill.temperature"),
        ({"distill": {"alpha": 2}}, "distill.alpha"),
    ],
)
def test_errors_name_field_value_and_rule(raw: dict, fragment: str) -> None:
    with pytest.raises(PolicyError) as e:
        Policy.from_dict(raw, source="p.yaml")
    assert fragment in str(e.value)
    assert "p.yaml" in str(e.value)


def test_unknown_layer_suggests_nearest() -> None:
    p = Policy.from_dict({"layers": {"features.1": {"weight_bits": 8}}})
    with pytest.raises(PolicyError, match=r"did you mean .*'features.0'"):
        p.resolve(NAMES)


def test_pattern_matching_nothing_is_an_error() -> None:
    p = Policy.from_dict({"layers": {"re:encoder.*": {"weight_bits": 8}}})
    with pytest.raises(PolicyError, match="matches no compressible layer"):
        p.resolve(NAMES)


def test_malformed_yaml_names_the_file() -> None:
    with pytest.raises(PolicyError, match=r"bad.yaml:\d+:\d+: not valid YAML"):
        Policy.from_yaml("layers: {fc: [", source="bad.yaml")


def test_yaml_never_executes_code() -> None:
    text = "layers: !!python/object/apply:os.system ['echo pwned']"
    with pytest.raises(PolicyError):
        Policy.from_yaml(text)


def test_configs_are_frozen_and_validate_on_construction() -> None:
    c = LayerConfig(weight_bits=4)
    with pytest.raises(AttributeError):
        c.weight_bits = 8  # type: ignore[misc]
    with pytest.raises(PolicyError):
        LayerConfig(weight_bits=1)
    with pytest.raises(PolicyError):
        DistillConfig(temperature=-1.0)
    assert LayerConfig(pattern="2:4", sparsity=0.5).nm == (2, 4)
