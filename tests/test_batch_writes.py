"""A trial's parameters and attrs written in one transaction (search/_batch.py), same records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from sqlalchemy import event

from autocompress.study._batch import batched, fast_path

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _fill(trial: optuna.trial.Trial) -> None:
    trial.suggest_categorical("fc.weight_bits", [2, 4, 8])
    trial.suggest_float("distill.temperature", 1.0, 8.0)
    trial.suggest_int("rank", 1, 16)
    trial.set_user_attr("policy", {"layers": {"fc": {"weight_bits": 4}}})
    trial.set_user_attr("size_bytes", 1234)
    trial.set_constraint("size", -1.0)
    trial.set_constraint("metric", 0.5)


def _records(study: optuna.Study) -> list[tuple[Any, ...]]:
    return [(t.params, t.distributions, t.user_attrs, t.system_attrs, t.state, t.values) for t in study.trials]


def _storage(kind: str, tmp_path: Path) -> optuna.storages.BaseStorage | str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(tmp_path / "study.log")))
    return optuna.storages.InMemoryStorage()


@pytest.mark.parametrize("kind", ["sqlite", "journal", "memory"])
def test_batched_writes_store_the_same_records(kind: str, tmp_path: Path) -> None:
    plain_dir, batch_dir = tmp_path / "plain", tmp_path / "batch"
    plain_dir.mkdir()
    batch_dir.mkdir()
    studies = []
    for folder, use_batch in ((plain_dir, False), (batch_dir, True)):
        study = optuna.create_study(storage=_storage(kind, folder), sampler=optuna.samplers.RandomSampler(seed=3),
                                    directions=["maximize", "minimize"])
        for _ in range(4):
            trial = study.ask()
            if use_batch:
                with batched(trial):
                    _fill(trial)
            else:
                _fill(trial)
            assert trial.params and trial.user_attrs["size_bytes"] == 1234
            study.tell(trial, [0.9, 1.0])
        studies.append(study)
    assert _records(studies[0]) == _records(studies[1])
    assert fast_path(studies[1]._storage) == (kind == "sqlite")


def _commits(study: optuna.Study) -> list[int]:
    seen = [0]
    engine = study._storage._backend.engine  # type: ignore[attr-defined]

    def count(_conn: Any) -> None:
        seen[0] += 1

    event.listen(engine, "commit", count)
    return seen


def test_one_transaction_instead_of_one_per_write(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_storage("sqlite", tmp_path), sampler=optuna.samplers.RandomSampler(seed=0))
    seen = _commits(study)
    trial = study.ask()
    before = seen[0]
    _fill(trial)
    plain = seen[0] - before
    trial = study.ask()
    before = seen[0]
    with batched(trial):
        _fill(trial)
    assert seen[0] - before == plain - 6, (plain, seen[0] - before)  # 7 writes in 1 commit; reads unchanged


def test_a_block_that_raises_writes_nothing(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_storage("sqlite", tmp_path))
    trial = study.ask()
    with pytest.raises(RuntimeError, match="boom"), batched(trial):
        trial.suggest_int("x", 0, 3)
        trial.set_user_attr("a", 1)
        raise RuntimeError("boom")
    stored = study.trials[0]
    assert stored.params == {} and stored.user_attrs == {}


def test_checks_still_run_and_a_failed_batch_is_all_or_nothing(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_storage("sqlite", tmp_path))
    first = study.ask()
    first.suggest_int("x", 0, 3)
    study.tell(first, 1.0)
    trial = study.ask()
    with pytest.raises(ValueError), batched(trial):  # same name, incompatible distribution
        trial.set_user_attr("a", 1)
        trial.suggest_float("y", 0.0, 1.0)
        trial.suggest_categorical("x", ["a", "b"])
    stored = study.trials[1]
    assert stored.params == {} and stored.user_attrs == {}
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError), batched(first):
        first.set_user_attr("late", True)
    assert "late" not in study.trials[0].user_attrs


def test_constraints_set_twice_in_a_block_keep_the_first(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_storage("sqlite", tmp_path))
    trial = study.ask()
    with batched(trial), pytest.warns(UserWarning, match="already set"):
        trial.set_constraint("size", -1.0)
        trial.set_constraint("size", 5.0)
    assert study.trials[0].system_attrs["constraints:size"] == -1.0


def test_a_write_for_another_trial_is_refused(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_storage("sqlite", tmp_path))
    one, two = study.ask(), study.ask()
    with pytest.raises(RuntimeError, match="got a write for trial id"), batched(one):
        one.storage.set_trial_user_attr(two._trial_id, "a", 1)
