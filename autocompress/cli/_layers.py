"""``autocompress layers TASK``: the compressible layers of a task's model and its channel groups."""

from __future__ import annotations

import argparse


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="a task name (see `autocompress tasks`)")
    p.add_argument("--data-dir", default=None, help="data directory for tasks that read files")


def run(args: argparse.Namespace) -> int:
    from autocompress.errors import GraphError
    from autocompress.graph import channel_groups, layers
    from autocompress.tasks import get_task

    settings = {"data_dir": args.data_dir} if args.data_dir else {}
    task = get_task(args.task, **settings)
    model = task.create_model(0).eval()
    x = task.example_input()
    infos = layers(model, x)
    w = max(28, 2 + max(len(i.name) for i in infos))  # HF models have long module paths
    print(f"{'layer':{w}s}{'kind':8s}{'in':>6s}{'out':>6s}{'params':>10s}{'MACs':>12s}")
    for i in infos:
        print(f"{i.name:{w}s}{i.kind:8s}{i.in_channels:6d}{i.out_channels:6d}{i.params:10d}{i.macs:12d}")
    try:
        groups = channel_groups(model, x)
    except GraphError as e:
        print(f"\nchannel groups: none ({e})")
        return 0
    print("\nchannel groups (channel pruning removes a whole group's channels together):")
    for g in groups:
        state = "prunable" if g.blocked_by is None else f"blocked: {g.blocked_by}"
        unit = f"heads of {g.heads}" if g.heads else "ch"
        print(f"  #{g.id} {g.channels} {unit}, producers {list(g.producers)} — {state}")
    return 0
