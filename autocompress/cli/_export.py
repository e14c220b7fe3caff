"""``autocompress export STUDY.yaml --trial N -o policy.yaml``: a trial as a policy file.

The policy is rebuilt by replaying the space's ``sample`` on the trial's parameters
(``optuna.trial.FixedTrial``), so search and export cannot disagree. The file carries the
predicted figures and the provenance (task, base-model checksum, package versions).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", type=Path, help="the study file the search ran")
    p.add_argument("--trial", type=int, required=True, help="trial number (see `autocompress pareto`)")
    p.add_argument("-o", "--output", type=Path, required=True, help="policy file to write")
    p.add_argument("--storage", default=None, help="override the storage URL")


def run(args: argparse.Namespace) -> int:
    from autocompress import files
    from autocompress.cli._pareto import load_study
    from autocompress.search.export import export_policy

    files.check_output_file(args.output, "policy")  # before the base model is built
    cfg, study = load_study(args)
    policy = export_policy(cfg, study, args.trial, cfg.storage)
    policy.save(args.output)
    m = policy.record.predicted
    metric = "-" if m.metric is None else f"{m.metric:.4f}"
    latency = "-" if m.latency_ms is None else f"{m.latency_ms:.4g} ms"
    print(f"wrote {args.output}: trial {args.trial}, predicted {m.metric_name or 'metric'} {metric}, "
          f"file {m.size_bytes} B, latency {latency}")
    return 0
