"""What a search writes beside its storage: tables, plots and the resolved study config."""

from __future__ import annotations

from pathlib import Path

import optuna
import yaml

from autocompress import files
from autocompress.report import pareto_figures, write_html
from autocompress.results import front_table, trials_table
from autocompress.search._context import SearchContext


def write_outputs(ctx: SearchContext, study: optuna.Study) -> dict[str, Path]:
    out = ctx.cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "config": out / "study_resolved.yaml",
        "trials": out / "trials.csv",
        "front": out / "front.csv",
        "plots": out / "pareto.html",
    }
    files.write_text(paths["config"], yaml.safe_dump(ctx.cfg.to_dict(), sort_keys=False), "resolved study")
    df = trials_table(study)
    files.write_text(paths["trials"], df.to_csv(index=False), "trials table")
    front = front_table(study)
    files.write_text(paths["front"], front.to_csv(index=False), "front table")
    c = ctx.cfg.constraints
    limits = {"size_kb": c.max_size_kb, "latency_ms": c.max_latency_ms, "metric": c.min_metric}
    figs = pareto_figures(df, ctx.cfg.name, {k: v for k, v in limits.items() if v is not None}) if not df.empty else []
    write_html(figs, paths["plots"], f"autocompress study {ctx.cfg.name}", front)
    return paths
