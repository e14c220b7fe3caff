"""Early stopping for a multi-objective search, using what is known before training.

Optuna's pruners do not support multi-objective studies (optuna issue 3450). But a
candidate's size and latency are known before its fine-tune, so the only question is
whether its *metric* can still put it on the front:

- ``threshold``: the best final metric among completed feasible candidates that are at
  least as small and at least as fast. Reaching the front needs a metric above it. With no
  such candidate there is nothing to beat and the candidate is never stopped.
- ``slack(step)``: the largest gain any completed candidate made from ``step`` to the end
  of its fine-tune (its own learning curve), plus ``margin``. Until ``min_curves`` curves
  exist the rule does not stop anything.

Stop when ``metric(step) + slack(step) < threshold``. The rule is conservative by
construction (it uses the *largest* observed late gain) and its savings and losses are
measured in ``bench/bench_search.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Completed:
    size: float
    latency: float
    metric: float
    curve: dict[int, float]  # step -> intermediate validation metric


@dataclass
class FrontStopper:
    margin: float = 0.005
    min_curves: int = 4
    completed: list[Completed] = field(default_factory=list)

    def add(self, done: Completed) -> None:
        self.completed.append(done)

    def threshold(self, size: float, latency: float) -> float | None:
        better = [c.metric for c in self.completed if c.size <= size and c.latency <= latency]
        return max(better) if better else None

    def slack(self, step: int) -> float | None:
        gains = []
        for c in self.completed:
            earlier = [s for s in c.curve if s <= step]
            if earlier:
                gains.append(c.metric - c.curve[max(earlier)])
        if len(gains) < self.min_curves:
            return None
        return max(0.0, *gains) + self.margin

    def should_stop(self, size: float, latency: float, step: int, metric: float) -> bool:
        thr = self.threshold(size, latency)
        if thr is None:
            return False
        slack = self.slack(step)
        if slack is None:
            return False
        return metric + slack < thr
