"""The page's structure: studies, the Pareto figure and its controls, two trial panels.

Component ids are the contract with ``callbacks.py`` and the browser test; a panel's ids end
in its slot (``-A`` / ``-B``).
"""

from __future__ import annotations

from typing import Any

from autocompress_dashboards.figures import PROJECTIONS

SLOTS = ("A", "B")
COLOUR_CHOICES = ("metric", "size_kb", "latency_ms", "trial")
_CARD = {"border": "1px solid #ddd", "borderRadius": "6px", "padding": "10px", "marginBottom": "12px"}
_ROW = {"display": "flex", "gap": "16px", "flexWrap": "wrap", "alignItems": "center"}


def _controls() -> Any:
    from dash import dcc, html

    return html.Div(style=_ROW, children=[
        html.Label(["view ", dcc.RadioItems(id="projection", value="size_kb:metric", inline=True,
                                            options=[{"label": v, "value": k} for k, v in PROJECTIONS.items()])]),
        html.Label(["colour by ", dcc.Dropdown(id="colour", value="metric", clearable=False, style={"width": "160px"},
                                               options=[{"label": c, "value": c} for c in COLOUR_CHOICES])],
                   style={"display": "flex", "alignItems": "center", "gap": "6px"}),
        html.Label(["a click selects ", dcc.RadioItems(id="slot", value="A", inline=True,
                                                       options=[{"label": f"panel {s}", "value": s} for s in SLOTS])]),
    ])


def _panel(slot: str) -> Any:
    from dash import dcc, html

    return html.Div(id=f"panel-{slot}", style={**_CARD, "flex": "1 1 480px", "minWidth": "420px"}, children=[
        html.Div(style=_ROW, children=[
            html.H3(f"Trial {slot}", style={"margin": "0"}),
            dcc.Dropdown(id=f"trial-{slot}", placeholder="pick a trial, or click a point", clearable=True,
                         style={"width": "330px"}),
            html.Button("Export policy YAML", id=f"export-{slot}", n_clicks=0),
            dcc.Download(id=f"download-{slot}"),
        ]),
        html.Div(id=f"export-msg-{slot}", style={"color": "#a00", "margin": "4px 0"}),
        html.Div(id=f"summary-{slot}"),
        dcc.Graph(id=f"layers-{slot}", config={"displaylogo": False}),
    ])


def make_layout(storage_url: str, refresh_s: float) -> Any:
    """The whole page; ``refresh_s`` = 0 turns live refresh off."""
    from dash import dcc, html

    interval = int(refresh_s * 1000) if refresh_s > 0 else 24 * 3600 * 1000
    return html.Div(style={"fontFamily": "sans-serif", "margin": "12px 20px"}, children=[
        html.H2("autocompress: Pareto front browser", style={"marginBottom": "2px"}),
        html.Div(f"storage: {storage_url}", id="storage-url", style={"color": "#666", "fontSize": "13px"}),
        dcc.Interval(id="refresh", interval=interval, n_intervals=0, disabled=refresh_s <= 0),
        html.Div(id="storage-message", style={"color": "#a00", "fontWeight": "bold", "margin": "8px 0"}),
        html.Div(style=_CARD, children=[
            html.Div(style=_ROW, children=[html.H3("Studies", style={"margin": "0"}),
                                           dcc.Dropdown(id="study", placeholder="choose a study", clearable=False,
                                                        style={"width": "320px"})]),
            html.Div(id="studies-table"),
        ]),
        html.Div(style=_CARD, children=[
            _controls(),
            html.Div(id="study-message", style={"color": "#a00", "margin": "6px 0"}),
            dcc.Graph(id="pareto", config={"displaylogo": False}),
            dcc.Graph(id="hypervolume", config={"displaylogo": False}),
        ]),
        html.Div(style={"display": "flex", "gap": "12px", "flexWrap": "wrap"}, children=[_panel(s) for s in SLOTS]),
    ])
