"""Check latency models against the real thing: deploy-form artifacts, measured end to end.

For N random policies (weight bits {4, 8, 32} x act bits {8, 32} x channel ratio
{0, .25, .5} x rank), build the deploy form, time it end to end (median of blocks, fixed
threads) and compare each latency model's prediction: MAPE, Spearman correlation and the
share within +-10%. ``measured-interp`` predicts every policy with its own leaf
configurations removed from the table, so it scores interpolation alone.

Example::

    report = run_check(net, x, n_policies=20)
    print(report.table())
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from autocompress.cost._plan import plan
from autocompress.cost.latency import (
    AnalyticModel,
    DeviceProfile,
    LeafTable,
    MeasuredModel,
    device_profile,
    fingerprint,
    leaf_key,
    local_profile_path,
)
from autocompress.cost.profiling._local import profile_device
from autocompress.cost.profiling._policies import prunable_groups, random_policy
from autocompress.cost.profiling.profiler import (
    CALIBRATION_POLICIES,
    measure_leaf,
    measure_model,
    profile_model,
    profile_plan,
)
from autocompress.errors import PolicyError
from autocompress.policy import Policy


@dataclass(frozen=True)
class Score:
    """How well one latency model predicted the measured end-to-end times."""

    latency_model: str
    device: str
    n: int
    mape: float  # mean absolute percentage error, in %
    spearman: float
    within_10: float  # share of policies predicted within +-10%


@dataclass
class CheckReport:
    """Per-policy measured and predicted milliseconds, and the scores."""

    name: str
    threads: int
    measured_ms: list[float] = field(default_factory=list)
    predicted_ms: dict[str, list[float]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    drift: float = 0.0  # dense model timed at the end vs at the start, -1..inf
    scores: list[Score] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"{self.name} ({len(self.measured_ms)} policies, {self.threads} thread(s), "
                 f"measured {min(self.measured_ms):.3f}..{max(self.measured_ms):.3f} ms, "
                 f"drift of the dense model over the run {100 * self.drift:+.1f}%)",
                 f"{'latency model':<16}{'device':<8}{'MAPE %':>8}{'Spearman':>10}{'within10':>10}"]
        for s in self.scores:
            lines.append(f"{s.latency_model:<16}{s.device:<8}{s.mape:>8.1f}{s.spearman:>10.3f}"
                         f"{100 * s.within_10:>9.0f}%")
        return "\n".join(lines)


def mape(pred: Sequence[float], true: Sequence[float]) -> float:
    p, t = np.asarray(pred, float), np.asarray(true, float)
    return float(100.0 * np.mean(np.abs(p - t) / t))


def within(pred: Sequence[float], true: Sequence[float], tol: float = 0.10) -> float:
    p, t = np.asarray(pred, float), np.asarray(true, float)
    return float(np.mean(np.abs(p - t) / t <= tol))


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):  # average ranks of ties
        idx = x == v
        ranks[idx] = ranks[idx].mean()
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def local_device(threads: int) -> DeviceProfile:
    """The ``local`` profile, measured first if this machine has none yet."""
    if not local_profile_path(threads).is_file():
        profile_device(threads)
    return device_profile("local", threads=threads)


def _interleaved(models: Sequence[nn.Module], plans: Sequence[Sequence[Any]], example_input: Any,
                 table: LeafTable, threads: int, rounds: int) -> list[float]:
    """End-to-end milliseconds of ``models``: in every round, every leaf of every plan is timed
    again and then every model once; each figure is its best round. Slow spells of a shared
    machine (its speed can move by tens of percent within a minute) then hit every policy and
    every leaf alike instead of whichever happened to be timed during them."""
    leaves = {leaf_key(q): q for p in plans for q in p}
    best_leaf: dict[str, float] = {}
    best = [math.inf] * len(models)
    for _ in range(max(rounds, 1)):
        for key, q in leaves.items():
            best_leaf[key] = min(best_leaf.get(key, math.inf), measure_leaf(q, threads=threads))
        for i, m in enumerate(models):
            best[i] = min(best[i], measure_model(m, example_input, threads=threads, rounds=1))
    for key, q in leaves.items():
        table.add_leaf(q, best_leaf[key], "deploy")
    return best


def run_check(model: nn.Module, example_input: Any, *, n_policies: int = 20, seed: int = 0,
              threads: int = 1, name: str = "model", rounds: int = 3,
              fresh: bool = True, interleave: bool = False,
              policies: Sequence[Policy] | None = None,
              calibration: int = CALIBRATION_POLICIES) -> CheckReport:
    """Measure ``n_policies`` random deploy forms of ``model`` and score every latency model.

    End-to-end times are the minimum over ``rounds`` of the median of timed blocks, in
    thread CPU time at one thread (see :mod:`autocompress.cost.profiling._timing`).
    With ``fresh``, each policy's leaves are timed again right before its end-to-end run,
    so that load from other processes drifting over minutes affects both sides alike; the
    dense model is timed again at the end and the drift is reported. With ``interleave``,
    all policies are built first and timed round-robin with their leaves instead (see
    :func:`_interleaved`; ``fresh`` then does not apply): better on a loaded machine, not on
    a quiet one (docs/benchmarks-history.md, issue 4). ``policies`` (e.g. a
    study's Pareto set) replaces the random ones; the dense model is always policy 0.
    """
    table = LeafTable.load(fingerprint(threads))
    profile_model(model, example_input, table, threads=threads, calibration=calibration)
    device = local_device(threads)
    from autocompress.compress import compress

    rng = random.Random(seed)
    groups = prunable_groups(model, example_input)
    report = CheckReport(name, threads)
    plans = []
    built = []
    chosen = None if policies is None else [Policy(), *policies]
    for i in range(n_policies if chosen is None else len(chosen)):
        if chosen is not None:
            policy = chosen[i]
        else:
            policy = Policy() if i == 0 else random_policy(model, groups, rng)
        try:
            leaves = plan(model, policy, example_input)
            deployed = compress(model, policy, form="deploy", example_input=example_input)
        except PolicyError as e:
            report.skipped.append(f"policy {i}: {e}")
            continue
        plans.append(leaves)
        if interleave:
            built.append(deployed)
            continue
        profile_plan(leaves, table, threads=threads, save=False, force=fresh)
        ms = measure_model(deployed, example_input, threads=threads, rounds=rounds)
        report.measured_ms.append(ms)
    if interleave:
        report.measured_ms = _interleaved(built, plans, example_input, table, threads, rounds)
    table.save()
    if report.measured_ms:
        dense = compress(model, Policy(), form="deploy", example_input=example_input)
        again = measure_model(dense, example_input, threads=threads, rounds=rounds)
        report.drift = again / report.measured_ms[0] - 1.0
    models = {"analytic": AnalyticModel(), "measured": MeasuredModel(table)}
    for label, lm in models.items():
        report.predicted_ms[label] = [lm.predict(p, device).total_ms for p in plans]
    report.predicted_ms["measured-interp"] = [
        MeasuredModel(table.without(leaf_key(q) for q in p)).predict(p, device).total_ms
        for p in plans
    ]
    for label, pred in report.predicted_ms.items():
        report.scores.append(Score(label, device.name, len(pred), mape(pred, report.measured_ms),
                                   spearman(pred, report.measured_ms),
                                   within(pred, report.measured_ms)))
    return report


def run_ort_check(model: nn.Module, example_input: Any, *, n_policies: int = 20, seed: int = 0,
                  threads: int = 1, name: str = "model", policies: Sequence[Policy] | None = None) -> CheckReport:
    """The ``ort`` device measures each candidate end to end, so what there is to check is how
    repeatable its figure is: every policy's figure as the search gets it (one export, one
    session) against a second, independent export and session timed after all the first ones.
    MAPE / Spearman / within +-10% then say how much of a difference between two candidates is
    noise of this machine."""
    from autocompress.cost.profiling._ort import OrtTimer

    rng = random.Random(seed)
    groups = prunable_groups(model, example_input)
    chosen = [Policy(), *policies] if policies is not None else None
    report = CheckReport(name, threads)
    first, second = (OrtTimer(model, example_input, threads=threads) for _ in range(2))
    kept: list[Policy] = []
    search: list[float] = []
    for i in range(n_policies if chosen is None else len(chosen)):
        policy = chosen[i] if chosen is not None else (Policy() if i == 0 else random_policy(model, groups, rng))
        try:
            search.append(first.measure(policy))  # the figure the search would get
        except PolicyError as e:
            report.skipped.append(f"policy {i}: {e}")
            continue
        kept.append(policy)
    report.measured_ms = [second.measure(p) for p in kept]
    if report.measured_ms:
        report.drift = OrtTimer(model, example_input, threads=threads).measure(kept[0]) / report.measured_ms[0] - 1.0
    report.predicted_ms[OrtTimer.MODEL] = search
    report.scores.append(Score(OrtTimer.MODEL, OrtTimer.DEVICE, len(search), mape(search, report.measured_ms),
                               spearman(search, report.measured_ms), within(search, report.measured_ms)))
    return report
