"""Deep Compression's LeNet results (Han et al., ICLR 2016, Tables 1-2), found automatically (issue 8).

    AUTOCOMPRESS_MNIST_DIR=../shared/data/mnist python bench/bench_deep_compression.py --model lenet300 --minutes 90
    AUTOCOMPRESS_MNIST_DIR=../shared/data/mnist python bench/bench_deep_compression.py --model lenet5 --minutes 0

For each model it runs (or resumes; ``--minutes 0`` only analyses) the study
``studies/deep_compression_<model>.yaml``: a joint search over N:M sparsity, 3..8-bit
weights and distillation settings, constrained to the paper's size budget (every trained
candidate is >= 40x / >= 39x smaller than fp32). Then, on the resulting Pareto front:

- the **selected** point is the front point with the best *validation* accuracy (the test
  split is never used to choose); ``--apply N`` more front points are applied as well, for
  the plot, and reported as such;
- each applied point goes through ``autocompress apply``'s code path: a fresh base model,
  the same deterministic fine-tune but ``--final-steps`` long (with ``--refit``, on the
  training and validation images: all the labelled data, as the paper trains; the choice was
  already made on validation and the test split is still untouched) (default 4x the search's
  per-candidate budget: the search ranks candidates on a short fine-tune, the chosen one
  gets a longer one), the deploy-form artifact written to a safetensors file,
  loaded back from that file and measured: tensor bytes (what the size model predicts) and
  file bytes (header included), test error, and CPU latency at batch 1 (1 thread, median);
- the artifact uses no entropy coding: codes are fixed-rate (3..8 bits), N:M positions are
  one combinatorial rank per group. For reference only, the file's ``xz`` size is printed:
  how much an entropy coder could still take off (Deep Compression's 27 KB / 44 KB include
  Huffman coding).

Writes ``bench/results/<study name>.json`` (ignored by git), a plotly HTML plot
of the front with the paper's point beside the study's other outputs, and (with Chromium
installed) the same plot as ``bench/results/<study name>.png`` (default studies:
``deep_compression_<model>``).
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from autocompress.apply import apply_policy
from autocompress.results._front import front_table, trials_table
from autocompress.search import load_study_config
from autocompress.search._controller import open_study, run_search
from autocompress.search.export import export_policy
from autocompress.search.study_config import Budget

ROOT = Path(__file__).resolve().parent.parent
# Han et al. 2016, Table 1 (LeNet-300-100) and Table 2 (LeNet-5): sizes in KB, top-1 error.
PAPER: dict[str, dict[str, float]] = {
    "lenet300": {"ratio": 40.0, "fp32_kb": 1070.0, "kb": 27.0, "error": 0.0158, "fp32_error": 0.0164},
    "lenet5": {"ratio": 39.0, "fp32_kb": 1720.0, "kb": 44.0, "error": 0.0074, "fp32_error": 0.0080},
}


def search(model: str, minutes: float, out_dir: Path | None, study: Path | None = None) -> Any:
    cfg = load_study_config(study or ROOT / "studies" / f"deep_compression_{model}.yaml")
    if out_dir is not None:
        cfg = replace(cfg, output_dir=out_dir / model, storage=f"sqlite:///{out_dir / model / 'study.db'}")
    start = time.monotonic()
    if minutes > 0:
        run_search(replace(cfg, budget=Budget(trials=cfg.budget.trials, minutes=minutes)), progress=True)
    return cfg, open_study(cfg), time.monotonic() - start


def study_wall_minutes(study: Any) -> float:
    """First trial start to last trial end: the search's own wall time over all its runs."""
    ts = [t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete]
    if not ts:
        return 0.0
    first = min(t.datetime_start for t in ts)
    last = max(t.datetime_complete for t in ts)
    return (last - first).total_seconds() / 60.0


def apply_point(cfg: Any, study: Any, trial: int, out: Path, threads: int, steps: int,
                refit: bool) -> dict[str, Any]:
    policy = export_policy(cfg, study, trial)
    report = apply_policy(policy, out / f"trial_{trial}", threads=threads, steps=steps, refit=refit)
    raw = Path(report["artifact"]).read_bytes()
    report["measured"]["xz_bytes"] = len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))
    report["trial"] = trial
    report["policy"] = policy.to_dict()
    return report


