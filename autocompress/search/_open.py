"""Open an existing study to read it (or record beside it): the one way the CLI, ``apply``,
the report and the dashboard find a study.

A study is named by its study file, by its SQLite file (``runs/<name>/study.db``) or by a
storage URL; reading never creates a storage (a mistyped path is an error, not an empty
database). When the source is not a study file, the config is the resolved one the search
stored in the study.

Example::

    opened = open_study("studies/quickstart.yaml")          # or "runs/quickstart/study.db"
    opened.study.best_trials, opened.config.objectives, opened.url
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import optuna

from autocompress.errors import ConfigError
from autocompress.search.study_config import StudyConfig, load_study_config
from autocompress.study import is_sqlite_file, open_existing_storage


class OpenedStudy:
    """An existing study, the storage URL it was read from, and (on first use) its config."""

    def __init__(self, study: optuna.Study, url: str, config: StudyConfig | None = None) -> None:
        self.study, self.url, self._config = study, url, config

    @functools.cached_property
    def config(self) -> StudyConfig:
        """The study file's config, or the one the search stored (its storage set to :attr:`url`)."""
        if self._config is not None:
            return self._config
        from autocompress.search.export import stored_config

        return replace(stored_config(self.study), storage=self.url)


def open_study(source: str | Path | StudyConfig, *, storage: str | optuna.storages.BaseStorage | None = None,
               name: str | None = None) -> OpenedStudy:
    """The existing study named by ``source`` (see the module doc).

    ``storage``: a URL overriding the study file's, or an open storage to reuse (the
    dashboard keeps one). ``name``: which study, where the storage holds several.
    """
    cfg: StudyConfig | None = None
    where = str(source)
    if isinstance(source, StudyConfig):
        cfg, where = source, source.source
    elif isinstance(source, str) and ("://" in source or isinstance(storage, optuna.storages.BaseStorage)):
        url = source  # a storage URL (or the label of the open storage passed in)
    elif is_sqlite_file(source):
        url = f"sqlite:///{Path(source).resolve()}"
    else:
        cfg = load_study_config(source)
    if cfg is not None:
        url = storage if isinstance(storage, str) else cfg.storage
        name = name or cfg.name
    elif isinstance(storage, str):
        url = storage
    opened = storage if isinstance(storage, optuna.storages.BaseStorage) else open_existing_storage(url)
    if name is None:
        names = [s.study_name for s in optuna.get_all_study_summaries(opened, include_best_trial=False)]
        if len(names) != 1:
            raise ConfigError(f"{where}: holds {len(names)} studies ({', '.join(names) or 'none'}); name one, or "
                              "pass the study file")
        name = names[0]
    try:
        study = optuna.load_study(study_name=name, storage=opened)
    except KeyError:
        hint = f"run `autocompress search {where}` first" if cfg is not None else "check the study name"
        raise ConfigError(f"{where}: no study {name!r} in {url}; {hint}") from None
    if cfg is not None and isinstance(storage, str):
        cfg = replace(cfg, storage=storage)
    return OpenedStudy(study, url, cfg)
