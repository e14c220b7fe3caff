"""The ``autocompress`` command: thin subcommands over the public API.

Bad input exits with code 2 and one line naming the file and field; ``--debug`` shows the
traceback. Each subcommand lives in its own module with ``add_parser`` and ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from autocompress.errors import AutocompressError

# verb -> module (imported only when that verb runs: nothing heavy at start-up)
COMMANDS: dict[str, str] = {
    "search": "autocompress.cli._search",
    "worker": "autocompress.cli._worker",
    "pareto": "autocompress.cli._pareto",
    "export": "autocompress.cli._export",
    "apply": "autocompress.cli._apply",
    "validate": "autocompress.cli._validate",
    "tasks": "autocompress.cli._tasks",
    "layers": "autocompress.cli._layers",
    "profile": "autocompress.cli._profile",
    "latency-check": "autocompress.cli._latency_check",
    "report": "autocompress.cli._report",
    "dashboard": "autocompress.cli._dashboard",
}

HELP: dict[str, str] = {
    "search": "run (or resume) a search study and write its Pareto front",
    "worker": "join a study in shared storage (PostgreSQL, journal file) and run its trials",
    "pareto": "print a study's Pareto front",
    "export": "export a trial's policy as a reusable policy file",
    "apply": "build the deploy artifact of a policy and measure it",
    "validate": "check a policy, search-space or study file",
    "tasks": "list the built-in tasks",
    "layers": "list a task model's compressible layers and channel groups",
    "profile": "measure this machine's layer latencies for the measured latency model",
    "latency-check": "compare latency models with real end-to-end measurements",
    "report": "write a study's Pareto front as one self-contained HTML page",
    "dashboard": "browse studies and their Pareto fronts in a web browser",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autocompress", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for verb, help_text in HELP.items():
        p = sub.add_parser(verb, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        p.set_defaults(_module=COMMANDS[verb])
        _module(COMMANDS[verb]).add_parser(p)
    return parser


def _module(name: str):
    return importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(_module(args._module).run(args) or 0)
    except AutocompressError as e:
        if args.debug:
            traceback.print_exc()
        print(f"autocompress {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"autocompress {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        import optuna

        if not isinstance(e, optuna.exceptions.StorageInternalError):
            raise
        if args.debug:
            traceback.print_exc()
        root: BaseException = e
        while root.__cause__ is not None:
            root = root.__cause__
        why = " ".join(str(root).split())[:300]
        print(f"autocompress {args.command}: error: the study storage failed while running "
              f"({type(root).__name__}: {why}); was it deleted, made read-only or filled up meanwhile? "
              "Finished trials are kept: fix the storage and run again to resume (--debug shows the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
