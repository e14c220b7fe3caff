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


def load_study(args: argparse.Namespace) -> tuple[StudyConfig, optuna.Study]:
    """(config, optuna study) for an existing study; a clear error if it was never run.

    ``args.study`` is the study file (with the command line's overrides), or the study's
    SQLite file (``runs/<name>/study.db``): the config is then the resolved one the search
    stored in the study. See :func:`autocompress.search.open_study`.
    """
    from autocompress.cli._search import load_with_overrides
    from autocompress.search import open_study
    from autocompress.study import is_sqlite_file

    opened = open_study(args.study) if is_sqlite_file(args.study) else open_study(load_with_overrides(args))
    return opened.config, opened.study


def run(args: argparse.Namespace) -> int:
    from autocompress.results import front_table, study_hypervolume, trials_table

    _cfg, study = load_study(args)
    df = trials_table(study) if args.all else front_table(study)
    if df.empty:
        print("no finished trials" if args.all else "the front is empty (no feasible finished trial yet)")
        return 0
    cols = [c for c in ("trial", "metric", "size_kb", "latency_ms", "status", "state", "on_front") if c in df]
    print(df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"hypervolume (normalised to the fp32 model): {study_hypervolume(study):.4f}")
    return 0
