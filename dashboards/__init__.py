"""The autocompress dashboard: browse the studies of one storage and pick the policy to ship.

A Dash app (pip extra ``dashboard``) that reads only the study storage: run it with
``autocompress dashboard --storage sqlite:///runs/quickstart/study.db`` (127.0.0.1:8050), or::

    from autocompress_dashboards import create_app
    create_app("sqlite:///runs/quickstart/study.db").run(port=8050)

Modules: ``data`` (storage access, errors as messages), ``figures`` (Pareto figure),
``layout`` (component tree), ``views`` (HTML fragments), ``callbacks`` (behaviour).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["create_app"]


def create_app(storage_url: str, refresh_s: float = 5.0, storage_factory: Callable[[], Any] | None = None) -> Any:
    """A ``dash.Dash`` app over the studies in ``storage_url`` (opened lazily, on first request).

    ``refresh_s``: seconds between live refreshes while a search runs (0: never);
    ``storage_factory``: a ready optuna storage instead of the URL (tests, in-memory studies).
    """
    import dash
    from autocompress_dashboards.callbacks import register
    from autocompress_dashboards.data import Source
    from autocompress_dashboards.layout import make_layout

    app = dash.Dash(__name__, title="autocompress dashboard", update_title="")  # no "Updating..." tab title
    app.layout = make_layout(storage_url, refresh_s)
    register(app, Source(storage_url, storage_factory=storage_factory))
    return app
