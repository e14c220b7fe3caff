"""The typed records of a study: what the search writes, readers get back typed, and records
written by older versions (missing or oddly typed fields) still read."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState, create_trial

from autocompress.study import records as rec
from autocompress.study.records import Baseline, Objective, StudyRecord, TrialRecord, write_measured, write_study_record


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=["maximize", "minimize"])


def test_trial_record_reads_what_the_search_writes() -> None:
    study = _study()
    attrs = {rec.STATUS: rec.EVALUATED, rec.SIZE_BYTES: 9424, rec.TENSOR_BYTES: 7144, rec.LATENCY_MS: 0.0877,
             rec.CONSTRAINTS: [0.0, -3.5], rec.CURVE: [[50, 0.9], [100, 0.95]], rec.LAYER_BYTES: {"fc": 100},
             rec.POLICY: {"default": {"weight_bits": 8}}, rec.CANDIDATE: "abc", rec.FINETUNE_SECONDS: 1.5,
             rec.WORKER: "host:1"}
    study.add_trial(create_trial(values=[0.97, 9.2], user_attrs=attrs))
    r = TrialRecord.of(study.trials[0])
    assert (r.status, r.size_bytes, r.tensor_bytes, r.latency_ms) == ("evaluated", 9424, 7144, 0.0877)
    assert r.constraints == (0.0, -3.5) and r.curve == ((50, 0.9), (100, 0.95)) and dict(r.layer_bytes) == {"fc": 100}
    assert r.feasible and r.duplicate_of is None and r.values == (0.97, 9.2) and r.worker == "host:1"


def test_duplicates_rejected_and_infeasible_trials_are_not_feasible() -> None:
    study = _study()
    study.add_trial(create_trial(values=[0.9, 1.0], user_attrs={rec.DUPLICATE_OF: 0, rec.UNCOUNTED: "same"}))
    study.add_trial(create_trial(values=[0.9, 1.0], user_attrs={rec.STATUS: rec.REJECTED}))
    study.add_trial(create_trial(values=[0.9, 1.0], user_attrs={rec.CONSTRAINTS: [0.0, 2.0]}))
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={rec.FAIL_REASON: "NaN"}))
    records = [TrialRecord.of(t) for t in study.trials]
    assert [r.feasible for r in records] == [False, False, False, False]
    assert records[0].duplicate_of == 0 and records[3].fail_reason == "NaN"


def test_old_or_odd_records_read_as_missing() -> None:
    study = _study()
    study.add_trial(create_trial(values=[0.5, 2.0], user_attrs={rec.SIZE_BYTES: "big", rec.CURVE: "x",
                                                                 rec.POLICY: [1], rec.CONSTRAINTS: []}))
    r = TrialRecord.of(study.trials[0])
    assert r.size_bytes is None and r.curve == () and r.policy is None and r.constraints == (0.0,)
    assert r.status is None and r.feasible  # a pre-status COMPLETE trial within limits
    assert StudyRecord.of(study) == StudyRecord()


def test_study_record_round_trip() -> None:
    study = _study()
    write_study_record(study, objectives=[Objective("metric", "maximize"), Objective("size", "minimize")],
                       baseline=Baseline(0.9667, 158.8, None), provenance={"base_sha256": "ab" * 32},
                       study_config={"name": "q"})
    write_measured(study, 12, {"file_bytes": 9424, "test_metric": 0.97})
    r = StudyRecord.of(study)
    assert r.version == rec.RECORD_VERSION
    assert [o.name for o in r.objectives] == ["metric", "size"] and r.objectives[0].device is None
    assert r.baseline == Baseline(0.9667, 158.8, None) and r.provenance["base_sha256"] == "ab" * 32
    assert r.study_config == {"name": "q"} and r.measured == {12: {"file_bytes": 9424, "test_metric": 0.97}}
