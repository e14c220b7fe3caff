"""The record a Ray trial sends back (no cluster needed: the trial function's body runs here)."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from _cluster import write_study

from autocompress.search import load_study_config
from autocompress.search._context import build_context
from autocompress.search.ray_tune._trial import NODE_SECONDS, NODE_STARTED, evaluate_candidate


def test_record_says_when_and_how_long_the_node_worked(tmp_path: Path) -> None:
    cfg = load_study_config(write_study(tmp_path))
    ctx = build_context(cfg, progress=False)
    trial = optuna.create_study().ask()
    ctx.bound.sample(trial)
    before = time.time()
    record = evaluate_candidate({"number": 0, "params": trial.params, "front": []}, cfg.to_dict(),
                                ctx.base.state_dict())
    after = time.time()
    attrs = record["user_attrs"]
    ms = 1e-3  # both are recorded to the millisecond
    assert before - ms <= attrs[NODE_STARTED] <= after + ms
    assert attrs[NODE_SECONDS] <= after - before + ms
    # the node's time covers the fine-tune (a rejected candidate has none)
    assert attrs[NODE_SECONDS] >= attrs.get("finetune_seconds", 0.0) - ms
    assert record["values"] is not None
