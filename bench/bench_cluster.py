"""Scale-out: candidates per minute with 1 vs 2 PostgreSQL workers and 1 vs 2 Ray nodes.

Run: ``python bench/bench_cluster.py [--trials 12] [--steps 40] [--postgres URL] [--skip ray|postgres]
[--ray-storage sqlite|journal] [--sizes 1 2]``.

One thread per trial everywhere (``worker --threads 1``; Ray trials reserve one CPU and
set one torch thread), on a tiny digits-cnn study with a random sampler, so both setups see
the same candidates. Target: >= 1.8x from 1 to 2 on a 2-core machine.

- *span*: from the first trial's start to the last trial's end, read from the study's
  storage: the steady-state rate (process start and context building before the first
  trial are excluded; Ray actor start-up is inside it).
- *steady*: the rate once every worker has finished its first trial (trials started after
  that moment, divided by the time from it to the last trial's end). A Ray trial actor
  imports torch and builds its search context inside its first trial (5-6 s here); a
  PostgreSQL worker does that before its first trial starts. *steady* compares the two
  backends on the same footing; *span* keeps Ray's start-up in.
- *wall*: the whole command(s), start-up included.
- *fine-tune s*: the mean of the trials' own fine-tune times (``finetune_seconds``): how fast
  the machine ran the work itself. 1 -> 2 it grows where two trials share caches, memory
  bandwidth or, on a VM, a host core; that part of a shortfall is the hardware's.
- *busy*: the share of the workers' span spent inside fine-tunes (sum of fine-tune times /
  (workers x span)); the rest is per-trial overhead (storage, Tune, start-up). Speed-up =
  2 x (busy 2 / busy 1) x (fine-tune s 1 / fine-tune s 2).
- Ray only, per trial, medians in seconds (from the node's ``node_started`` / ``node_seconds``
  beside the storage's start and completion): *dispatch* (the driver's ``ask`` to the node
  starting the trial: sampling, Tune scheduling, actor reuse), *node overhead* (the node's
  time outside the fine-tune: building the candidate, cost models), *report* (the node's end
  to the driver's ``tell``) and *node idle* (a node's end of one trial to its start of the
  next: what the cluster loses per trial).
- *peak RSS / worker*: the largest VmHWM among the processes that ran trials (the worker
  processes; for Ray, the trial actors), polled every second (the poller's own CPU stays
  out of the figures).

PostgreSQL: a fresh schema per run in the server at ``--postgres`` (trust auth), dropped after.
Ray: a loopback cluster of 1 or 2 nodes with one CPU each (``autocompress.testing``); the
driver's study lives in SQLite (the default ``study.db``) or, with ``--ray-storage journal``,
in an Optuna journal file (its writes are appends, not SQL transactions).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import optuna
import yaml

REPO = Path(__file__).resolve().parents[1]


def study_file(tmp: Path, trials: int, steps: int, storage: str | None = None) -> Path:
    raw: dict[str, object] = {
        "name": "bench", "task": "digits-cnn", "space": str(REPO / "search_spaces" / "joint.yaml"),
        "objectives": {"metric": "maximize", "size": "minimize", "latency": {"device": "xeon-8480"}},
        "budget": {"trials": trials}, "sampler": {"name": "random"},
        "finetune": {"steps": steps, "eval_every": steps, "batch_size": 64},
        "warm_start": False, "early_stop": False, "output_dir": str(tmp / "out"),
    }
    if storage is not None:
        raw["storage"] = storage
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def watch(procs: list[subprocess.Popen[bytes]], pids: Callable[[], Iterable[int]]) -> dict[int, int]:
    """Wait for ``procs``; return the peak RSS seen for every pid ``pids()`` listed meanwhile."""
    from autocompress.testing import process_tree_hwm

    peak: dict[int, int] = {}
    while any(p.poll() is None for p in procs):
        for pid in pids():
            peak[pid] = max(peak.get(pid, 0), process_tree_hwm(pid))
        time.sleep(1.0)
    for p in procs:
        if p.returncode != 0:
            raise SystemExit(f"{p.args!r} exited with {p.returncode}")
    return peak


def measure(study: optuna.Study, wall: float, peak: dict[int, int]) -> dict[str, float]:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    ends = [t.datetime_complete for t in done if t.datetime_complete]
    starts = [t.datetime_start for t in done if t.datetime_start]
    span = (max(ends) - min(starts)).total_seconds()
    ran = {int(str(t.user_attrs["worker"]).rsplit(":", 1)[1]) for t in done}
    mem = max((peak.get(pid, 0) for pid in ran), default=0)
    ft = [float(t.user_attrs.get("finetune_seconds", "nan")) for t in done]
    return {"trials": len(done), "span": span, "wall": wall, "rate": 60 * len(done) / span,
            "steady": steady_rate(done), "rss": mem / 2**20, "ft": sum(ft) / len(ft),
            "busy": sum(ft) / (len(ran) * span), **breakdown(done)}


class _Timing(NamedTuple):
    worker: str
    asked: float  # the driver's ask (the storage's start)
    started: float  # the node's start
    node_s: float  # the node's work on it
    finetune_s: float
    told: float  # the driver's tell (the storage's completion)


def breakdown(done: list[optuna.trial.FrozenTrial]) -> dict[str, float]:
    """Ray trials: median dispatch, node overhead, report and node idle seconds (module docstring)."""
    rows = [_Timing(str(t.user_attrs["worker"]), t.datetime_start.timestamp(), float(t.user_attrs["node_started"]),
                    float(t.user_attrs["node_seconds"]), float(t.user_attrs.get("finetune_seconds", 0.0)),
                    t.datetime_complete.timestamp()) for t in done if "node_started" in t.user_attrs]
    if not rows:
        return {}
    idle = []
    for worker in {r.worker for r in rows}:
        mine = sorted((r for r in rows if r.worker == worker), key=lambda r: r.started)
        idle += [b.started - (a.started + a.node_s) for a, b in itertools.pairwise(mine)]
    return {"dispatch": statistics.median(r.started - r.asked for r in rows),
            "node_extra": statistics.median(r.node_s - r.finetune_s for r in rows),
            "report": statistics.median(r.told - (r.started + r.node_s) for r in rows),
            "idle": statistics.median(idle) if idle else float("nan")}


def steady_rate(done: list[optuna.trial.FrozenTrial]) -> float:
    """Candidates per minute after every worker's first trial (see the module docstring)."""
    first_end: dict[str, float] = {}
    for t in sorted(done, key=lambda t: t.datetime_complete):
        first_end.setdefault(str(t.user_attrs["worker"]), t.datetime_complete.timestamp())
    warm = max(first_end.values())
    later = [t for t in done if t.datetime_start.timestamp() >= warm]
    if not later:
        return float("nan")
    return 60 * len(later) / (max(t.datetime_complete.timestamp() for t in later) - warm)


