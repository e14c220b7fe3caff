"""One fine-tune per candidate: the claim rule on a real (in-memory) Optuna storage.

The rule every worker applies the same way: the lowest-numbered live trial holding a
candidate's key owns it; a COMPLETE holder's result is reused; a counted FAILED holder fails
the newcomer; a lower trial still being sampled is waited for."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from autocompress import Policy
from autocompress.evaluate._config import FinetuneConfig
from autocompress.search._controller import make_sampler, worker_seed
from autocompress.search._explore import EXPLORE_AFTER, GIVE_UP_AFTER, ExploringSampler, Streak
from autocompress.study._claims import CANDIDATE, DUPLICATE_OF, Claims, candidate_key, reuse
from autocompress.study.records import UNCOUNTED

FT = FinetuneConfig()


def _policy(bits: int) -> Policy:
    return Policy.from_dict({"default": {"weight_bits": bits}})


def _key(bits: int) -> str:
    return candidate_key(_policy(bits), FT, 0)


def _claims(**kw: Any) -> Claims:
    return Claims(lambda params: _policy(int(params["bits"])), lambda p: candidate_key(p, FT, 0),
                  poll_s=0.02, **kw)


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=["maximize", "minimize"])


def _running(study: optuna.Study, bits: int | None) -> optuna.Trial:
    t = study.ask()
    if bits is not None:
        t.set_user_attr(CANDIDATE, _key(bits))
    return t


def test_key_depends_on_policy_finetune_and_seed_not_meta() -> None:
    assert _key(8) == candidate_key(_policy(8).with_meta(note="exported", trial=4), FT, 0)
    assert _key(8) != _key(4)
    assert _key(8) != candidate_key(_policy(8), replace(FT, steps=FT.steps + 1), 0)
    assert _key(8) != candidate_key(_policy(8), FT, 1)


def test_complete_holder_is_reused() -> None:
    study = _study()
    t0 = _running(study, 8)
    t0.set_user_attr("curve", [0.5, 0.7])
    study.tell(t0, [0.9, 100.0])
    t1 = _running(study, 8)
    verdict = _claims().decide(study, t1.number, _key(8))
    assert verdict.kind == "done" and verdict.twin_number == 0
    assert reuse(t1, verdict.twin) == [0.9, 100.0]
    study.tell(t1, [0.9, 100.0])
    frozen = study.trials[1]
    assert frozen.user_attrs[DUPLICATE_OF] == 0 and frozen.user_attrs["curve"] == [0.5, 0.7]
    assert UNCOUNTED in frozen.user_attrs
    t2 = _running(study, 8)  # a duplicate of a duplicate points at the original
    assert _claims().decide(study, t2.number, _key(8)).twin_number in (0,)


def test_other_candidates_are_new() -> None:
    study = _study()
    study.tell(_running(study, 8), [0.9, 100.0])
    t1 = _running(study, 4)
    assert _claims().decide(study, t1.number, _key(4)).kind == "new"


def test_lowest_numbered_running_trial_owns_the_candidate() -> None:
    study = _study()
    t0, t1 = _running(study, 8), _running(study, 8)
    claims = _claims()
    assert claims.decide(study, t1.number, _key(8)).kind == "running"  # t1 yields to t0
    assert claims.decide(study, t0.number, _key(8)).kind == "new"  # t0 fine-tunes
    assert claims.decide(study, t0.number, _key(8), anywhere=True).kind == "running"  # enqueued-partly: yields


def test_counted_failure_fails_the_repeat_but_a_lost_trial_does_not() -> None:
    study = _study()
    t0 = _running(study, 8)
    study.tell(t0, state=TrialState.FAIL)
    t1 = _running(study, 8)
    assert _claims().decide(study, t1.number, _key(8)).kind == "failed"
    study2 = _study()
    lost = _running(study2, 8)
    lost.set_user_attr(UNCOUNTED, "worker died")
    study2.tell(lost, state=TrialState.FAIL)
    again = _running(study2, 8)
    assert _claims().decide(study2, again.number, _key(8)).kind == "new"


def test_waiting_enqueued_trial_is_keyed_by_replaying_its_params() -> None:
    study = _study()
    study.enqueue_trial({"bits": 8})  # trial 0: WAITING, a retry or a warm start
    storage = study._storage
    tid = storage.create_new_trial(study._study_id)  # trial 1: another worker's, running (no pop)
    storage.set_trial_user_attr(tid, CANDIDATE, _key(8))
    assert [t.state for t in study.trials] == [TrialState.WAITING, TrialState.RUNNING]
    assert _claims().decide(study, 1, _key(8)).kind == "running"
    assert _claims().decide(study, 1, _key(4)).kind == "new"


def test_a_lower_trial_still_sampling_is_waited_for() -> None:
    study = _study()
    t0 = _running(study, None)  # asked, not yet keyed
    t1 = _running(study, 8)

    def finish_sampling() -> None:
        time.sleep(0.2)
        t0.set_user_attr(CANDIDATE, _key(8))

    thread = threading.Thread(target=finish_sampling)
    thread.start()
    start = time.monotonic()
    verdict = _claims().decide(study, t1.number, _key(8))
    thread.join()
    assert verdict.kind == "running" and time.monotonic() - start >= 0.15


def test_waiting_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    study = _study()
    _running(study, None)  # a worker that died while sampling, on a storage without heartbeats
    t1 = _running(study, 8)
    calls = []
    claims = _claims(max_wait_s=0.1, fail_stale=lambda: calls.append(1))
    assert claims.decide(study, t1.number, _key(8)).kind == "new"
    assert calls and "still being sampled" in caplog.text


def test_worker_seeds_differ_and_the_search_keeps_the_study_seed() -> None:
    seeds = {worker_seed(0) for _ in range(16)}
    assert len(seeds) == 16
    assert worker_seed(0, "host:1") == worker_seed(0, "host:1") != worker_seed(1, "host:1")


def test_exploring_sampler_leaves_a_reproposed_candidate_behind() -> None:
    base = optuna.samplers.TPESampler(seed=0, n_startup_trials=1)
    sampler = ExploringSampler(base, seed=1)
    study = optuna.create_study(sampler=sampler)
    streak = Streak(sampler)
    choices = list(range(50))
    study.optimize(lambda t: t.suggest_categorical("c", choices) * 0.0, n_trials=3)
    streak.record(True)
    streak.record(True)
    assert streak.count == EXPLORE_AFTER
    seen = []
    for _ in range(5):
        streak.before_ask()
        assert sampler.explore
        t = study.ask()
        seen.append(t.suggest_categorical("c", choices))
        streak.after_sample()
        assert not sampler.explore
        study.tell(t, 0.0)
    assert len(set(seen)) >= 3  # at random, not TPE's favourite
    streak.record(False)
    assert streak.count == 0 and not streak.exhausted
    for _ in range(GIVE_UP_AFTER):
        streak.record(True)
    assert streak.exhausted


def test_every_sampler_kind_is_wrapped() -> None:
    from autocompress.search import load_study_config

    cfg = load_study_config("studies/quickstart.yaml")
    for name in ("tpe", "nsga2", "random", "gp"):
        s = make_sampler(replace(cfg, sampler=replace(cfg.sampler, name=name, settings={})))
        assert isinstance(s, ExploringSampler)
