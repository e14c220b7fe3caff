"""One trial: sample a policy, score it by the cost models, reject or fine-tune it.

A candidate that breaks a hard size/latency constraint costs no fine-tune: it is completed
with the worst metric and its constraint violations recorded with ``trial.set_constraint``
(positive = violated; also kept in the ``constraints`` user attr). NSGA-II and TPE read
them: a feasible trial always dominates an infeasible one, and infeasible ones are ranked by
total violation, so the sampler learns where the boundary is instead of seeing a hole in the
data. Such trials never enter the front. ``min_metric`` is recorded the same way after the
fine-tune.
"""

from __future__ import annotations

import math

import optuna

from autocompress.cost import size_report
from autocompress.errors import TrialFailed
from autocompress.policy import Policy
from autocompress.search._context import SearchContext
from autocompress.search._early_stop import Completed
from autocompress.study import candidate_key
from autocompress.study.records import (
    CANDIDATE,
    CONSTRAINTS,
    CURVE,
    EARLY_STOPPED,
    EVALUATED,
    FAIL_REASON,
    FINETUNE_SECONDS,
    LATENCY_MS,
    LAYER_BYTES,
    POLICY,
    REJECTED,
    SIZE_BYTES,
    STATUS,
    TENSOR_BYTES,
)

WORST_METRIC = -1.0


def sample_candidate(ctx: SearchContext, trial: optuna.trial.BaseTrial) -> tuple[Policy, str]:
    """Sample the trial's policy and store it with its candidate key (see ``_dedup``)."""
    policy = ctx.bound.sample(trial)
    key = candidate_key(policy, ctx.cfg.finetune, ctx.cfg.seed)
    trial.set_user_attr(POLICY, policy.to_dict())
    trial.set_user_attr(CANDIDATE, key)
    return policy, key


def violations(ctx: SearchContext, size: int, latency: float | None) -> dict[str, float]:
    c = ctx.cfg.constraints
    out = {}
    if c.max_size_kb is not None:
        out["size_kb"] = size / 1024.0 - c.max_size_kb
    if c.max_latency_ms is not None and latency is not None:
        out["latency_ms"] = latency - c.max_latency_ms
    return out


def record_constraints(trial: optuna.trial.BaseTrial, bad: dict[str, float]) -> None:
    for key, value in bad.items():
        trial.set_constraint(key, value)
    trial.set_user_attr(CONSTRAINTS, [0.0, *bad.values()])


def objective_values(ctx: SearchContext, metric: float, size: int, latency: float | None) -> list[float]:
    values = []
    for o in ctx.cfg.objectives:
        if o.name == "metric":
            values.append(metric)
        elif o.name == "size":
            values.append(size / 1024.0)
        else:
            values.append(latency if latency is not None else math.nan)
    return values


def run_trial(ctx: SearchContext, trial: optuna.trial.BaseTrial, policy: Policy | None = None) -> list[float]:
    """The objective: [metric, size KB, latency ms] in the study's objective order.

    ``policy``: the trial's policy when the caller sampled it already (:func:`sample_candidate`,
    then the duplicate check); else it is sampled here."""
    if policy is None:
        policy, _ = sample_candidate(ctx, trial)
    sizes = size_report(ctx.base, policy, ctx.example)  # one meta copy: file, tensors, per layer
    size = sizes.file
    latency = ctx.latency_of(policy)
    trial.set_user_attr(SIZE_BYTES, size)
    trial.set_user_attr(TENSOR_BYTES, sizes.total)
    trial.set_user_attr(LAYER_BYTES, sizes.layers)
    if latency is not None:
        trial.set_user_attr(LATENCY_MS, latency)
    bad = violations(ctx, size, latency)
    if any(v > 0 for v in bad.values()):
        record_constraints(trial, bad)
        trial.set_user_attr(STATUS, REJECTED)
        return objective_values(ctx, WORST_METRIC, size, latency)

    def checkpoint(step: int, metric: float) -> bool:
        if not ctx.cfg.early_stop:
            return False
        return ctx.stopper.should_stop(size, latency or 0.0, step, metric)

    try:
        result = ctx.evaluator.evaluate(policy, checkpoint, seed=ctx.cfg.seed)
    except TrialFailed as e:
        trial.set_user_attr(FAIL_REASON, str(e))
        raise
    trial.set_user_attr(CURVE, [list(h) for h in result.history])
    trial.set_user_attr(FINETUNE_SECONDS, round(result.seconds, 3))
    trial.set_user_attr(STATUS, EARLY_STOPPED if result.stopped_early else EVALUATED)
    min_metric = ctx.cfg.constraints.min_metric
    if min_metric is not None:
        bad["metric"] = min_metric - result.metric
    record_constraints(trial, bad)
    if not result.stopped_early:
        ctx.stopper.add(Completed(size, latency or 0.0, result.metric, dict(result.history)))
    return objective_values(ctx, result.metric, size, latency)