def cli(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "autocompress.cli", *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_postgres(base: str, workers: int, trials: int, steps: int) -> dict[str, float]:
    import psycopg

    schema = f"ac_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{base}?options=-csearch_path%3D{schema}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            study = study_file(Path(tmp), trials, steps)
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            start = time.monotonic()
            procs = [cli("worker", str(study), "--storage", url, "--threads", "1", env=env) for _ in range(workers)]
            peak = watch(procs, lambda: [p.pid for p in procs])
            from autocompress.study._storage import open_storage

            return measure(optuna.load_study(study_name="bench", storage=open_storage(url, 2)),
                           time.monotonic() - start, peak)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def bench_ray(nodes: int, trials: int, steps: int, store: str = "sqlite") -> dict[str, float]:
    from autocompress.study._storage import open_storage
    from autocompress.testing import LocalRayCluster

    with tempfile.TemporaryDirectory() as tmp, LocalRayCluster(nodes=nodes) as cluster:
        storage = f"sqlite:///{Path(tmp) / 'out' / 'study.db'}" if store == "sqlite" else (
            f"journal:///{Path(tmp) / 'out' / 'study.log'}")
        study = study_file(Path(tmp), trials, steps, storage)
        env = {**cluster.env, "OMP_NUM_THREADS": "1"}
        start = time.monotonic()
        proc = cli("search", str(study), "--backend", "ray", "--address", cluster.address, "--no-progress", env=env)
        peak = watch([proc], cluster.pids)
        return measure(optuna.load_study(study_name="bench", storage=open_storage(storage)),
                       time.monotonic() - start, peak)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--postgres", default=os.environ.get("AUTOCOMPRESS_TEST_POSTGRES",
                                                         "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--skip", choices=("ray", "postgres"), action="append", default=[])
    ap.add_argument("--ray-storage", choices=("sqlite", "journal"), default="sqlite",
                    help="the Ray driver's study storage (sqlite: the default study.db)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2], choices=(1, 2),
                    help="cluster sizes to run (nodes / workers); speed-ups are against the first")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[tuple[str, dict[str, float]]] = []
    for n in args.sizes:
        if "postgres" not in args.skip:
            rows.append((f"postgres, {n} worker{'s' * (n > 1)}", bench_postgres(args.postgres, n, args.trials,
                                                                              args.steps)))
        if "ray" not in args.skip:
            rows.append((f"ray/{args.ray_storage}, {n} node{'s' * (n > 1)}",
                         bench_ray(n, args.trials, args.steps, args.ray_storage)))
    print(f"digits-cnn, {args.trials} trials x {args.steps} fine-tune steps, 1 thread per trial, "
          f"{os.cpu_count()} CPUs")
    print(f"{'setup':<22}{'trials':>7}{'span s':>9}{'wall s':>9}{'cand/min':>10}{'speedup':>9}"
          f"{'steady/min':>12}{'speedup':>9}{'fine-tune s':>12}{'busy':>6}{'peak RSS/worker':>17}")
    for name, r in rows:
        one = next(v for k, v in rows if k.split(",")[0] == name.split(",")[0])  # the first size run
        print(f"{name:<22}{r['trials']:>7.0f}{r['span']:>9.1f}{r['wall']:>9.1f}{r['rate']:>10.1f}"
              f"{r['rate'] / one['rate']:>8.2f}x{r['steady']:>12.1f}{r['steady'] / one['steady']:>8.2f}x"
              f"{r['ft']:>12.2f}{r['busy']:>6.2f}{r['rss']:>13.0f} MiB")
    parts = [(name, r) for name, r in rows if "dispatch" in r]
    if parts:
        print(f"\n{'per trial, median s':<22}{'dispatch':>10}{'node overhead':>15}{'report':>8}{'node idle':>11}")
        for name, r in parts:
            print(f"{name:<22}{r['dispatch']:>10.3f}{r['node_extra']:>15.3f}{r['report']:>8.3f}{r['idle']:>11.3f}")


if __name__ == "__main__":
    main()
