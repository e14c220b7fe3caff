"""What a search writes beside its storage: tables, plots and the resolved study config."""

from __future__ import annotations

from pathlib import Path

import optuna
import yaml

from autocompress.report import pareto_figures, write_html
from autocompress.search._context import SearchContext
from autocompress.search._front import front_table, trials_table


def write_outputs(ctx: SearchContext, study: optuna.Study) -> dict[str, Path]:
    out = ctx.cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "config": out / "study_resolved.yaml",
        "trials": out / "trials.csv",
        "front": out / "front.csv",
        "plots": out / "pareto.html",
    }
    paths["config"].write_text(yaml.safe_dump(ctx.cfg.to_dict(), sort_keys=False))
    df = trials_table(study)
    df.to_csv(paths["trials"], index=False)
    front = front_table(study)
    front.to_csv(paths["front"], index=False)
    c = ctx.cfg.constraints
    limits = {"size_kb": c.max_size_kb, "latency_ms": c.max_latency_ms, "metric": c.min_metric}
    figs = pareto_figures(df, ctx.cfg.name, {k: v for k, v in limits.items() if v is not None}) if not df.empty else []
    write_html(figs, paths["plots"], f"autocompress study {ctx.cfg.name}", front)
    return paths
