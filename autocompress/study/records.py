"""What a study stores, in one place: every key autocompress writes on a trial or a study, and
the typed records every reader gets back.

Optuna keeps free-form attributes; left to themselves, writers and readers drift apart (a
key spelt twice, a field read as the wrong type). So the keys are defined here only, the
search writes through them, and readers (the tables, the dashboard, ``export``, ``apply``)
read :class:`TrialRecord` / :class:`StudyRecord`, which parse and type every field and
tolerate records written by older versions (a missing field is ``None`` or empty).

Versions: :data:`RECORD_VERSION` is stored on the study (``record_version``). 1: the keys
below (issue 20: ``size_bytes`` is the artifact *file*, ``tensor_bytes`` its tensors; before
it, studies carry no version and ``size_bytes`` meant the tensors).

Example::

    rec = TrialRecord.of(study.trials[3])
    rec.status, rec.size_bytes, rec.duplicate_of
    StudyRecord.of(study).baseline.size_kb
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

RECORD_VERSION = 1

# ---- trial user attrs (written by the search) ---------------------------------------------
POLICY = "policy"  # the sampled policy as a plain dict
CANDIDATE = "candidate"  # the candidate's key (policy + fine-tune + seed), see study._claims
SIZE_BYTES = "size_bytes"  # the artifact file, header included: the size objective
TENSOR_BYTES = "tensor_bytes"  # the artifact's tensors alone
LAYER_BYTES = "layer_bytes"  # deploy bytes per compressible layer (the dashboard's heatmap)
LATENCY_MS = "latency_ms"  # predicted latency on the study's device
CONSTRAINTS = "constraints"  # Optuna constraint values: [0.0, *violations]; <= 0 everywhere = feasible
STATUS = "status"  # see Status
CURVE = "curve"  # [[step, metric], ...] of the fine-tune
FAIL_REASON = "fail_reason"  # why a trial failed or was given back unrun
FINETUNE_SECONDS = "finetune_seconds"
DUPLICATE_OF = "duplicate_of"  # the trial whose candidate (and result) this one repeated
UNCOUNTED = "uncounted"  # why this trial does not count against the budget (lost, duplicate)
WORKER = "worker"  # host:pid of the process that ran the trial
NODE = "node"  # the Ray node that ran it
NODE_STARTED = "node_started"  # epoch seconds, when the node started it
NODE_SECONDS = "node_seconds"  # how long the node worked on it

Status = Literal["evaluated", "rejected", "early_stopped"]
EVALUATED: Status = "evaluated"
REJECTED: Status = "rejected"
EARLY_STOPPED: Status = "early_stopped"

# ---- trial system attrs (Optuna's retry bookkeeping, our heartbeat) ------------------------
FIXED_PARAMS = "fixed_params"  # Optuna: the parameters an enqueued trial must take
RETRY_HISTORY = "retry_history"  # Optuna: numbers of the trials this one retries
FAILED_TRIAL = "failed_trial"  # Optuna: the first trial of the retry chain
HEARTBEAT = "ac:heartbeat"  # journal storages: our heartbeat, epoch seconds

# ---- study user attrs ----------------------------------------------------------------------
VERSION = "record_version"
OBJECTIVES = "objectives"  # [{"name", "direction", "device"}]
BASELINE = "baseline"  # {"metric", "size_kb", "latency_ms"} of the fp32 model
PROVENANCE = "provenance"  # task, settings, seed, base_sha256, latency model, versions
STUDY_CONFIG = "study_config"  # StudyConfig.to_dict(): the dashboard and export need no study file
MEASURED_PREFIX = "measured:"  # "measured:<trial>": what `apply` measured on that trial's artifact


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


@dataclass(frozen=True)
class TrialRecord:
    """One trial as autocompress wrote it; every field typed, absent ones ``None`` / empty."""

    number: int
    state: TrialState
    values: tuple[float, ...] | None
    params: Mapping[str, Any]
    status: str | None = None
    policy: Mapping[str, Any] | None = None
    candidate: str | None = None
    size_bytes: int | None = None
    tensor_bytes: int | None = None
    layer_bytes: Mapping[str, int] = field(default_factory=dict)
    latency_ms: float | None = None
    constraints: tuple[float, ...] = (0.0,)
    curve: tuple[tuple[int, float], ...] = ()
    fail_reason: str = ""
    finetune_seconds: float | None = None
    duplicate_of: int | None = None
    uncounted: str | None = None
    worker: str | None = None
    node: str | None = None
    node_started: float | None = None
    node_seconds: float | None = None
    failed_trial: int | None = None  # the trial this one retries (Optuna's bookkeeping)

    @classmethod
    def of(cls, t: FrozenTrial) -> TrialRecord:
        ua, sa = t.user_attrs, t.system_attrs
        raw_curve = ua.get(CURVE)
        curve = tuple((int(p[0]), float(p[1])) for p in raw_curve if isinstance(p, (list, tuple)) and len(p) == 2
                      and _float(p[0]) is not None and _float(p[1]) is not None) if isinstance(raw_curve, list) else ()
        cons = ua.get(CONSTRAINTS)
        layer_bytes = ua.get(LAYER_BYTES)
        policy = ua.get(POLICY)
        return cls(
            number=t.number, state=t.state, values=None if t.values is None else tuple(t.values), params=t.params,
            status=_str(ua.get(STATUS)), policy=policy if isinstance(policy, dict) else None,
            candidate=_str(ua.get(CANDIDATE)), size_bytes=_int(ua.get(SIZE_BYTES)),
            tensor_bytes=_int(ua.get(TENSOR_BYTES)),
            layer_bytes={str(k): int(v) for k, v in layer_bytes.items()} if isinstance(layer_bytes, dict) else {},
            latency_ms=_float(ua.get(LATENCY_MS)),
            constraints=tuple(float(c) for c in cons) if isinstance(cons, list) and cons else (0.0,),
            curve=curve, fail_reason=_str(ua.get(FAIL_REASON)) or "",
            finetune_seconds=_float(ua.get(FINETUNE_SECONDS)), duplicate_of=_int(ua.get(DUPLICATE_OF)),
            uncounted=_str(ua.get(UNCOUNTED)), worker=_str(ua.get(WORKER)), node=_str(ua.get(NODE)),
            node_started=_float(ua.get(NODE_STARTED)), node_seconds=_float(ua.get(NODE_SECONDS)),
            failed_trial=_int(sa.get(FAILED_TRIAL)),
        )

    @property
    def feasible(self) -> bool:
        """COMPLETE, within every constraint, not rejected, not a repeat of another trial: may be
        on the front (a duplicate repeats its twin's figures, never a second front point)."""
        return (self.state == TrialState.COMPLETE and max(self.constraints) <= 0 and self.status != REJECTED
                and self.duplicate_of is None)


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str
    device: str | None = None


@dataclass(frozen=True)
class Baseline:
    """The fp32 model's figures, in the objectives' units."""

    metric: float | None = None
    size_kb: float | None = None
    latency_ms: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        return {"metric": self.metric, "size_kb": self.size_kb, "latency_ms": self.latency_ms}


@dataclass(frozen=True)
class StudyRecord:
    """What the search stored on the study itself."""

    version: int | None = None
    objectives: tuple[Objective, ...] = ()
    baseline: Baseline | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    study_config: Mapping[str, Any] | None = None
    measured: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, study: optuna.Study) -> StudyRecord:
        return cls.from_attrs(study.user_attrs)

    @classmethod
    def from_attrs(cls, ua: Mapping[str, Any]) -> StudyRecord:
        objs = tuple(Objective(str(o.get("name")), str(o.get("direction")), _str(o.get("device")))
                     for o in ua.get(OBJECTIVES) or () if isinstance(o, dict))
        base = ua.get(BASELINE)
        baseline = (Baseline(_float(base.get("metric")), _float(base.get("size_kb")), _float(base.get("latency_ms")))
                    if isinstance(base, dict) else None)
        prov = ua.get(PROVENANCE)
        cfg = ua.get(STUDY_CONFIG)
        measured = {int(k[len(MEASURED_PREFIX):]): v for k, v in ua.items()
                    if k.startswith(MEASURED_PREFIX) and k[len(MEASURED_PREFIX):].isdigit() and isinstance(v, dict)}
        return cls(version=_int(ua.get(VERSION)), objectives=objs, baseline=baseline,
                   provenance=prov if isinstance(prov, dict) else {},
                   study_config=cfg if isinstance(cfg, dict) else None, measured=measured)


# ---- writers -------------------------------------------------------------------------------
def write_study_record(study: optuna.Study, *, objectives: list[Objective], baseline: Baseline,
                       provenance: Mapping[str, Any], study_config: Mapping[str, Any]) -> None:
    """What reading the study later needs (objectives, fp32 baseline, provenance, config)."""
    study.set_user_attr(VERSION, RECORD_VERSION)
    study.set_user_attr(OBJECTIVES, [{"name": o.name, "direction": o.direction, "device": o.device}
                                     for o in objectives])
    study.set_user_attr(BASELINE, baseline.as_dict())
    study.set_user_attr(PROVENANCE, dict(provenance))
    study.set_user_attr(STUDY_CONFIG, dict(study_config))


def write_measured(study: optuna.Study, trial: int, figures: Mapping[str, Any]) -> None:
    """What ``apply`` measured on the artifact of trial ``trial``'s policy."""
    study.set_user_attr(f"{MEASURED_PREFIX}{trial}", dict(figures))


__all__ = [
    "BASELINE",
    "CANDIDATE",
    "CONSTRAINTS",
    "CURVE",
    "DUPLICATE_OF",
    "EARLY_STOPPED",
    "EVALUATED",
    "FAILED_TRIAL",
    "FAIL_REASON",
    "FINETUNE_SECONDS",
    "FIXED_PARAMS",
    "HEARTBEAT",
    "LATENCY_MS",
    "LAYER_BYTES",
    "MEASURED_PREFIX",
    "NODE",
    "NODE_SECONDS",
    "NODE_STARTED",
    "OBJECTIVES",
    "POLICY",
    "PROVENANCE",
    "RECORD_VERSION",
    "REJECTED",
    "RETRY_HISTORY",
    "SIZE_BYTES",
    "STATUS",
    "STUDY_CONFIG",
    "TENSOR_BYTES",
    "UNCOUNTED",
    "VERSION",
    "WORKER",
    "Baseline",
    "Objective",
    "Status",
    "StudyRecord",
    "TrialRecord",
    "write_measured",
    "write_study_record",
]
