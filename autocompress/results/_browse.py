"""Reading a study for people: the study list, constraint limits, hypervolume over trials and a
trial's per-layer policy. From the storage alone (no model, no study file), for the dashboard
and the static report.

What the search stores that this reads: study user attrs ``baseline``, ``objectives``,
``study_config`` (the resolved StudyConfig); trial user attrs ``policy`` (the sampled policy
as a dict), ``layer_bytes`` (deploy-form bytes per layer), ``status``, ``fail_reason``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import optuna
import pandas as pd

from autocompress.policy import LayerConfig, Policy
from autocompress.results._front import front_table, study_hypervolume, trials_table
from autocompress.study.records import StudyRecord, TrialRecord

LAYER_COLUMNS = ("layer", "weight_bits", "act_bits", "sparsity", "pattern", "rank", "bytes")
# study_config.constraints key -> trials_table column it limits
_LIMITS = {"max_size_kb": "size_kb", "max_latency_ms": "latency_ms", "min_metric": "metric"}
_STATES = ("COMPLETE", "RUNNING", "PRUNED", "FAIL", "WAITING")

__all__ = ["LAYER_COLUMNS", "constraint_limits", "hypervolume_curve", "layer_table", "stored_policy",
           "study_summaries"]


def constraint_limits(study: optuna.Study) -> dict[str, float]:
    """``{"size_kb": 64.0, "metric": 0.5, ...}``: the study's hard limits, by trials-table column."""
    constraints = (StudyRecord.of(study).study_config or {}).get("constraints") or {}
    return {col: float(constraints[key]) for key, col in _LIMITS.items() if constraints.get(key) is not None}


def hypervolume_curve(study: optuna.Study, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """Hypervolume of the feasible trials among the first k trials, for every trial number k.

    Columns ``trial`` and ``hypervolume`` (normalised like ``study_hypervolume``); recomputed
    only when a feasible trial arrives, so a 200-trial study costs a few dozen evaluations.
    """
    df = trials_table(study) if df is None else df
    if df.empty:
        return pd.DataFrame({"trial": pd.Series(dtype=int), "hypervolume": pd.Series(dtype=float)})
    df = df.sort_values("trial")
    values: list[float] = []
    current = 0.0
    for i, feasible in enumerate(df["feasible"].tolist()):
        if feasible:
            current = study_hypervolume(study, df.iloc[: i + 1])
        values.append(current)
    return pd.DataFrame({"trial": df["trial"].to_numpy(), "hypervolume": values})


def stored_policy(trial: optuna.trial.FrozenTrial) -> Policy | None:
    """The policy the search sampled for this trial (None if the search stored none)."""
    raw = TrialRecord.of(trial).policy
    return Policy.from_dict(dict(raw), source=f"trial {trial.number} policy") if raw is not None else None


def _rank(cfg: LayerConfig) -> str:
    return "dense" if cfg.rank is None else f"{cfg.rank:g}"


def layer_table(trial: optuna.trial.FrozenTrial) -> pd.DataFrame:
    """One row per compressible layer: its resolved config and deploy-form bytes.

    Layer names come from ``layer_bytes`` (every compressible layer) and else from the
    policy's own exact keys; empty if the trial stores no policy.
    """
    policy = stored_policy(trial)
    if policy is None:
        return pd.DataFrame(columns=list(LAYER_COLUMNS))
    sizes: Mapping[str, int] = TrialRecord.of(trial).layer_bytes
    names = list(sizes) or [k for k, _ in policy.layers if not k.startswith("re:")]
    rows = []
    for name, cfg in policy.resolve(names, strict=False).items():
        rows.append({"layer": name, "weight_bits": cfg.weight_bits, "act_bits": cfg.act_bits,
                     "sparsity": round(cfg.sparsity, 4), "pattern": cfg.pattern, "rank": _rank(cfg),
                     "bytes": sizes.get(name)})
    return pd.DataFrame(rows, columns=list(LAYER_COLUMNS))


def _status(counts: Mapping[str, int], budget: Any) -> str:
    if counts.get("RUNNING", 0):
        return "running"
    finished = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) + counts.get("FAIL", 0)
    if not finished:
        return "empty"
    if isinstance(budget, int) and finished >= budget:
        return "done"
    return "stopped"


def _last_update(trials: list[optuna.trial.FrozenTrial]) -> str:
    stamps = [t.datetime_complete or t.datetime_start for t in trials]
    known = [s for s in stamps if isinstance(s, dt.datetime)]
    return max(known).strftime("%Y-%m-%d %H:%M:%S") if known else ""


def study_summaries(storage: optuna.storages.BaseStorage) -> pd.DataFrame:
    """One row per study in ``storage``: status, trial counts by state, front size, last update.

    ``status`` is ``running`` (a trial in flight), ``done`` (the budget's trial count is
    reached), ``stopped`` (finished trials, budget not reached) or ``empty``.
    """
    rows = []
    for frozen in storage.get_all_studies():
        study = optuna.load_study(study_name=frozen.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        counts = {s: 0 for s in _STATES}
        for t in trials:
            counts[t.state.name] = counts.get(t.state.name, 0) + 1
        budget = ((StudyRecord.of(study).study_config or {}).get("budget") or {}).get("trials")
        front = front_table(study) if counts["COMPLETE"] else pd.DataFrame()
        rows.append({"study": frozen.study_name, "status": _status(counts, budget), "trials": len(trials),
                     "budget": budget, **{s.lower(): counts[s] for s in _STATES if s != "WAITING"},
                     "front": len(front), "last_update": _last_update(trials)})
    return pd.DataFrame(rows)
