"""``autocompress worker STUDY.yaml --storage URL``: join a study from any machine.

Runs trials until the study's budget, counted over every worker, is spent. Tables and plots
are written by ``autocompress search STUDY.yaml --storage URL`` (run it once the workers are
done: it finds the budget spent and only writes the outputs) or read with ``pareto``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="a study file (studies/*.yaml)")
    p.add_argument("--storage", default=None,
                   help="the shared storage: postgresql://user@host/db or journal:///shared/path.log")
    p.add_argument("--trials", type=int, default=None, help="override budget.trials (the whole study's)")
    p.add_argument("--minutes", type=float, default=None, help="override budget.minutes (this worker's)")
    p.add_argument("--threads", type=int, default=None, help="torch threads for this worker (default: torch's)")
    p.add_argument("--single-worker", action="store_true",
                   help="this is the study's only worker (required to use a SQLite storage)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def run(args: argparse.Namespace) -> int:
    from autocompress.cli._search import load_with_overrides
    from autocompress.errors import ConfigError
    from autocompress.search import run_worker

    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    cfg = load_with_overrides(args)
    try:
        result = run_worker(cfg, single=args.single_worker, progress=args.progress)
    except KeyboardInterrupt:
        print("worker stopped; its trial in flight was enqueued again for the other workers")
        return 130
    c = result.census
    print(f"worker done: {result.trials_run} trials run here; study {cfg.name!r} has {c.counted} counted trials "
          f"(budget {cfg.budget.trials}), {c.running} running, {c.waiting} waiting")
    return 0
