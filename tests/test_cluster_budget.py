"""Fast checks of the shared-study rules: retries replay params, the budget counts every worker,
dead workers' trials are found, storage errors are clear. No model, no server needed."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from _cluster import write_study
from optuna.trial import TrialState

from autocompress.cli import main
from autocompress.errors import ConfigError
from autocompress.study._budget import BudgetGate, census
from autocompress.study._liveness import Liveness
from autocompress.study._retry import MAX_RETRY, give_up_and_requeue, retried_numbers
from autocompress.study._storage import _with_driver, open_storage, safe_url
from autocompress.study.records import FAIL_REASON as FAIL
from autocompress.study.records import HEARTBEAT as BEAT

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(storage: optuna.storages.BaseStorage | None = None) -> optuna.Study:
    return optuna.create_study(storage=storage, directions=["maximize", "minimize"])


def _start(study: optuna.Study) -> optuna.trial.Trial:
    trial = study.ask()
    trial.suggest_categorical("fc1.weight_bits", [4, 8])
    trial.suggest_float("distill.alpha", 0.0, 0.9)
    return trial


def test_requeued_trial_replays_the_same_params_and_is_not_counted() -> None:
    study = _study()
    trial = _start(study)
    params = dict(trial.params)
    give_up_and_requeue(study, trial._trial_id, "worker lost")
    first = study.trials[0]
    assert first.state == TrialState.FAIL and first.user_attrs[FAIL] == "worker lost"
    retry = _start(study)  # pops the WAITING retry
    assert retry.params == params
    assert study.trials[1].system_attrs["failed_trial"] == 0
    study.tell(retry, [0.9, 10.0])
    assert census(study).counted == 1  # the lost trial does not count, its retry does
    assert retried_numbers(study.trials) == {0}


def test_retries_are_bounded() -> None:
    study = _study()
    trial = _start(study)
    for _ in range(MAX_RETRY):
        give_up_and_requeue(study, trial._trial_id, "lost")
        trial = _start(study)
    give_up_and_requeue(study, trial._trial_id, "lost")
    assert not study.get_trials(states=(TrialState.WAITING,))
    assert "given up" in study.trials[-1].user_attrs[FAIL]
    assert census(study).counted == 1  # the last failure counts: nothing will replace it


def test_budget_gate_runs_waits_and_stops(tmp_path: Path) -> None:
    study = _study(open_storage(f"journal:///{tmp_path}/s.log"))
    gate = BudgetGate(budget=3, liveness=Liveness(study), poll_s=0.01)
    for _ in range(2):
        t = _start(study)
        study.tell(t, [0.5, 1.0])
    assert gate.step(study) == "run"
    other = _start(study)  # another worker's trial
    assert gate.step(study) == "wait"  # budget taken, but that trial may still die
    late = _start(study)
    assert gate.surplus(study, late.number)  # asked when the budget was taken: given back
    give_up_and_requeue(study, late._trial_id, "not run")
    study.tell(other, [0.5, 1.0])
    assert gate.step(study) == "done"


def test_journal_trial_of_a_dead_worker_is_failed_and_retried(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOCOMPRESS_GRACE_S", "2")
    study = _study(open_storage(f"journal:///{tmp_path}/s.log"))
    dead = _start(study)
    study._storage.set_trial_system_attr(dead._trial_id, BEAT, time.time() - 60)
    alive = _start(study)
    live = Liveness(study)
    assert live.enabled
    live.beat(alive._trial_id)
    live.fail_stale()
    trials = study.trials
    assert trials[dead.number].state == TrialState.FAIL
    assert "no heartbeat" in trials[dead.number].user_attrs[FAIL]
    assert trials[alive.number].state == TrialState.RUNNING
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [w.system_attrs["fixed_params"] for w in waiting] == [dead.params]


def test_storage_url_helpers() -> None:
    assert _with_driver("postgresql://u@h/db").startswith(("postgresql+psycopg://", "postgresql+psycopg2://"))
    assert _with_driver("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert safe_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert safe_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_worker_refuses_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = write_study(tmp_path)
    assert main(["worker", str(study)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SQLite" in err[0]
    assert "postgresql://" in err[0] and "journal:///" in err[0] and "--single-worker" in err[0]


def test_unreachable_storage_at_start_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL driver is an extra: pip install 'autocompress[postgres]'")
    monkeypatch.setenv("AUTOCOMPRESS_RETRY_S", "0.05")
    study = write_study(tmp_path)
    start = time.monotonic()
    assert main(["worker", str(study), "--storage", "postgresql://nobody@127.0.0.1:9/none"]) == 2
    assert time.monotonic() - start < 30  # bounded retries
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unreachable after 3 tries" in err[0], err


def test_ray_backend_without_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from autocompress.search._controller import require_ray

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("ray") else real(name))
    with pytest.raises(ConfigError, match=r"autocompress\[ray\]"):
        require_ray()


def test_early_stopping_memory_travels_to_ray_trials() -> None:
    import json

    from autocompress.search._early_stop import Completed, FrontStopper
    from autocompress.search.ray_tune._trial import _stopper, front_snapshot

    here = FrontStopper(min_curves=1, completed=[Completed(1000.0, 0.1, 0.9, {5: 0.5, 10: 0.9})])
    there = _stopper(json.loads(json.dumps(front_snapshot(here))), FrontStopper(min_curves=1))
    assert there.completed == here.completed
    assert there.should_stop(2000.0, 0.2, 5, 0.3) == here.should_stop(2000.0, 0.2, 5, 0.3) is True
