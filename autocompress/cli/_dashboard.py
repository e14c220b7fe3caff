"""``autocompress dashboard --storage URL``: browse studies and their Pareto fronts in a browser.

Serves the Dash app in ``dashboards/`` (pip extra ``dashboard``) on 127.0.0.1 by default:
bind another address with ``--host`` only on a network you trust (the app has no login).
"""

from __future__ import annotations

import argparse


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", required=True, help="study storage URL, e.g. sqlite:///runs/quickstart/study.db")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8050, help="port to serve on (default 8050)")
    p.add_argument("--refresh", type=float, default=5.0, help="seconds between live refreshes (0: never)")


def run(args: argparse.Namespace) -> int:
    from autocompress.errors import ConfigError

    try:
        import dash  # noqa: F401
    except ImportError:
        raise ConfigError("the dashboard needs Dash: pip install 'autocompress[dashboard]'") from None
    from autocompress_dashboards import create_app

    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    if args.refresh < 0:
        raise ConfigError(f"--refresh must be >= 0 seconds, got {args.refresh}")
    app = create_app(args.storage, refresh_s=args.refresh)
    print(f"autocompress dashboard: {args.storage} on http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    app.run(host=args.host, port=args.port, debug=False)
    return 0
