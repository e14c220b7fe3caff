"""A study as one self-contained HTML page to share: summary, Pareto plots, hypervolume over
trials, the front's policies and the front table.

plotly's JavaScript is embedded once, at the top, whatever the number of figures, so the page
opens offline; a 200-trial study stays well under 5 MB (plotly.js alone is ~4.8 MB).

Example::

    write_study_report(optuna.load_study(study_name="quickstart", storage=url), "report.html")
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from autocompress import files
from autocompress.report import pareto_figures
from autocompress.results import constraint_limits, hypervolume_curve, layer_table, study_hypervolume, trials_table
from autocompress.study import StudyRecord
from autocompress.study_figures import front_policies_figure, hypervolume_figure

TABLE_COLUMNS = ("trial", "metric", "size_kb", "latency_ms", "size_bytes", "status")
MAX_FRONT_POLICIES = 40  # rows of the front-policies heatmap; the table lists the whole front


def _summary(study: optuna.Study, df: pd.DataFrame, limits: dict[str, float]) -> str:
    counts = df["state"].value_counts().to_dict() if not df.empty else {}
    status = df["status"].value_counts().to_dict() if not df.empty else {}
    record = StudyRecord.of(study).baseline
    base = record.as_dict() if record is not None else {}
    items = [
        f"trials: {len(df)} ({', '.join(f'{str(k).lower()} {v}' for k, v in counts.items()) or 'none'})",
        "outcomes: " + (", ".join(f"{k or 'none (failed)'} {v}" for k, v in status.items()) or "none"),
        f"Pareto front: {int(df['on_front'].sum()) if not df.empty else 0} trials; "
        f"hypervolume (normalised to fp32): {study_hypervolume(study, df) if not df.empty else 0.0:.4f}",
        "fp32 baseline: " + (", ".join(f"{k} {v:.4g}" for k, v in base.items() if v is not None) or "not recorded"),
        "limits: " + (", ".join(f"{k} {v:g}" for k, v in limits.items()) or "none"),
    ]
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _front_policies(study: optuna.Study, df: pd.DataFrame) -> Any | None:
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    front = df[df["on_front"]].sort_values("trial").head(MAX_FRONT_POLICIES)
    tables = {int(n): layer_table(trials[int(n)]) for n in front["trial"]}
    tables = {n: t for n, t in tables.items() if not t.empty}
    return front_policies_figure(tables) if tables else None


def study_figures(study: optuna.Study, df: pd.DataFrame, limits: dict[str, float]) -> list[Any]:
    """The report's figures, in page order (none for a study without finished trials)."""
    if df.empty:
        return []
    figs = pareto_figures(df, study.study_name, limits)
    figs.append(hypervolume_figure(hypervolume_curve(study, df)))
    policies = _front_policies(study, df)
    if policies is not None:
        figs.append(policies)
    return figs


def _lean_template() -> Any:
    """plotly's default look in ~300 bytes: the full default template costs ~6.5 KB per figure."""
    import plotly.graph_objects as go

    axis = {"gridcolor": "white", "linecolor": "white", "zerolinecolor": "white"}
    wall = {**axis, "backgroundcolor": "#E5ECF6", "showbackground": True}
    return go.layout.Template(layout={
        "font": {"color": "#2a3f5f"}, "paper_bgcolor": "white", "plot_bgcolor": "#E5ECF6",
        "xaxis": {**axis, "automargin": True}, "yaxis": {**axis, "automargin": True},
        "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3"],
        "scene": {"xaxis": wall, "yaxis": wall, "zaxis": wall},
    })


def write_study_report(study: optuna.Study, path: str | Path, limits: dict[str, float] | None = None) -> Path:
    """Write the report of ``study`` to ``path``; ``limits`` default to the stored constraints."""
    df = trials_table(study)
    limits = constraint_limits(study) if limits is None else limits
    title = f"autocompress study {study.study_name}"
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
             "<body style='font-family: sans-serif; margin: 1.5em'>", f"<h1>{html.escape(title)}</h1>",
             _summary(study, df, limits)]
    figs = study_figures(study, df, limits)
    if not figs:
        parts.append("<p>No finished trials yet: nothing to plot.</p>")
    template = _lean_template()
    for i, fig in enumerate(figs):
        fig.update_layout(template=template)
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    front = df[df["on_front"]] if not df.empty else df
    if not front.empty:
        cols = [c for c in TABLE_COLUMNS if c in front]
        parts.append("<h2>Pareto front</h2>")
        parts.append(front[cols].sort_values("trial").to_html(index=False, float_format=lambda v: f"{v:.4g}"))
    parts.append("</body></html>")
    return files.write_text(path, "\n".join(parts), "report")
