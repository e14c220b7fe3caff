"""The Ray Tune trial function: replay one sampled candidate on a cluster node and evaluate it.

The driver sampled the candidate from the study (``study.ask()`` + the space's
``sample(trial)``) and sends its parameters; here the same ``sample`` replays them through
:class:`optuna.trial.FixedTrial`, so the policy cannot differ from the one the sampler chose.
Everything the trial records (user attrs, constraints, values) is sent back to the driver,
which writes it into the study's storage: workers never touch the storage.

The search context (task, base model, bound space, cost models, evaluator) is built once per
worker process from the driver's study config and base weights, then reused.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import torch

from autocompress.errors import TrialFailed
from autocompress.search._context import SearchContext, build_context
from autocompress.search._early_stop import Completed, FrontStopper
from autocompress.study.records import NODE_SECONDS, NODE_STARTED, WORKER

_CONTEXTS: dict[str, SearchContext] = {}


def front_snapshot(stopper: FrontStopper) -> list[dict[str, Any]]:
    """The early-stopping memory as plain data (JSON keys are strings; see ``_stopper``)."""
    return [asdict(c) for c in stopper.completed]


def _stopper(snapshot: list[dict[str, Any]], like: FrontStopper) -> FrontStopper:
    done = [Completed(c["size"], c["latency"], c["metric"], {int(k): float(v) for k, v in c["curve"].items()})
            for c in snapshot]
    return FrontStopper(margin=like.margin, min_curves=like.min_curves, completed=done)


def context_for(study: Mapping[str, Any], base: Mapping[str, torch.Tensor]) -> SearchContext:
    """The search context of ``study`` (a resolved study config dict), cached per process."""
    from autocompress.search.study_config import StudyConfig

    key = hashlib.sha256(json.dumps(study, sort_keys=True, default=str).encode()).hexdigest()
    if key not in _CONTEXTS:
        cfg = StudyConfig.from_dict(dict(study), source=f"study {study.get('name')!r} (from the Ray driver)")
        _CONTEXTS[key] = build_context(cfg, progress=False, base_state=base)
    return _CONTEXTS[key]


def evaluate_candidate(config: dict[str, Any], study: Mapping[str, Any], base: Mapping[str, torch.Tensor],
                       threads: int = 1) -> dict[str, Any]:
    """Evaluate the candidate in ``config`` (number, params, front); returns the trial's record.

    ``config`` travels as JSON under ``candidate`` so Tune does not rewrite parameter names.
    The record's ``node_started`` (epoch seconds) and ``node_seconds`` say when and how long
    the node worked on it: beside the storage's start (the driver's ``ask``) and completion
    (its ``tell``) they split a trial's wall time into dispatch, work and reporting.
    """
    started, clock = time.time(), time.perf_counter()
    config = json.loads(config["candidate"]) if "candidate" in config else config
    from optuna.trial import FixedTrial

    from autocompress.search._loop import worker_id
    from autocompress.search._objective import run_trial

    torch.set_num_threads(threads)
    ctx = context_for(study, base)
    ctx.stopper = _stopper(config["front"], ctx.stopper)
    trial = FixedTrial(dict(config["params"]), int(config["number"]))
    record: dict[str, Any] = {"values": None}
    try:
        record["values"] = run_trial(ctx, trial)
    except TrialFailed:
        pass  # run_trial stored the reason in the fail_reason user attr
    trial.set_user_attr(WORKER, worker_id())
    trial.set_user_attr(NODE_STARTED, round(started, 3))
    trial.set_user_attr(NODE_SECONDS, round(time.perf_counter() - clock, 3))
    record["user_attrs"] = dict(trial.user_attrs)
    record["constraints"] = dict(trial.constraints)
    return record


def ray_trial(config: dict[str, Any], study: Mapping[str, Any], base: Mapping[str, torch.Tensor],
              threads: int = 1) -> None:
    """The Tune function trainable: one candidate, one report (a JSON payload)."""
    import ray
    from ray import tune

    record = evaluate_candidate(config, study, base, threads)
    record["node"] = ray.util.get_node_ip_address()
    tune.report({"payload": json.dumps(record)})
