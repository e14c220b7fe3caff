"""``autocompress search STUDY.yaml``: run or resume a study; Ctrl-C stops cleanly."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autocompress.search.study_config import StudyConfig


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="a study file (studies/*.yaml)")
    p.add_argument("--trials", type=int, default=None, help="override budget.trials")
    p.add_argument("--minutes", type=float, default=None, help="override budget.minutes")
    p.add_argument("--storage", default=None, help="override the storage URL")
    p.add_argument("--output-dir", type=Path, default=None, help="override output_dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--backend", choices=("optuna", "ray"), default=None,
                   help="override backend: run trials here (optuna) or on a Ray cluster (ray)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address for --backend ray, e.g. 10.0.0.1:6379 (default: "
                        "RAY_ADDRESS, else a local Ray instance)")
    p.add_argument("--cpus-per-trial", type=int, default=1,
                   help="Ray backend: CPUs reserved for each trial, and its torch threads (default 1)")


def load_with_overrides(args: argparse.Namespace) -> StudyConfig:
    from dataclasses import replace

    from autocompress.search import load_study_config
    from autocompress.search.study_config import Budget

    cfg = load_study_config(args.study)
    if getattr(args, "trials", None) is not None or getattr(args, "minutes", None) is not None:
        cfg = replace(cfg, budget=Budget(trials=args.trials if args.trials is not None else cfg.budget.trials,
                                         minutes=args.minutes if args.minutes is not None else cfg.budget.minutes))
    if getattr(args, "output_dir", None) is not None:
        out = args.output_dir.resolve()
        storage = cfg.storage
        if storage.startswith("sqlite:///") and storage.endswith(str(cfg.output_dir / "study.db")):
            storage = f"sqlite:///{out / 'study.db'}"
        cfg = replace(cfg, output_dir=out, storage=storage)
    if getattr(args, "storage", None):
        cfg = replace(cfg, storage=args.storage)
    if getattr(args, "backend", None):
        cfg = replace(cfg, backend=args.backend)
    return cfg


def run(args: argparse.Namespace) -> int:
    from autocompress.results import front_table
    from autocompress.search import run_search

    cfg = load_with_overrides(args)
    try:
        result = run_search(cfg, progress=not args.no_progress, address=args.address,
                            cpus_per_trial=args.cpus_per_trial)
    except KeyboardInterrupt:
        print(f"stopped; finished trials are kept in {cfg.storage} — run the same command to resume")
        return 130
    front = front_table(result.study)
    print(f"{result.trials_run} trials run; front of {len(front)} points; outputs in {result.output_dir}")
    if not front.empty:
        cols = [c for c in ("trial", "metric", "size_kb", "latency_ms", "status") if c in front]
        print(front[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0
