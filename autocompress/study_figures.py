"""Figures for browsing a study, shared by the dashboard and the static report.

- ``hypervolume_figure``: the normalised hypervolume of the feasible trials over trial number;
- ``layer_figure``: one trial's policy, layers x (weight bits, act bits, sparsity, rank) as a
  heatmap coloured by how hard each setting compresses, beside the layers' deploy bytes;
- ``front_policies_figure``: the Pareto front's policies at a glance, front trials x layers.

plotly is imported inside each function (nothing heavy at import).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

SETTINGS = ("weight_bits", "act_bits", "sparsity", "rank")
_HEAT_SCALE = [[0.0, "#f7fbff"], [0.5, "#6baed6"], [1.0, "#08306b"]]


def _bits_strength(bits: int) -> float:
    """0 for float32, rising as bits fall (16 -> 0.2, 8 -> 0.4, 4 -> 0.6, 2 -> 0.8)."""
    return 1.0 - math.log2(bits) / 5.0


def _rank_strength(rank: str) -> float:
    if rank == "dense":
        return 0.0
    value = float(rank)
    return 1.0 - value if value <= 1.0 else 0.5  # an absolute rank: strength unknown without shapes


def strength(setting: str, value: Any) -> float:
    """How hard one setting compresses, in [0, 1]: the heatmap's colour."""
    if setting in ("weight_bits", "act_bits"):
        return _bits_strength(int(value))
    if setting == "sparsity":
        return float(value)
    return _rank_strength(str(value))


def _label(setting: str, row: pd.Series) -> str:
    if setting == "sparsity":
        s = float(row["sparsity"])
        return "0" if s == 0 else f"{s:g} {row['pattern']}"
    return str(row[setting])


def layer_figure(layers: pd.DataFrame, title: str = "") -> Any:
    """Heatmap of a trial's per-layer settings (see ``_browse.layer_table``) with layer sizes."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, column_widths=[0.72, 0.28], horizontal_spacing=0.02,
                        subplot_titles=("settings (darker = more compression)", "deploy size (KB)"))
    names = layers["layer"].tolist()
    z = [[strength(s, row[s]) for s in SETTINGS] for _, row in layers.iterrows()]
    text = [[_label(s, row) for s in SETTINGS] for _, row in layers.iterrows()]
    fig.add_trace(go.Heatmap(z=z, x=list(SETTINGS), y=names, text=text, texttemplate="%{text}", zmin=0, zmax=1,
                             textfont={"size": 11},
                             colorscale=_HEAT_SCALE, showscale=False, hovertemplate="%{y}<br>%{x}: %{text}"
                             "<extra></extra>"), row=1, col=1)
    kb = [None if pd.isna(b) else float(b) / 1024.0 for b in layers["bytes"]]
    fig.add_trace(go.Bar(x=kb, y=names, orientation="h", marker_color="#4292c6",
                         text=[("" if v is None else f"{v:.2f}") for v in kb], textposition="outside", cliponaxis=False,
                         hovertemplate="%{y}: %{x:.2f} KB<extra></extra>"), row=1, col=2)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    known = [v for v in kb if v is not None]
    if known:  # room for the labels outside the longest bar
        fig.update_xaxes(range=[0, max(known) * 1.3], row=1, col=2)
    fig.update_layout(title=title, height=max(260, 60 + 34 * len(names)), showlegend=False,
                      margin={"l": 10, "r": 10, "t": 60 if title else 40, "b": 10})
    return fig


def hypervolume_figure(curve: pd.DataFrame, title: str = "hypervolume over trials") -> Any:
    """Step line of ``_browse.hypervolume_curve``: how the front grew as the search went on."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=curve["trial"], y=curve["hypervolume"], mode="lines+markers", line_shape="hv",
                               marker={"size": 4}, hovertemplate="trial %{x}<br>HV %{y:.4f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="trial", yaxis_title="hypervolume (normalised to fp32)",
                      height=320, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def _cell(row: pd.Series) -> str:
    parts = [f"{row['weight_bits']}b"]
    if float(row["sparsity"]) > 0:
        parts.append(f"s{float(row['sparsity']):g}")
    if row["rank"] != "dense":
        parts.append(f"r{row['rank']}")
    return " ".join(parts)


def front_policies_figure(tables: dict[int, pd.DataFrame], title: str = "policies on the front") -> Any:
    """Front trials x layers, coloured by weight bits, each cell naming bits, sparsity and rank."""
    import plotly.graph_objects as go

    layers = list(dict.fromkeys(name for t in tables.values() for name in t["layer"]))
    rows = [f"trial {n}" for n in tables]
    z, text = [], []
    for table in tables.values():
        by_layer = {r["layer"]: r for _, r in table.iterrows()}
        z.append([_bits_strength(int(by_layer[n]["weight_bits"])) if n in by_layer else None for n in layers])
        text.append([_cell(by_layer[n]) if n in by_layer else "" for n in layers])
    fig = go.Figure(go.Heatmap(z=z, x=layers, y=rows, text=text, texttemplate="%{text}", zmin=0, zmax=1,
                               colorscale=_HEAT_SCALE, showscale=False,
                               hovertemplate="%{y}, %{x}: %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title=title, height=max(260, 80 + 26 * len(rows)), margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig
