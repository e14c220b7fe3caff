"""The one table of samplers a study may name: Optuna's class and the settings it takes.

A study file's ``sampler: {name: ..., <setting>: ...}`` is validated against this table
(``_study_parts.parse_sampler``) and built from it (``_controller.make_sampler``), so the two
cannot disagree. Adding a sampler is one row here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import optuna

from autocompress import fields as f

Setting = Literal["bool", "prob", "int", "population"]  # how a setting's value is checked


@dataclass(frozen=True)
class SamplerKind:
    cls: str  # the class in optuna.samplers
    settings: Mapping[str, Setting]


SAMPLERS: dict[str, SamplerKind] = {
    "nsga2": SamplerKind("NSGAIISampler", {"population_size": "population", "mutation_prob": "prob",
                                           "crossover_prob": "prob", "swapping_prob": "prob"}),
    "tpe": SamplerKind("TPESampler", {"n_startup_trials": "int", "multivariate": "bool", "group": "bool",
                                      "constant_liar": "bool", "n_ei_candidates": "int"}),
    "gp": SamplerKind("GPSampler", {"n_startup_trials": "int", "deterministic_objective": "bool"}),
    "random": SamplerKind("RandomSampler", {}),
}


def check_settings(name: str, raw: Mapping[str, Any], where: str) -> None:
    """Each setting of sampler ``name`` is one it takes, of the right kind."""
    kind = SAMPLERS[name]
    f.check_keys(dict(raw), tuple(kind.settings), where)
    for key, value in raw.items():
        at = f.join(where, key)
        how = kind.settings[key]
        if how == "bool":
            f.as_bool(value, at)
        elif how == "prob":
            f.as_float(value, at, 0.0, 1.0)
        else:
            f.as_int(value, at, 2 if how == "population" else 1)


def build_sampler(name: str, settings: Mapping[str, Any], seed: int | None) -> optuna.samplers.BaseSampler:
    """Optuna's sampler ``name`` with ``settings`` and ``seed``."""
    cls = getattr(optuna.samplers, SAMPLERS[name].cls)
    with warnings.catch_warnings():  # TPE's multivariate/group and GPSampler are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(seed=seed, **dict(settings))  # type: ignore[no-any-return]
