"""The study's trials as a table, and its Pareto front: from storage alone, no model needed.

The baseline (fp32 metric, size, latency) is stored in the study's user attrs when the study
is created, so ``autocompress pareto`` and the dashboard read everything from the storage.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import optuna
import pandas as pd

from autocompress.results._pareto import normalised_hypervolume, pareto_mask
from autocompress.study.records import StudyRecord, TrialRecord

HV_REFERENCE = 2.0  # x the fp32 model's size / latency


def objectives_of(study: optuna.Study) -> list[dict[str, Any]]:
    objs = StudyRecord.of(study).objectives
    if objs:
        return [{"name": o.name, "direction": o.direction, "device": o.device} for o in objs]
    names = study.metric_names or [f"objective_{i}" for i in range(len(study.directions))]
    pairs = zip(names, study.directions, strict=False)
    return [{"name": n, "direction": d.name.lower(), "device": None} for n, d in pairs]


def column_names(study: optuna.Study) -> list[str]:
    return [{"metric": "metric", "size": "size_kb", "latency": "latency_ms"}.get(o["name"], o["name"])
            for o in objectives_of(study)]


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial with its objectives, cost-model figures, status and parameters."""
    cols = column_names(study)
    rows = []
    for t in study.get_trials(deepcopy=False):
        r = TrialRecord.of(t)
        row: dict[str, Any] = {"trial": r.number, "state": r.state.name, "status": r.status or ""}
        vals = r.values if r.values is not None else [math.nan] * len(cols)
        row.update(dict(zip(cols, vals, strict=False)))
        row["size_bytes"] = r.size_bytes
        if "latency_ms" not in row:
            row["latency_ms"] = r.latency_ms
        row["tensor_bytes"] = r.tensor_bytes
        row["duplicate_of"] = r.duplicate_of
        row["feasible"] = r.feasible  # a duplicate is shown in the table, never a second front point
        row["fail_reason"] = r.fail_reason
        row["params"] = json.dumps(r.params, sort_keys=True)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["on_front"] = False
    feas = df[df["feasible"]]
    if not feas.empty:
        mask = pareto_mask(feas[cols].to_numpy(dtype=float), [o["direction"] for o in objectives_of(study)])
        df.loc[feas.index[mask], "on_front"] = True
    return df


def front_table(study: optuna.Study) -> pd.DataFrame:
    df = trials_table(study)
    if df.empty:
        return df
    cols = column_names(study)
    front = df[df["on_front"]].sort_values(cols[0], ascending=objectives_of(study)[0]["direction"] == "minimize")
    return front.reset_index(drop=True)


def study_hypervolume(study: optuna.Study, df: pd.DataFrame | None = None) -> float:
    """Hypervolume of the feasible trials, each objective normalised by the fp32 baseline.

    Reference point: metric 0, and twice the fp32 model's size and latency, so a candidate
    that is smaller but (at batch 1, on tiny layers) slower than fp32 still counts.
    """
    df = trials_table(study) if df is None else df
    record = StudyRecord.of(study).baseline
    if df.empty or record is None:
        return 0.0
    base = record.as_dict()
    cols = column_names(study)
    feas = df[df["feasible"]]
    if feas.empty:
        return 0.0
    baseline = np.array([base.get(c, 1.0) or 1.0 for c in cols], dtype=float)
    dirs = [o["direction"] for o in objectives_of(study)]
    ref = np.array([0.0 if d == "maximize" else HV_REFERENCE for d in dirs])
    return float(normalised_hypervolume(feas[cols].to_numpy(dtype=float), baseline, dirs, reference=ref))


def front_summary(ctx: Any, study: optuna.Study) -> str:
    df = trials_table(study)
    if df.empty:
        return "no trials yet"
    front = df[df["on_front"]]
    parts = [f"front={len(front)}", f"HV={study_hypervolume(study, df):.3f}"]
    if not front.empty:
        parts.append(f"best metric={front['metric'].max():.4f}")
        parts.append(f"min size={front['size_kb'].min():.1f}KB")
        if "latency_ms" in front and front["latency_ms"].notna().any():
            parts.append(f"min lat={front['latency_ms'].min():.3f}ms")
    return " ".join(parts)
