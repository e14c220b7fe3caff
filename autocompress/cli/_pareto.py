"""``autocompress pareto STUDY.yaml``: print the study's Pareto front (from its storage)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from autocompress.search.study_config import StudyConfig


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="the study file the search ran, or its SQLite file (study.db)")
    p.add_argument("--storage", default=None, help="override the storage URL")
    p.add_argument("--all", action="store_true", help="print every trial, not only the front")


def _from_storage(url: str, where: str) -> tuple[StudyConfig, optuna.Study]:
    """The one study in a storage, with the config the search stored in it (its storage set
    to ``url``: where the study was read from, not where it was created)."""
    from dataclasses import replace

    import optuna

    from autocompress.errors import ConfigError
    from autocompress.search._storage import open_existing_storage
    from autocompress.search.export import stored_config

    storage = open_existing_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if len(names) != 1:
        raise ConfigError(f"{where}: holds {len(names)} studies ({', '.join(names) or 'none'}); pass the "
                          "study file instead, or --storage URL with the study file")
    study = optuna.load_study(study_name=names[0], storage=storage)
    return replace(stored_config(study), storage=url), study


def load_study(args: argparse.Namespace) -> tuple[StudyConfig, optuna.Study]:
    """(config, optuna study) for an existing study; a clear error if it was never run.

    ``args.study`` is the study file, or the study's SQLite file (``runs/<name>/study.db``):
    the config is then the resolved one the search stored in the study.
    """
    import optuna

    from autocompress.cli._search import load_with_overrides
    from autocompress.errors import ConfigError
    from autocompress.search._storage import is_sqlite_file, open_existing_storage

    if is_sqlite_file(args.study):
        return _from_storage(f"sqlite:///{args.study.resolve()}", str(args.study))
    cfg = load_with_overrides(args)
    storage = open_existing_storage(cfg.storage)
    try:
        return cfg, optuna.load_study(study_name=cfg.name, storage=storage)
    except KeyError:
        raise ConfigError(f"{args.study}: no study {cfg.name!r} in {cfg.storage}; run "
                          f"`autocompress search {args.study}` first") from None


def run(args: argparse.Namespace) -> int:
    from autocompress.search._front import front_table, study_hypervolume, trials_table

    _cfg, study = load_study(args)
    df = trials_table(study) if args.all else front_table(study)
    if df.empty:
        print("no finished trials" if args.all else "the front is empty (no feasible finished trial yet)")
        return 0
    cols = [c for c in ("trial", "metric", "size_kb", "latency_ms", "status", "state", "on_front") if c in df]
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"hypervolume (normalised to the fp32 model): {study_hypervolume(study):.4f}")
    return 0
