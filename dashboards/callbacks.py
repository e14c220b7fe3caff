"""What the page does: each callback is a plain function of its inputs (tested without a
browser), wired to the component ids of ``layout.py`` by :func:`register`.

Flow: the refresh timer lists the studies -> the chosen study gives the trial options ->
the panels' trials default to the front's best metric -> a click on the Pareto figure sets
the trial of the panel chosen by ``slot`` -> each panel draws its trial; export downloads it.
"""

from __future__ import annotations

from typing import Any

from autocompress_dashboards.data import DashboardError, Source
from autocompress_dashboards.figures import message_figure, pareto_figure
from autocompress_dashboards.layout import SLOTS
from autocompress_dashboards.views import studies_table, trial_options, trial_summary


def refresh_studies(source: Source, current: str | None) -> tuple[Any, list[dict[str, str]], str | None, str]:
    """(studies table, dropdown options, chosen study, storage message)."""
    try:
        df = source.studies()
    except DashboardError as e:
        return None, [], None, str(e)
    names = df["study"].tolist() if not df.empty else []
    options = [{"label": f"{n} ({s}, {t} trials)", "value": n}
               for n, s, t in zip(names, df.get("status", []), df.get("trials", []), strict=False)]
    chosen = current if current in names else (names[0] if names else None)
    return studies_table(df), options, chosen, ""


def study_options(source: Source, name: str | None) -> tuple[list[dict[str, Any]], str]:
    """(trial options for the panels, study message)."""
    if not name:
        return [], "Choose a study."
    try:
        view = source.view(name)
    except DashboardError as e:
        return [], str(e)
    return trial_options(view), view.message or ""


def default_trials(options: list[dict[str, Any]], a: int | None, b: int | None) -> tuple[int | None, int | None]:
    """Keep the panels' trials while they exist; else A = the first option (best on the front)."""
    values = [o["value"] for o in options]
    a = a if a in values else (values[0] if values else None)
    b = b if b in values else None
    return a, b


def render_study(source: Source, name: str | None, projection: str, colour: str,
                 a: int | None, b: int | None) -> tuple[Any, Any]:
    """(Pareto figure, hypervolume figure); a figure with a message when there is nothing to draw."""
    from autocompress.study_figures import hypervolume_figure

    if not name:
        return message_figure("Choose a study."), message_figure("")
    try:
        view = source.view(name)
    except DashboardError as e:
        return message_figure(str(e)), message_figure("")
    if view.finished.empty:
        return message_figure(view.message or "nothing to plot"), message_figure("")
    try:
        fig = pareto_figure(view, projection, colour, {"A": a, "B": b})
    except ValueError as e:
        fig = message_figure(str(e))
    return fig, hypervolume_figure(view.hypervolume)


def clicked_trial(click: dict[str, Any] | None) -> int | None:
    """The trial number under a click on the Pareto figure (None off the trials)."""
    points = (click or {}).get("points") or []
    data = points[0].get("customdata") if points else None
    if isinstance(data, list) and data and isinstance(data[0], int | float):
        return int(data[0])
    return None


def render_trial(source: Source, name: str | None, number: int | None) -> tuple[Any, Any]:
    """(summary, per-layer figure) of one trial for a panel."""
    from dash import html

    from autocompress.study_figures import layer_figure

    if not name or number is None:
        return html.P("No trial selected: click a point of the Pareto figure."), message_figure("no trial selected")
    try:
        detail = source.trial(name, number)
        view = source.view(name)
    except DashboardError as e:
        return html.P(str(e)), message_figure(str(e))
    if detail.layers.empty:
        fig = message_figure(f"trial {number} stores no policy (a study from an older autocompress)")
    else:
        fig = layer_figure(detail.layers, f"trial {number}: per-layer policy")
    return trial_summary(detail, view), fig


def export_trial(source: Source, name: str | None, number: int | None) -> tuple[Any, str]:
    """(dcc.Download data, message): the exact file ``autocompress export`` writes."""
    from dash import dcc, no_update

    if not name or number is None:
        return no_update, "Select a trial first."
    try:
        filename, text = source.export(name, number)
    except DashboardError as e:
        return no_update, str(e)
    return dcc.send_string(text, filename), ""


def register(app: Any, source: Source) -> None:
    """Wire the functions above to the page of ``layout.make_layout``."""
    import dash
    from dash import Input, Output, State

    @app.callback(Output("studies-table", "children"), Output("study", "options"), Output("study", "value"),
                  Output("storage-message", "children"), Input("refresh", "n_intervals"), State("study", "value"))
    def _studies(_n: int, current: str | None) -> Any:
        return refresh_studies(source, current)

    @app.callback(Output("trial-A", "options"), Output("trial-B", "options"), Output("study-message", "children"),
                  Input("study", "value"), Input("refresh", "n_intervals"))
    def _options(name: str | None, _n: int) -> Any:
        options, message = study_options(source, name)
        return options, options, message

    @app.callback(Output("trial-A", "value"), Output("trial-B", "value"), Input("trial-A", "options"),
                  Input("pareto", "clickData"), State("slot", "value"), State("trial-A", "value"),
                  State("trial-B", "value"))
    def _select(options: list[dict[str, Any]], click: Any, slot: str, a: int | None, b: int | None) -> Any:
        if dash.ctx.triggered_id == "pareto":
            number = clicked_trial(click)
            if number is None:
                return dash.no_update, dash.no_update
            return (number, dash.no_update) if slot == "A" else (dash.no_update, number)
        return default_trials(options or [], a, b)

    @app.callback(Output("pareto", "figure"), Output("hypervolume", "figure"), Input("study", "value"),
                  Input("projection", "value"), Input("colour", "value"), Input("trial-A", "value"),
                  Input("trial-B", "value"), Input("refresh", "n_intervals"))
    def _study(name: str | None, projection: str, colour: str, a: int | None, b: int | None, _n: int) -> Any:
        return render_study(source, name, projection, colour, a, b)

    for slot in SLOTS:
        _register_panel(app, source, slot)


def _register_panel(app: Any, source: Source, slot: str) -> None:
    from dash import Input, Output, State

    @app.callback(Output(f"summary-{slot}", "children"), Output(f"layers-{slot}", "figure"),
                  Input("study", "value"), Input(f"trial-{slot}", "value"))
    def _panel(name: str | None, number: int | None) -> Any:
        return render_trial(source, name, number)

    @app.callback(Output(f"download-{slot}", "data"), Output(f"export-msg-{slot}", "children"),
                  Input(f"export-{slot}", "n_clicks"), State("study", "value"), State(f"trial-{slot}", "value"),
                  prevent_initial_call=True)
    def _export(_clicks: int, name: str | None, number: int | None) -> Any:
        return export_trial(source, name, number)
