"""``autocompress tasks``: list the built-in tasks."""

from __future__ import annotations

import argparse


def add_parser(p: argparse.ArgumentParser) -> None:
    del p  # no options


def run(args: argparse.Namespace) -> int:
    from autocompress.tasks import TASK_EXTRAS, TASKS, missing_extra

    for name in TASKS.names():
        doc = (TASKS.get(name).__doc__ or "").strip().splitlines()
        print(f"{name:18s} {doc[0] if doc else ''}")
        extra = TASK_EXTRAS.get(name)
        if extra is not None:
            state = "installed"
            if missing_extra(name) is not None:
                state = f"not installed: pip install 'autocompress[{extra}]'"
            print(f"{'':18s} (needs the `{extra}` extra; {state})")
    print("\nA study may also name its own task as 'package.module:function' (that runs your code).")
    return 0
