"""``autocompress latency-check``: build deploy artifacts for N random policies, measure them
end to end, and score each latency model (MAPE, Spearman, share within +-10%)."""

from __future__ import annotations

import argparse


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default="digits-cnn", help="task whose model is checked")
    p.add_argument("--data-dir", default=None, help="data directory for tasks that read files")
    p.add_argument("--policies", type=int, default=20, help="number of random policies")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1, help="batch size of the timed input")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from autocompress.cost.latency.check import run_check
    from autocompress.tasks import get_task

    task = get_task(args.task, **({"data_dir": args.data_dir} if args.data_dir else {}))
    model = task.create_model(0).eval()
    x = task.example_input()[: args.batch]
    report = run_check(model, x, n_policies=args.policies, seed=args.seed, threads=args.threads, name=args.task)
    print(report.table())
    return 0
