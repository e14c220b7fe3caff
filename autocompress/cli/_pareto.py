"""``autocompress pareto STUDY.yaml``: print the study's Pareto front (from its storage)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from autocompress.search.study_config import StudyConfig


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="the study file the search ran")
    p.add_argument("--storage", default=None, help="override the storage URL")
    p.add_argument("--all", action="store_true", help="print every trial, not only the front")


def load_study(args: argparse.Namespace) -> tuple[StudyConfig, optuna.Study]:
    """(config, optuna study) for an existing study; a clear error if it was never run."""
    import optuna

    from autocompress.cli._search import load_with_overrides
    from autocompress.errors import ConfigError
    from autocompress.search._storage import open_storage

    cfg = load_with_overrides(args)
    storage = open_storage(cfg.storage)
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
