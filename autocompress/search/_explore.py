"""What a worker does when its sampler keeps proposing candidates already evaluated.

Re-proposals happen when a sampler has converged or a space is small (each one is reused, not
fine-tuned: ``autocompress.study._claims``). After :data:`EXPLORE_AFTER` duplicates in a row
a worker asks for one candidate at random (:class:`ExploringSampler`), and after
:data:`GIVE_UP_AFTER` in a row it stops: the space has no candidate left that the sampler finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

EXPLORE_AFTER = 2
GIVE_UP_AFTER = 25


class ExploringSampler(optuna.samplers.BaseSampler):
    """The study's sampler, except that a trial asked with :attr:`explore` set is sampled at
    random (a candidate the base sampler keeps re-proposing is then left behind).

    Everything else is delegated, so the base sampler's own bookkeeping is unchanged; a
    random trial carries none of it (NSGA-II leaves it out of its generations)."""

    def __init__(self, base: optuna.samplers.BaseSampler, seed: int | None) -> None:
        self.base = base
        self.random = optuna.samplers.RandomSampler(seed=seed)
        self.explore = False
        self._exploring: set[int] = set()

    def __getattr__(self, name: str) -> Any:  # the base sampler's own attributes and helpers
        if name in ("base", "random", "explore", "_exploring"):
            raise AttributeError(name)
        return getattr(self.base, name)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if self.explore:
            self._exploring.add(trial._trial_id)
            return {}
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if trial._trial_id in self._exploring:
            return {}
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        sampler = self.random if trial._trial_id in self._exploring else self.base
        return sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._exploring.discard(trial._trial_id)
        self.base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
        self.random.reseed_rng()


class Streak:
    """Duplicates in a row for one worker: when to explore, when to stop."""

    def __init__(self, sampler: optuna.samplers.BaseSampler) -> None:
        self.sampler = sampler if isinstance(sampler, ExploringSampler) else None
        self.count = 0

    def before_ask(self) -> None:
        if self.sampler is not None:
            self.sampler.explore = self.count >= EXPLORE_AFTER

    def after_sample(self) -> None:
        if self.sampler is not None:
            self.sampler.explore = False

    def record(self, duplicate: bool) -> None:
        self.count = self.count + 1 if duplicate else 0

    @property
    def exhausted(self) -> bool:
        return self.count >= GIVE_UP_AFTER