def summarise(model: str, cfg: Any, study: Any, reports: list[dict[str, Any]], selected: int,
              seconds: float) -> dict[str, Any]:
    df = trials_table(study)
    fp32 = reports[0]["fp32"]
    paper = PAPER[model]
    points = []
    for r in reports:
        m = r["measured"]
        points.append({
            "trial": r["trial"],
            "selected": r["trial"] == selected,
            "predicted_bytes": r["predicted"].get("tensor_bytes_now"),
            "tensor_bytes": m["tensor_bytes"],
            "file_bytes": m["file_bytes"],
            "xz_bytes": m["xz_bytes"],
            "ratio": fp32["tensor_bytes"] / m["tensor_bytes"],
            "ratio_file": fp32["tensor_bytes"] / m["file_bytes"],
            "val_error": 1.0 - m["val_metric"],
            "test_error": 1.0 - m["test_metric"],
            "latency_ms": m["latency_ms"],
            "policy": r["policy"],
        })
    sel = next(p for p in points if p["selected"])
    return {
        "model": model,
        "study": cfg.name,
        "trials": len(df),
        "trained": int((df["status"] != "rejected").sum()) if "status" in df else None,
        "front_size": int(df["on_front"].sum()),
        "search_wall_minutes": study_wall_minutes(study),
        "bench_seconds": seconds,
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or torch.get_num_threads(),
        "fp32": {"tensor_bytes": fp32["tensor_bytes"], "test_error": 1.0 - fp32["test_metric"],
                 "latency_ms": fp32["latency_ms"]},
        "paper": paper,
        "entropy_coding": "none (fixed-rate codes; N:M positions as one combinatorial rank per group)",
        "selected": sel,
        "target_met": sel["ratio"] >= paper["ratio"] and sel["test_error"] <= paper["error"],
        "points": points,
    }


def plot(result: dict[str, Any], front: Any, fp32_bytes: int, path: Path) -> None:
    import plotly.graph_objects as go

    paper = result["paper"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=fp32_bytes / front["size_bytes"], y=100 * (1 - front["metric"]), mode="markers",
                             name="front (validation error)", marker={"color": "#9aa", "size": 7},
                             text=[f"trial {t}" for t in front["trial"]]))
    pts = result["points"]
    fig.add_trace(go.Scatter(x=[p["ratio"] for p in pts], y=[100 * p["test_error"] for p in pts], mode="markers",
                             name="applied artifacts (test error)", marker={"color": "#1f77b4", "size": 9},
                             text=[f"trial {p['trial']}: {p['tensor_bytes']} B" for p in pts]))
    sel = result["selected"]
    fig.add_trace(go.Scatter(x=[sel["ratio"]], y=[100 * sel["test_error"]], mode="markers",
                             name="selected (best validation)", marker={"color": "#d62728", "size": 14,
                                                                        "symbol": "diamond"}))
    fig.add_trace(go.Scatter(x=[paper["ratio"]], y=[100 * paper["error"]], mode="markers+text",
                             name="Deep Compression (paper)", text=["Han et al. 2016"], textposition="top center",
                             marker={"color": "#2ca02c", "size": 16, "symbol": "star"}))
    fig.add_hline(y=100 * result["fp32"]["test_error"], line_dash="dot", annotation_text="our fp32 (test)")
    fig.update_layout(title=f"{result['model']}: error vs compression (tensor bytes; paper incl. Huffman)",
                      xaxis_title="compression ratio vs fp32 (x)", yaxis_title="top-1 error (%)",
                      template="plotly_white")
    fig.write_html(path, include_plotlyjs="cdn")
    png = ROOT / "bench" / "results" / f"{result['study']}.png"
    if render_png(fig, png):
        print(f"plot: {path} and {png}")


