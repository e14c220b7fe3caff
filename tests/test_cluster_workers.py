"""Workers sharing a study through real storage, and the faults they must survive.

PostgreSQL tests need a server (127.0.0.1:5432, trust auth, database ``test``; or
``AUTOCOMPRESS_TEST_POSTGRES``) and skip with the reason when there is none. Each test uses
its own schema, dropped afterwards. Heartbeat 1 s, grace 6 s (``_cluster.FAST``).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from _cluster import (
    SMALL_SPACE,
    Proxy,
    check_budget_kept,
    check_each_candidate_tuned_once,
    cli,
    load,
    pg_base,
    pg_url,  # noqa: F401  (fixture)
    running_trial_of,
    spawn,
    write_study,
)
from optuna.trial import FrozenTrial, TrialState

pytestmark = pytest.mark.slow
SLOW_FT = {"steps": 600, "eval_every": 300, "batch_size": 32}  # seconds: long enough to be killed mid-trial


def _log(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def _retry_of(study_trials: list[FrozenTrial], lost_number: int) -> list[FrozenTrial]:
    return [t for t in study_trials if t.system_attrs.get("failed_trial") == lost_number
            and t.state == TrialState.COMPLETE]


def test_two_workers_share_the_budget(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    study = write_study(tmp_path, budget={"trials": 6})
    logs = [tmp_path / f"w{i}.log" for i in range(2)]
    procs = [spawn("worker", str(study), "--storage", pg_url, "--threads", "1", log=log) for log in logs]
    for p, log in zip(procs, logs, strict=True):
        assert p.wait(timeout=400) == 0, _log(log)
    complete = check_budget_kept(load("tiny", pg_url), 6)
    assert len(complete) == 6
    assert len(check_each_candidate_tuned_once(load("tiny", pg_url))) == 6  # per-worker sampler seeds
    assert len({t.user_attrs["worker"] for t in complete}) == 2, "both workers should have run trials"
    # `search` on a finished study runs nothing and writes the outputs
    r = cli("search", str(study), "--storage", pg_url, "--no-progress")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("0 trials run")
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"trials.csv", "front.csv", "pareto.html"}


@pytest.mark.parametrize("n", [2, 4])
def test_parallel_workers_never_finetune_the_same_candidate_twice(tmp_path: Path, pg_url: str,  # noqa: F811
                                                                  n: int) -> None:
    """A space of 6 candidates, a budget of 5, n workers started together: they collide often,
    and each collision is resampled or reused, never fine-tuned again or counted twice."""
    study = write_study(tmp_path, budget={"trials": 5}, space=SMALL_SPACE)
    logs = [tmp_path / f"w{i}.log" for i in range(n)]
    procs = [spawn("worker", str(study), "--storage", pg_url, "--threads", "1", log=log) for log in logs]
    for p, log in zip(procs, logs, strict=True):
        assert p.wait(timeout=500) == 0, _log(log)
    s = load("tiny", pg_url)
    check_budget_kept(s, 5)
    tuned = check_each_candidate_tuned_once(s)
    assert len(tuned) == 5
    front = [t for t in tuned if t.user_attrs.get("status") == "evaluated"]
    assert len(front) == 5


def test_worker_killed_mid_trial_is_retried(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    study = write_study(tmp_path, budget={"trials": 4}, finetune=SLOW_FT)
    victim = spawn("worker", str(study), "--storage", pg_url, "--threads", "1", log=tmp_path / "victim.log")
    lost = running_trial_of("tiny", pg_url, victim, tmp_path / "victim.log")
    survivor = spawn("worker", str(study), "--storage", pg_url, "--threads", "1", log=tmp_path / "survivor.log")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert survivor.wait(timeout=400) == 0, _log(tmp_path / "survivor.log")
    trials = load("tiny", pg_url).trials
    assert trials[lost.number].state == TrialState.FAIL  # failed by its stale heartbeat
    retry = _retry_of(trials, lost.number)
    assert len(retry) == 1 and retry[0].params == lost.params  # the same candidate, replayed
    check_budget_kept(load("tiny", pg_url), 4)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_killed_search_resumes(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("pg_url") if kind == "postgres" else f"sqlite:///{tmp_path}/out/study.db"
    study = write_study(tmp_path, budget={"trials": 3}, finetune=SLOW_FT)
    args = ("search", str(study), "--storage", url, "--no-progress")
    driver = spawn(*args, log=tmp_path / "driver.log")
    lost = running_trial_of("tiny", url, driver, tmp_path / "driver.log")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    r = cli(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    trials = load("tiny", url).trials
    assert trials[lost.number].state == TrialState.FAIL
    assert [t.params for t in _retry_of(trials, lost.number)] == [lost.params]
    check_budget_kept(load("tiny", url), 3)
    assert (tmp_path / "out" / "front.csv").is_file()


def test_diverging_candidate_fails_with_its_reason_and_the_study_goes_on(tmp_path: Path) -> None:
    import pandas as pd

    from autocompress.search import load_study_config
    from autocompress.search._controller import run_search

    wild = {"steps": 10, "eval_every": 5, "lr": 1.0e6, "optimizer": "sgd"}
    first = run_search(load_study_config(write_study(tmp_path, budget={"trials": 2}, finetune=wild)), progress=False)
    assert [t.state for t in first.study.trials] == [TrialState.FAIL] * 2
    assert all("diverged" in t.user_attrs["fail_reason"] for t in first.study.trials)
    table = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert table["fail_reason"].str.contains("diverged").all()
    # the same study goes on with a sane learning rate; the failed candidates still count
    later = run_search(load_study_config(write_study(tmp_path, budget={"trials": 4})), progress=False)
    assert [t.state for t in later.study.trials] == [TrialState.FAIL] * 2 + [TrialState.COMPLETE] * 2


def test_storage_lost_during_the_run_is_a_clear_error_and_the_study_survives(tmp_path: Path,
                                                                              pg_url: str) -> None:  # noqa: F811
    target = urlsplit(pg_base())
    proxy = Proxy((target.hostname or "127.0.0.1", target.port or 5432))
    via = pg_url.replace(target.netloc.split("@")[-1], f"127.0.0.1:{proxy.port}", 1)
    study = write_study(tmp_path, budget={"trials": 3}, finetune=SLOW_FT)
    worker = spawn("worker", str(study), "--storage", via, "--threads", "1", log=tmp_path / "w.log")
    running_trial_of("tiny", pg_url, worker, tmp_path / "w.log")
    proxy.cut()
    start = time.monotonic()
    assert worker.wait(timeout=120) == 2, _log(tmp_path / "w.log")
    assert time.monotonic() - start < 60  # bounded retries, then give up
    last = _log(tmp_path / "w.log").strip().splitlines()[-1]
    assert last.startswith("autocompress worker: error: storage") and "unreachable" in last, last
    # nothing corrupt: the study resumes from the same database and completes
    r = cli("worker", str(study), "--storage", pg_url, "--threads", "1")
    assert r.returncode == 0, r.stderr[-2000:]
    check_budget_kept(load("tiny", pg_url), 3)
