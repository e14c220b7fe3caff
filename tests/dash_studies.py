"""Studies for the dashboard and report tests.

- ``synthetic_study``: trials written straight into a storage with the user attrs a search
  writes (fast, any size: the report's 200-trial size check);
- ``run_tiny_study``: a real search through the controller on a tiny task (digits through
  ``tiny-mlp``, a few fine-tune steps): what the export-equality and browser tests use.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import optuna

from autocompress.search import StudyConfig
from autocompress.tasks import Task, TrainConfig, load_digits_data

OBJECTIVES = [{"name": "metric", "direction": "maximize", "device": None},
              {"name": "size", "direction": "minimize", "device": None},
              {"name": "latency", "direction": "minimize", "device": "xeon-8480"}]


def tiny_digits() -> Task:
    """Digits through the tiny MLP: a real task whose base model trains in about a second."""
    return Task("tiny-digits", "tiny-mlp", load_digits_data, train=TrainConfig(epochs=3))


TINY_SPACE = {
    "format": "autocompress.search_space", "version": 1,
    "rules": [{"layers": ["@first", "@last"], "weight_bits": [8, 16], "act_bits": [32]},
              {"layers": "default", "weight_bits": [2, 4, 8], "act_bits": [8, 32], "sparsity": [0.0, 0.5],
               "rank_ratios": [None, 0.5]}],
    "distill": {"temperature": [1.0, 4.0], "alpha": [0.0, 0.9]},
}


def tiny_study_config(root: Path, trials: int = 6, name: str = "tiny") -> StudyConfig:
    raw = {
        "name": name, "task": f"{__name__}:tiny_digits", "space": TINY_SPACE,
        "objectives": {"metric": "maximize", "size": "minimize", "latency": {"device": "xeon-8480"}},
        "constraints": {"max_size_kb": 7.0, "min_metric": 0.2},
        "budget": {"trials": trials}, "sampler": {"name": "random"}, "seed": 0,
        "finetune": {"steps": 4, "eval_every": 4, "batch_size": 32},
        "storage": f"sqlite:///{root / 'study.db'}", "output_dir": str(root / "out"),
        "warm_start": {"uniform_bits": [8]}, "early_stop": False,
    }
    return StudyConfig.from_dict(raw, source=f"{name}.yaml", base_dir=root)


def run_tiny_study(root: Path, trials: int = 6) -> StudyConfig:
    """Run the tiny study with the real controller (base model cached under ``root``)."""
    from autocompress.search._controller import run_search

    old = os.environ.get("AUTOCOMPRESS_CACHE")
    os.environ["AUTOCOMPRESS_CACHE"] = str(root / "cache")
    try:
        cfg = tiny_study_config(root, trials)
        run_search(cfg, progress=False)
    finally:
        if old is None:
            os.environ.pop("AUTOCOMPRESS_CACHE", None)
        else:
            os.environ["AUTOCOMPRESS_CACHE"] = old
    return cfg


def synthetic_study(storage: str | optuna.storages.BaseStorage, name: str = "synthetic", n_trials: int = 200,
                    n_layers: int = 12, seed: int = 0) -> optuna.Study:
    """A finished-looking 3-objective study: evaluated, rejected and failed trials with policies."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize", "minimize"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["metric", "size_kb", "latency_ms[xeon-8480]"])
    study.set_user_attr("objectives", OBJECTIVES)
    study.set_user_attr("baseline", {"metric": 0.97, "size_kb": 160.0, "latency_ms": 0.1})
    study.set_user_attr("study_config", {"constraints": {"max_size_kb": 64.0, "min_metric": 0.5},
                                         "budget": {"trials": n_trials}})
    layers = [f"blocks.{i}.conv" for i in range(n_layers)]
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    for i in range(n_trials):
        bits = rng.choice([2, 4, 8, 16], size=n_layers)
        sparsity = rng.choice([0.0, 0.25, 0.5], size=n_layers)
        layer_bytes = {n: int(4000 * b / 32 * (1 - s)) + 64 for n, b, s in zip(layers, bits, sparsity, strict=True)}
        size_kb = sum(layer_bytes.values()) / 1024.0
        metric = float(np.clip(0.97 - 0.3 / bits.mean() - 0.05 * sparsity.mean() + rng.normal(0, 0.01), 0, 1))
        latency = float(0.02 + 0.004 * bits.mean() + rng.normal(0, 0.002))
        policy = {"format": "autocompress.policy", "version": 1,
                  "layers": {n: {"weight_bits": int(b), "sparsity": float(s)} for n, b, s in zip(
                      layers, bits, sparsity, strict=True)},
                  "distill": {"temperature": 2.0, "alpha": 0.5}}
        attrs = {"size_bytes": int(size_kb * 1024), "latency_ms": latency, "layer_bytes": layer_bytes,
                 "policy": policy, "status": "evaluated", "constraints": [0.0, size_kb - 64.0, 0.5 - metric]}
        state = optuna.trial.TrialState.COMPLETE
        values: list[float] | None = [metric, size_kb, latency]
        if i % 25 == 24:
            state, values = optuna.trial.TrialState.FAIL, None
            attrs = {"fail_reason": "diverged (NaN loss)"}
        elif size_kb > 64.0:
            attrs["status"] = "rejected"
        study.add_trial(optuna.trial.create_trial(state=state, values=values, params={"x": float(rng.random())},
                                                  distributions={"x": dist}, user_attrs=attrs))
    return study
