"""Pareto plots and a self-contained HTML page from a study's trials table.

plotly is imported inside the functions (nothing heavy at import). The page embeds
plotly's JavaScript once, whatever the number of figures, so it opens offline.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from autocompress import files

PAIRS = (("size_kb", "metric"), ("latency_ms", "metric"), ("size_kb", "latency_ms"))


def _has(df: pd.DataFrame, col: str) -> bool:
    return bool(col in df and df[col].notna().any())


def pareto_figures(df: pd.DataFrame, title: str = "", constraints: dict[str, float] | None = None) -> list[Any]:
    """2D projections (front highlighted, dominated faded) and a 3D view when latency exists."""
    import plotly.graph_objects as go

    figs = []
    ok = df[df["feasible"]] if not df.empty else df
    for x, y in PAIRS:
        if not (_has(ok, x) and _has(ok, y)):
            continue
        fig = go.Figure()
        dom = ok[~ok["on_front"]]
        front = ok[ok["on_front"]].sort_values(x)
        fig.add_trace(go.Scatter(x=dom[x], y=dom[y], mode="markers", name="dominated", opacity=0.35,
                                 text=[f"trial {t}" for t in dom["trial"]], marker={"color": "grey"}))
        fig.add_trace(go.Scatter(x=front[x], y=front[y], mode="markers+lines", name="Pareto front",
                                 text=[f"trial {t}" for t in front["trial"]], marker={"size": 10}))
        for col, axis in ((x, "x"), (y, "y")):
            limit = (constraints or {}).get(col)
            if limit is not None:
                add = fig.add_vline if axis == "x" else fig.add_hline
                add(limit, line_dash="dash", annotation_text=f"{col} limit")
        fig.update_layout(title=f"{title} {y} vs {x}".strip(), xaxis_title=x, yaxis_title=y, height=420)
        figs.append(fig)
    if _has(ok, "latency_ms") and _has(ok, "size_kb"):
        fig = go.Figure(go.Scatter3d(
            x=ok["size_kb"], y=ok["latency_ms"], z=ok["metric"], mode="markers",
            marker={"size": 5, "color": ok["on_front"].astype(int), "colorscale": [[0, "lightgrey"], [1, "crimson"]]},
            text=[f"trial {t}" for t in ok["trial"]],
        ))
        fig.update_layout(title=f"{title} front in 3D".strip(), height=560,
                          scene={"xaxis_title": "size_kb", "yaxis_title": "latency_ms", "zaxis_title": "metric"})
        figs.append(fig)
    return figs


def write_html(figs: list[Any], path: str | Path, title: str, table: pd.DataFrame | None = None) -> Path:
    """One self-contained page: plotly.js embedded once, then each figure as a div."""
    p = Path(path)
    parts = [f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for i, fig in enumerate(figs):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    if table is not None and not table.empty:
        parts.append("<h2>Pareto front</h2>")
        parts.append(table.to_html(index=False, float_format=lambda v: f"{v:.4g}"))
    parts.append("</body></html>")
    return files.write_text(p, "\n".join(parts), "plots")
