"""``autocompress report STUDY.yaml -o report.html``: one self-contained page to share.

Summary, Pareto plots (2D projections and 3D), hypervolume over trials, the front's policies
and the front table, read from the study's storage; plotly's JavaScript is embedded once.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="the study file the search ran")
    p.add_argument("-o", "--output", type=Path, required=True, help="HTML file to write")
    p.add_argument("--storage", default=None, help="override the storage URL")


def run(args: argparse.Namespace) -> int:
    from autocompress import files
    from autocompress.cli._pareto import load_study
    from autocompress.study_report import write_study_report

    files.check_output_file(args.output, "report")
    cfg, study = load_study(args)
    c = cfg.constraints
    limits = {"size_kb": c.max_size_kb, "latency_ms": c.max_latency_ms, "metric": c.min_metric}
    path = write_study_report(study, args.output, {k: v for k, v in limits.items() if v is not None})
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {len(study.trials)} trials)")
    return 0
