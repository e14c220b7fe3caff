"""The search progress bar: trials done, front size, hypervolume, best per objective."""

from __future__ import annotations

from typing import Any

import optuna

from autocompress.search._context import SearchContext


class Progress:
    """An optuna callback drawing a tqdm bar (or nothing when disabled)."""

    def __init__(self, ctx: SearchContext, study: optuna.Study, total: int | None, enabled: bool) -> None:
        self.ctx = ctx
        self.bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            done = len([t for t in study.get_trials(deepcopy=False) if t.state.is_finished()])
            self.bar = tqdm(total=total, initial=done, desc=f"search {ctx.cfg.name}", unit="trial")

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.bar is None:
            return
        from autocompress.results import front_summary

        self.bar.update(1)
        self.bar.set_postfix_str(front_summary(self.ctx, study), refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