def render_png(fig: Any, png: Path) -> bool:
    """A PNG of ``fig`` through headless Chromium (Debian's, as the browser test uses), if present."""
    import shutil
    import subprocess
    import tempfile

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        page = Path(d) / "plot.html"
        fig.write_html(page, include_plotlyjs=True)  # inline: the headless browser needs no network
        done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               "--window-size=900,520", f"--screenshot={png}", str(page)],
                              capture_output=True, timeout=120, check=False)
    return done.returncode == 0 and png.is_file()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["lenet300", "lenet5"], required=True)
    ap.add_argument("--minutes", type=float, default=90.0, help="search time to add (0: analyse the study as is)")
    ap.add_argument("--apply", type=int, default=2, help="front points to apply besides the selected one")
    ap.add_argument("--output-dir", type=Path, default=None, help="study folder parent (default: the study's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--study", type=Path, default=None,
                    help="another study file for this model (default: studies/deep_compression_<model>.yaml; "
                         "e.g. studies/deep_compression_lenet300_codebook.yaml)")
    ap.add_argument("--final-steps", type=int, default=None,
                    help="fine-tune steps for the applied points (default: 4x the study's search budget)")
    ap.add_argument("--refit", action="store_true",
                    help="fine-tune the applied points on train+validation (selection is already done on "
                         "validation; test stays untouched; their validation error is then not held out)")
    args = ap.parse_args()
    os.environ.setdefault("AUTOCOMPRESS_MNIST_DIR", str(ROOT.parent / "shared" / "data" / "mnist"))
    torch.set_num_threads(args.threads)
    t0 = time.monotonic()
    cfg, study, _ = search(args.model, args.minutes, args.output_dir, args.study)
    front = front_table(study)
    if front.empty:
        raise SystemExit(f"{cfg.name}: no feasible trial on the front yet; run with --minutes > 0")
    ranked = front.sort_values(["metric", "size_bytes"], ascending=[False, True])
    selected = int(ranked.iloc[0]["trial"])
    chosen = [int(t) for t in ranked["trial"].head(1 + args.apply)]
    out = cfg.output_dir / "applied"
    final_steps = args.final_steps or 4 * cfg.finetune.steps
    reports = [apply_point(cfg, study, t, out, args.threads, final_steps, args.refit) for t in chosen]
    result = summarise(args.model, cfg, study, reports, selected, time.monotonic() - t0)
    result["search_steps"], result["final_steps"] = cfg.finetune.steps, final_steps
    result["final_data"] = "train+val" if args.refit else "train"
    search_val = dict(zip(front["trial"], front["metric"], strict=True))
    for p in result["points"]:
        p["search_val_error"] = 1.0 - float(search_val[p["trial"]])
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / f"{cfg.name}.json").write_text(json.dumps(result, indent=2))
    plot(result, front, result["fp32"]["tensor_bytes"], cfg.output_dir / "deep_compression_front.html")
    paper = result["paper"]
    print(f"{args.model}: {result['trials']} trials ({result['trained']} trained), front {result['front_size']}, "
          f"search wall {result['search_wall_minutes']:.1f} min; fp32 {result['fp32']['tensor_bytes']} B, "
          f"test error {100 * result['fp32']['test_error']:.2f}%, {result['fp32']['latency_ms']:.3f} ms")
    print(f"paper: {paper['ratio']:.0f}x, {paper['kb']:.0f} KB, error {100 * paper['error']:.2f}% (Huffman coded)")
    print(f"search fine-tune {cfg.finetune.steps} steps per candidate; applied points fine-tuned {final_steps} steps "
          f"on {result['final_data']}" + (" (their 'val err' is not held out)" if args.refit else ""))
    print(f"{'trial':>5} {'sel':>3} {'bytes':>7} {'file':>7} {'xz':>7} {'ratio':>6} {'search val':>10} "
          f"{'val err':>8} {'test err':>8} {'ms':>7}")
    for p in result["points"]:
        print(f"{p['trial']:>5} {'*' if p['selected'] else '':>3} {p['tensor_bytes']:>7} {p['file_bytes']:>7} "
              f"{p['xz_bytes']:>7} {p['ratio']:>5.1f}x {100 * p['search_val_error']:>9.2f}% "
              f"{100 * p['val_error']:>7.2f}% {100 * p['test_error']:>7.2f}% {p['latency_ms']:>7.3f}")
        if p["predicted_bytes"] != p["tensor_bytes"]:
            print(f"      size model said {p['predicted_bytes']} B, the artifact holds {p['tensor_bytes']} B")
    print("target met" if result["target_met"] else "target NOT met", "by the selected (best-validation) point")


if __name__ == "__main__":
    main()
