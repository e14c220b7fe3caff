"""HTML fragments built from data: the studies table, a trial's figures, option lists."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from autocompress_dashboards.data import StudyView, TrialDetail

STUDY_COLUMNS = ("study", "status", "trials", "budget", "complete", "running", "pruned", "fail", "front",
                 "last_update")
_CELL = {"border": "1px solid #ddd", "padding": "3px 8px", "textAlign": "left", "fontSize": "13px"}


def table(rows: Sequence[Mapping[Any, Any]], columns: tuple[str, ...] | list[str], table_id: str | None = None) -> Any:
    from dash import html

    head = html.Tr([html.Th(c, style=_CELL) for c in columns])
    body = [html.Tr([html.Td(_fmt(r.get(c)), style=_CELL) for c in columns]) for r in rows]
    props: dict[str, Any] = {"style": {"borderCollapse": "collapse", "margin": "6px 0"}}
    if table_id:
        props["id"] = table_id
    return html.Table([html.Thead(head), html.Tbody(body)], **props)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def studies_table(df: pd.DataFrame) -> Any:
    from dash import html

    if df.empty:
        return html.P("This storage holds no study yet.")
    cols = [c for c in STUDY_COLUMNS if c in df]
    return table(df.to_dict("records"), cols, table_id="studies")


def trial_options(view: StudyView) -> list[dict[str, Any]]:
    """Dropdown options: every finished trial; front trials first (best metric first), starred."""
    done = view.finished
    if done.empty:
        return []
    done = done.sort_values(["on_front", "metric", "trial"], ascending=[False, False, True])
    out = []
    for _, r in done.iterrows():
        mark = "★ " if r["on_front"] else ("✗ " if not r["feasible"] else "")
        out.append({"label": f"{mark}trial {int(r['trial'])}  (metric {r['metric']:.3f}, {r['size_kb']:.1f} KB)",
                    "value": int(r["trial"])})
    return out


def _ratio(value: Any, base: Any) -> str:
    try:
        return f"{float(base) / float(value):.2f}x smaller" if value and base else ""
    except (TypeError, ValueError):
        return ""


def trial_summary(detail: TrialDetail, view: StudyView) -> Any:
    """The trial's predicted figures (cost models + short fine-tune) beside the fp32 baseline."""
    from dash import html

    r, base, rec = detail.row, view.baseline, detail.record
    rows = [
        {"figure": "validation metric", "predicted": r.get("metric"), "fp32": base.get("metric"), "note": ""},
        {"figure": "size (KB, artifact file)", "predicted": r.get("size_kb"), "fp32": base.get("size_kb"),
         "note": _ratio(r.get("size_kb"), base.get("size_kb"))},
        {"figure": "latency (ms, predicted)", "predicted": r.get("latency_ms"), "fp32": base.get("latency_ms"),
         "note": _ratio(r.get("latency_ms"), base.get("latency_ms")).replace("smaller", "faster")},
    ]
    measured = view.measured.get(detail.number)
    columns: tuple[str, ...] = ("figure", "predicted", "fp32", "note")
    if measured:  # recorded by `autocompress apply` on this trial's exported policy
        columns = ("figure", "predicted", "measured", "fp32", "note")
        rows[0]["measured"] = measured.get("val_metric")
        # the size objective is the artifact file (header included); older records measured tensors only
        shipped = measured.get("file_bytes") or measured.get("tensor_bytes")
        rows[1]["measured"] = shipped / 1024.0 if shipped else None
        rows[2]["measured"] = measured.get("latency_ms")
        rows.append({"figure": "test metric (applied artifact)", "predicted": None,
                     "measured": measured.get("test_metric"), "fp32": measured.get("fp32_test_metric"), "note": ""})
    status = f"{r.get('status') or r.get('state')}" + (" · on the Pareto front" if r.get("on_front") else "")
    if not r.get("feasible"):
        status += " · infeasible (breaks a constraint)"
    extra = [f"status: {status}"]
    if detail.distill:
        extra.append("distillation: " + ", ".join(f"{k} {v:.3g}" for k, v in detail.distill.items()))
    if rec.finetune_seconds is not None:
        extra.append(f"fine-tune: {rec.finetune_seconds} s")
    if rec.fail_reason:
        extra.append(f"failure: {rec.fail_reason}")
    if rec.duplicate_of is not None:
        extra.append(f"the same candidate as trial {rec.duplicate_of} (its result, reused; not counted)")
    notes = [html.Div(e, style={"fontSize": "13px"}) for e in extra]
    if not measured:
        notes.append(html.Div("Measured figures: run `autocompress apply` on the exported policy.",
                              style={"fontSize": "12px", "color": "#666"}))
    return html.Div([table(rows, columns, table_id=f"summary-table-{detail.number}"),
                     *notes])
