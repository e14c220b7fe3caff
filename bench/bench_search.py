"""Hypervolume against evaluated trials: joint search with warm start vs random search vs
uniform baselines, equal budget, several seeds (issue 5).

    python bench/bench_search.py --study studies/quickstart.yaml --trials 50 --random-trials 200 --seeds 0 1 2

For each seed it runs (in a scratch folder, SQLite):
- ``joint``: the study as written (NSGA-II, warm start, early stopping);
- ``random``: the same space with optuna's RandomSampler, no warm start, no early stopping;
then evaluates the uniform baselines once (all-int8, all-4-bit, global magnitude pruning at
50/80/90%, fixed-ratio SVD at 0.5/0.25) with the same fine-tune. Hypervolume is normalised
by the fp32 model (reference: metric 0, 2x fp32 size and latency) and reported after
10/25/50/100/200 trials as median [min, max] over seeds. Early stopping is measured by the
fine-tune steps it saved and, with ``--early-stop-loss``, by what it lost: every stopped
candidate is re-trained with the full budget (same seed) to see whether it would have reached
the front.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import optuna

from autocompress.policy import Policy
from autocompress.results._front import study_hypervolume, trials_table
from autocompress.search import load_study_config
from autocompress.search._controller import run_search
from autocompress.search.study_config import Budget, SamplerConfig, StudyConfig

BUDGETS = (10, 25, 50, 100, 200)
BASELINES = {
    "all-int8": {"default": {"weight_bits": 8, "act_bits": 8}},
    "all-4-bit": {"default": {"weight_bits": 4}},
    "magnitude 50%": {"default": {"sparsity": 0.5}},
    "magnitude 80%": {"default": {"sparsity": 0.8}},
    "magnitude 90%": {"default": {"sparsity": 0.9}},
    "SVD 0.5": {"default": {"rank": 0.5}},
    "SVD 0.25": {"default": {"rank": 0.25}},
}


def hv_curve(study: optuna.Study) -> dict[int, float]:
    df = trials_table(study)
    return {b: study_hypervolume(study, df[df["trial"] < b]) for b in BUDGETS if b <= len(df)}


def run(cfg: StudyConfig, out: Path, name: str, trials: int, sampler: SamplerConfig, warm: bool,
        early: bool) -> optuna.Study:
    c = replace(cfg, name=name, output_dir=out / name, storage=f"sqlite:///{out / name / 'study.db'}",
                budget=Budget(trials=trials), sampler=sampler, warm_start=replace(cfg.warm_start, enabled=warm),
                early_stop=early)
    return run_search(c, progress=False).study


def baselines(cfg: StudyConfig) -> tuple[dict[str, tuple[float, float, float | None]], float]:
    from autocompress.search._context import build_context

    ctx = build_context(cfg, progress=False)
    res = {}
    for label, raw in BASELINES.items():
        policy = Policy.from_dict(raw)
        try:
            size = ctx.size_of(policy)
        except Exception as e:  # e.g. SVD of a grouped conv: the baseline does not apply
            print(f"baseline {label}: skipped ({e})")
            continue
        metric = ctx.evaluator.evaluate(policy, None, seed=cfg.seed).metric
        res[label] = (metric, size / 1024.0, ctx.latency_of(policy))
    import numpy as np

    from autocompress.results._front import HV_REFERENCE
    from autocompress.results._pareto import normalised_hypervolume

    names = [o.name for o in cfg.objectives]
    pick = {"metric": 0, "size": 1, "latency": 2}
    pts = np.array([[v[pick[n]] for n in names] for v in res.values()], dtype=float)
    fp32 = {"metric": ctx.evaluator.base_metric, "size": ctx.fp32_bytes / 1024.0, "latency": ctx.fp32_latency_ms}
    ref = np.array([0.0 if o.direction == "maximize" else HV_REFERENCE for o in cfg.objectives])
    hv = normalised_hypervolume(pts, np.array([fp32[n] for n in names], dtype=float),
                                list(cfg.directions), reference=ref)
    return res, float(hv)


def early_stop_report(study: optuna.Study, cfg: StudyConfig) -> str:
    df = trials_table(study)
    stopped = df[df["status"] == "early_stopped"]
    steps_total = cfg.finetune.steps * int((df["status"].isin(["evaluated", "early_stopped"])).sum())
    saved = 0
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("status") == "early_stopped":
            saved += cfg.finetune.steps - max(s for s, _ in t.user_attrs.get("curve", [[cfg.finetune.steps, 0]]))
    return f"early-stopped {len(stopped)} candidates, saving {saved} of {steps_total} fine-tune steps"


def early_stop_loss(study: optuna.Study, cfg: StudyConfig) -> str:
    """What early stopping lost: every stopped candidate is fine-tuned to the full budget (same
    seed, so the number is the one it would have reached) and put back in the trials table.

    Reports how many of them would have been on the final front, and the hypervolume with
    and without their full-budget metrics.
    """
    from autocompress.results._front import column_names, objectives_of
    from autocompress.results._pareto import pareto_mask
    from autocompress.search._context import build_context

    stopped = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("status") == "early_stopped"]
    if not stopped:
        return "early stopping stopped nothing: nothing lost"
    ctx = build_context(cfg, progress=False)
    df = trials_table(study)
    full = df.copy()
    min_metric = cfg.constraints.min_metric
    for t in stopped:
        metric = ctx.evaluator.evaluate(Policy.from_dict(t.user_attrs["policy"]), None, seed=cfg.seed).metric
        row = full.index[full["trial"] == t.number]
        full.loc[row, "metric"] = metric
        full.loc[row, "feasible"] = min_metric is None or metric >= min_metric
    cols = column_names(study)
    dirs = [o["direction"] for o in objectives_of(study)]
    feas = full[full["feasible"]]
    on_front = set(feas["trial"][pareto_mask(feas[cols].to_numpy(dtype=float), dirs)])
    lost = sorted(t.number for t in stopped if t.number in on_front)
    return (f"of {len(stopped)} early-stopped candidates, {len(lost)} would have reached the front with the full "
            f"fine-tune (trials {lost}); hypervolume {study_hypervolume(study, df):.4f} as run vs "
            f"{study_hypervolume(study, full):.4f} had they all been trained")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", default="studies/quickstart.yaml")
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--random-trials", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--early-stop-loss", action="store_true",
                    help="re-train every early-stopped candidate fully: would it have reached the front?")
    ap.add_argument("--device", default=None, help="override the latency device (e.g. xeon-8480: deterministic)")
    ap.add_argument("--sampler", default=None, choices=["nsga2", "tpe", "gp", "random"],
                    help="override the joint search's sampler (tpe: multivariate, 10 startup trials)")
    ap.add_argument("--sampler-settings", default=None, help='with --sampler: its settings as JSON, e.g. '
                    '\'{"n_startup_trials": 5}\' (replaces the defaults above)')
    ap.add_argument("--output", default=None, help="also write the per-seed curves as JSON here")
    ap.add_argument("--no-baselines", action="store_true", help="skip the uniform baselines")
    ap.add_argument("--keep", default=None, help="keep the studies in this folder (default: a scratch folder)")
    args = ap.parse_args()
    base_cfg = load_study_config(args.study)
    if args.sampler:
        opts = {"tpe": {"multivariate": True, "n_startup_trials": 10}}.get(args.sampler, {})
        if args.sampler_settings:
            opts = json.loads(args.sampler_settings)
        base_cfg = replace(base_cfg, sampler=SamplerConfig(args.sampler, opts))
    if args.device:
        from autocompress.search.study_config import Objective

        objs = tuple(Objective(o.name, o.direction, args.device) if o.name == "latency" else o
                     for o in base_cfg.objectives)
        base_cfg = replace(base_cfg, objectives=objs)
    curves: dict[str, list[dict[int, float]]] = {"joint": [], "random": []}
    start = time.time()
    with tempfile.TemporaryDirectory() as d:
        out = Path(args.keep or d)
        for seed in args.seeds:
            cfg = replace(base_cfg, seed=seed)
            joint = run(cfg, out, f"joint-{seed}", args.trials, cfg.sampler, warm=True, early=cfg.early_stop)
            curves["joint"].append(hv_curve(joint))
            print(f"seed {seed}: {early_stop_report(joint, cfg)}")
            if args.early_stop_loss:
                print(f"seed {seed}: {early_stop_loss(joint, cfg)}")
            if args.random_trials > 0:  # 0: joint only (e.g. comparing samplers against earlier random runs)
                rnd = run(cfg, out, f"random-{seed}", args.random_trials, SamplerConfig("random"), warm=False,
                          early=False)
                curves["random"].append(hv_curve(rnd))
        base, base_hv = ({}, float("nan")) if args.no_baselines else baselines(base_cfg)
    if args.output:
        Path(args.output).write_text(json.dumps({"study": args.study, "seeds": args.seeds,
                                                 "sampler": [base_cfg.sampler.name, dict(base_cfg.sampler.settings)],
                                                 "curves": curves}, indent=1))
    print(f"\nwall time {time.time() - start:.0f} s; study {args.study}; seeds {args.seeds}; "
          f"joint sampler {base_cfg.sampler.name} {dict(base_cfg.sampler.settings)}")
    print("| method | " + " | ".join(f"HV@{b}" for b in BUDGETS) + " |")
    print("|---|" + "---|" * len(BUDGETS))
    for method, runs in curves.items():
        cells = []
        for b in BUDGETS:
            vals = [c[b] for c in runs if b in c]
            cells.append(f"{statistics.median(vals):.4f} [{min(vals):.4f}, {max(vals):.4f}]" if vals else "-")
        print(f"| {method} | " + " | ".join(cells) + " |")
    print(f"| uniform baselines (all {len(base)} points together) | {base_hv:.4f} |")
    print("\n| uniform baseline | metric | size KB | latency ms |\n|---|---|---|---|")
    for label, (m, s, lat) in base.items():
        print(f"| {label} | {m:.4f} | {s:.1f} | {lat if lat is None else round(lat, 4)} |")


if __name__ == "__main__":
    main()
