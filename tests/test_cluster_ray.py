"""The Ray backend on a real two-node cluster (loopback: head 127.0.0.2, worker 127.0.0.3).

Skips when Ray is not installed (``pip install 'autocompress[ray]'``) or a loopback cluster
cannot start here. The cluster is stopped by PID, never with ``ray stop``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from _cluster import SMALL_SPACE, check_budget_kept, check_each_candidate_tuned_once, cli, cli_env, load, write_study

from autocompress.testing import LocalRayCluster

pytestmark = pytest.mark.slow
pytest.importorskip("ray.tune", reason="Ray is an optional extra: pip install 'autocompress[ray]'")


@pytest.fixture
def cluster() -> Iterator[LocalRayCluster]:
    try:
        c = LocalRayCluster(nodes=2).__enter__()
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"a loopback Ray cluster cannot start here: {e}")
    try:
        yield c
    finally:
        c.stop()


def test_ray_backend_uses_both_nodes_and_writes_the_optuna_backends_outputs(tmp_path: Path,
                                                                            cluster: LocalRayCluster) -> None:
    on_ray, here = tmp_path / "ray", tmp_path / "optuna"
    on_ray.mkdir()
    here.mkdir()
    env = {**cli_env(), **cluster.env}
    r = cli("search", str(write_study(on_ray, budget={"trials": 6})), "--backend", "ray",
            "--address", cluster.address, "--no-progress", env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    study = load("tiny", f"sqlite:///{on_ray}/out/study.db")
    complete = check_budget_kept(study, 6)
    assert {t.user_attrs["node"] for t in complete} == {"127.0.0.2", "127.0.0.3"}
    # The same study with the Optuna backend, one thread like a Ray trial: same sampler seed,
    # same candidates in the same order, deterministic fine-tunes -> the same files.
    r = cli("search", str(write_study(here, budget={"trials": 6})), "--no-progress", env=cli_env())
    assert r.returncode == 0, r.stderr[-3000:]
    files = {p.name for p in (on_ray / "out").iterdir() if p.is_file()}
    assert files == {p.name for p in (here / "out").iterdir() if p.is_file()}
    for name in ("trials.csv", "front.csv"):
        got, want = pd.read_csv(on_ray / "out" / name), pd.read_csv(here / "out" / name)
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-6)


def test_ray_trials_asked_together_never_finetune_the_same_candidate(tmp_path: Path,
                                                                     cluster: LocalRayCluster) -> None:
    """Two nodes ask for candidates at once from a space of 6: duplicates are settled in the
    driver (reused or resampled), never sent to a node."""
    env = {**cli_env(), **cluster.env}
    study = write_study(tmp_path, budget={"trials": 5}, space=SMALL_SPACE)
    r = cli("search", str(study), "--backend", "ray", "--address", cluster.address, "--no-progress",
            env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    s = load("tiny", f"sqlite:///{tmp_path}/out/study.db")
    check_budget_kept(s, 5)
    tuned = check_each_candidate_tuned_once(s)
    assert len(tuned) == 5 and all("node" in t.user_attrs for t in tuned)


def _trial_actors(cluster: LocalRayCluster) -> list[int]:
    """Processes running a Tune trial (Ray names them after the trainable's actor class)."""
    found = []
    for pid in cluster.pids():
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if title.startswith("ray::") and "ImplicitFunc" in title:
            found.append(pid)
    return found


def test_a_lost_ray_worker_is_retried_with_the_same_candidate(tmp_path: Path, cluster: LocalRayCluster) -> None:
    import os
    import signal
    import time

    from _cluster import spawn, wait_for
    from optuna.trial import TrialState

    env = {**cli_env(), **cluster.env}
    study = write_study(tmp_path, budget={"trials": 3}, finetune={"steps": 400, "eval_every": 200})
    driver = spawn("search", str(study), "--backend", "ray", "--address", cluster.address, "--no-progress",
                   log=tmp_path / "driver.log", env=env)
    actor = wait_for(lambda: _trial_actors(cluster), 120, "a Ray trial to start")[0]
    time.sleep(3)  # inside the trial (context build or fine-tune)
    os.kill(actor, signal.SIGKILL)
    assert driver.wait(timeout=400) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    trials = load("tiny", f"sqlite:///{tmp_path}/out/study.db").trials
    lost = [t for t in trials if t.state == TrialState.FAIL]
    assert lost and "Ray trial errored" in lost[0].user_attrs["fail_reason"]
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == lost[0].number]
    assert [t.params for t in retry] == [lost[0].params] and retry[0].state == TrialState.COMPLETE
    check_budget_kept(load("tiny", f"sqlite:///{tmp_path}/out/study.db"), 3)
