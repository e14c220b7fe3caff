"""``autocompress latency-check``: build deploy artifacts for N random policies (or a study's
Pareto set), measure them end to end, and score each latency model (MAPE, Spearman, share
within +-10%)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="digits-cnn", help="task whose model is checked")
    p.add_argument("--data-dir", default=None, help="data directory for tasks that read files")
    p.add_argument("--policies", type=int, default=20, help="number of random policies")
    p.add_argument("--device", choices=("local", "ort"), default="local",
                   help="local: score the latency models against measurements of the eager deploy form; "
                        "ort: how repeatable the ONNX Runtime device's per-candidate measurement is")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1, help="batch size of the timed input")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--study", type=Path, default=None,
                   help="check the Pareto set of this study (its file or study.db) instead of random policies")
    p.add_argument("--rounds", type=int, default=3, help="timing rounds (the best is kept)")
    p.add_argument("--calibration", type=int, default=None,
                   help="random compressed policies (own seed) in the per-model overhead fit (default 6)")
    p.add_argument("--interleave", action="store_true",
                   help="time all policies and their leaves round-robin, best round each (better when "
                        "other jobs load the machine; default: each policy right after re-timing its leaves)")


def run(args: argparse.Namespace) -> int:
    from autocompress.cost.profiling.check import run_check
    from autocompress.cost.profiling.profiler import CALIBRATION_POLICIES
    from autocompress.tasks import get_task

    name, settings, policies = args.task, {}, None
    if args.study is not None:
        from autocompress.cli._pareto import load_study
        from autocompress.results import front_table, stored_policy

        cfg, study = load_study(args)
        name, settings = cfg.task, dict(cfg.task_settings)
        front = set(front_table(study)["trial"]) if len(study.trials) else set()
        policies = [p for t in study.get_trials(deepcopy=False)
                    if t.number in front and (p := stored_policy(t)) is not None]
    if args.data_dir:
        settings["data_dir"] = args.data_dir
    task = get_task(name, **settings)
    model = task.create_model(0).eval()
    x = task.example_input()[: args.batch]
    if args.device == "ort":
        from autocompress.cost.profiling.check import run_ort_check

        print(run_ort_check(model, x, n_policies=args.policies, seed=args.seed, threads=args.threads, name=name,
                            policies=policies).table())
        return 0
    report = run_check(model, x, n_policies=args.policies, seed=args.seed, threads=args.threads, name=name,
                       rounds=args.rounds, interleave=args.interleave, policies=policies,
                       calibration=CALIBRATION_POLICIES if args.calibration is None else args.calibration)
    print(report.table())
    return 0
