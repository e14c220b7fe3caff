"""The dashboard's Pareto figure: 2D projections or 3D, coloured by a chosen column.

Front points are drawn solid and outlined, dominated feasible trials faded, infeasible ones
(rejected, or below ``min_metric``) as grey crosses; the fp32 baseline is a star, the
constraint limits dashed lines, and the trials selected in the A / B panels are labelled.
Every point carries its trial number in ``customdata[0]``: a click selects that trial.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from autocompress_dashboards.data import StudyView

Projection = Literal["size_kb:metric", "latency_ms:metric", "size_kb:latency_ms", "3d"]
PROJECTIONS: dict[str, str] = {
    "size_kb:metric": "metric vs size",
    "latency_ms:metric": "metric vs latency",
    "size_kb:latency_ms": "latency vs size",
    "3d": "3D: size, latency, metric",
}
HOVER = ("trial %{customdata[0]}<br>metric %{customdata[1]:.4f}<br>size %{customdata[2]:.2f} KB"
         "<br>latency %{customdata[3]:.4f} ms<br>%{customdata[4]}<extra></extra>")
_SELECTED = {"A": "#d62728", "B": "#ff7f0e"}


def _axes(view: StudyView, projection: str) -> list[str]:
    axes = ["size_kb", "latency_ms", "metric"] if projection == "3d" else projection.split(":")
    missing = [a for a in axes if a not in view.trials or not view.trials[a].notna().any()]
    if missing:
        raise ValueError(f"this study records no {', '.join(missing)}; choose another view")
    return axes


def _customdata(df: pd.DataFrame) -> list[list[Any]]:
    lat = df["latency_ms"] if "latency_ms" in df else pd.Series([None] * len(df), index=df.index)
    status = [f"{s} · on front" if f else str(s) for s, f in zip(df["status"], df["on_front"], strict=True)]
    return [[int(t), m, s, la, st] for t, m, s, la, st in zip(df["trial"], df["metric"], df["size_kb"], lat, status,
                                                              strict=True)]


def _trace(df: pd.DataFrame, axes: list[str], name: str, marker: dict[str, Any], opacity: float) -> Any:
    import plotly.graph_objects as go

    common: dict[str, Any] = {"mode": "markers", "name": name, "customdata": _customdata(df),
                              "hovertemplate": HOVER, "marker": marker, "opacity": opacity}
    if len(axes) == 3:
        return go.Scatter3d(x=df[axes[0]], y=df[axes[1]], z=df[axes[2]], **common)
    return go.Scatter(x=df[axes[0]], y=df[axes[1]], **common)


def _colour(df: pd.DataFrame, colour: str, scale: tuple[float, float], show_bar: bool) -> dict[str, Any]:
    return {"color": df[colour], "colorscale": "Viridis", "cmin": scale[0], "cmax": scale[1],
            "showscale": show_bar, "colorbar": {"title": {"text": colour}}}


def _limits(fig: Any, view: StudyView, axes: list[str]) -> None:
    for col, limit in view.limits.items():
        if col == axes[0]:
            fig.add_vline(limit, line_dash="dash", line_color="#888", annotation_text=f"{col} limit")
        elif col == axes[1]:
            fig.add_hline(limit, line_dash="dash", line_color="#888", annotation_text=f"{col} limit")


def _selected(view: StudyView, axes: list[str], selected: dict[str, int | None]) -> list[Any]:
    traces = []
    for slot, number in selected.items():
        rows = view.trials[view.trials["trial"] == number] if number is not None else view.trials.iloc[:0]
        if not rows.empty:
            marker = {"size": 20, "symbol": "circle-open", "color": _SELECTED[slot], "line": {"width": 3}}
            tr = _trace(rows, axes, f"selected {slot}", marker, 1.0)
            tr.update(mode="markers+text", text=[slot], textposition="top center", hoverinfo="skip")
            traces.append(tr)
    return traces


def _title(name: str, projection: str, colour: str, hidden: int) -> str:
    title = f"{name}: {PROJECTIONS.get(projection, projection)} (colour: {colour})"
    return title + (f" · {hidden} trial(s) rejected before training not shown" if hidden else "")


def pareto_figure(view: StudyView, projection: str, colour: str, selected: dict[str, int | None]) -> Any:
    """The study's trials in the chosen projection; raises ValueError if an axis is missing."""
    import plotly.graph_objects as go

    axes = _axes(view, projection)
    done = view.finished
    hidden = 0
    if "metric" in axes:  # a trial rejected by the cost models was never trained: its metric is a placeholder
        rejected = done["status"] == "rejected"
        done, hidden = done[~rejected], int(rejected.sum())
    ok = done[done["feasible"]]
    colour = colour if colour in done and done[colour].notna().any() else "trial"
    values = ok[colour].dropna() if not ok.empty else done[colour].dropna()
    scale = (float(values.min()), float(values.max())) if not values.empty else (0.0, 1.0)
    front, dominated = ok[ok["on_front"]], ok[~ok["on_front"]]
    fig = go.Figure()
    infeasible = done[~done["feasible"]]
    front_marker = _colour(front, colour, scale, True) | {"size": 12, "line": {"width": 1.5, "color": "#222"}}
    layers = ((infeasible, "infeasible", {"color": "#999", "symbol": "x", "size": 6}, 0.4),
              (dominated, "dominated", _colour(dominated, colour, scale, False) | {"size": 7}, 0.35),
              (front, "Pareto front", front_marker, 1.0))
    for rows, name, marker, opacity in layers:
        if not rows.empty:  # no empty traces: the page's point groups then match the figure's traces
            fig.add_trace(_trace(rows, axes, name, marker, opacity))
    base = view.baseline
    if all(base.get(a) is not None for a in axes):
        star = {"x": [base[axes[0]]], "y": [base[axes[1]]], "mode": "markers", "name": "fp32 baseline",
                "marker": {"symbol": "diamond" if len(axes) == 3 else "star", "size": 12, "color": "#000"},
                "hovertemplate": "fp32 baseline<extra></extra>", "visible": "legendonly"}  # click the legend
        fig.add_trace(go.Scatter3d(z=[base[axes[2]]], **star) if len(axes) == 3 else go.Scatter(**star))
    for tr in _selected(view, axes, selected):
        fig.add_trace(tr)
    layout: dict[str, Any] = {"height": 520, "uirevision": f"{view.name}:{projection}", "clickmode": "event",
                              "legend": {"orientation": "h", "y": -0.15}, "title": _title(view.name, projection,
                                                                                          colour, hidden),
                              "margin": {"l": 10, "r": 10, "t": 40, "b": 10}}
    if len(axes) == 3:
        layout["scene"] = {"xaxis_title": axes[0], "yaxis_title": axes[1], "zaxis_title": axes[2]}
    else:
        layout |= {"xaxis_title": axes[0], "yaxis_title": axes[1]}
        _limits(fig, view, axes)
    fig.update_layout(**layout)
    return fig


def message_figure(text: str) -> Any:
    """An empty figure that says why there is nothing to draw."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(height=240, xaxis={"visible": False}, yaxis={"visible": False},
                      annotations=[{"text": text, "showarrow": False, "font": {"size": 15}, "xref": "paper",
                                    "yref": "paper", "x": 0.5, "y": 0.5}])
    return fig
