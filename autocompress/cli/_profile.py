"""``autocompress profile``: measure this machine (peaks, caches, leaf timings) for the
measured latency model; results are cached, keyed by a device fingerprint."""

from __future__ import annotations

import argparse


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1, help="torch threads to measure at (default 1)")
    p.add_argument("--task", default=None, help="also time every leaf configuration of this task's model")
    p.add_argument("--data-dir", default=None, help="data directory for tasks that read files")
    p.add_argument("--calibration", type=int, default=None,
                   help="random compressed policies in the task model's overhead fit (default 6)")


def run(args: argparse.Namespace) -> int:
    from autocompress.cost.latency import LeafTable, fingerprint
    from autocompress.cost.profiling import profile_device

    path = profile_device(args.threads)
    print(f"wrote the local device profile: {path}")
    if args.task:
        from autocompress.cost.profiling.profiler import CALIBRATION_POLICIES, profile_model
        from autocompress.tasks import get_task

        task = get_task(args.task, **({"data_dir": args.data_dir} if args.data_dir else {}))
        model = task.create_model(0).eval()
        table = LeafTable.load(fingerprint(args.threads))
        profile_model(model, task.example_input()[:1], table, threads=args.threads,
                      calibration=CALIBRATION_POLICIES if args.calibration is None else args.calibration)
        saved = table.save()
        print(f"timed the leaf configurations of {args.task}'s model into {saved}")
    return 0
