"""The ``ort`` latency device: candidates timed end to end in ONNX Runtime at the study's batch
size, and the batch size as part of a study's latency objective."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from autocompress import Policy
from autocompress.errors import ConfigError
from autocompress.models import MODELS, create_model

pytest.importorskip("onnxruntime", reason="the ort device is the onnx extra: pip install 'autocompress[onnx]'")

from autocompress.cost.profiling import OrtTimer

INT8 = Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}})


def test_a_candidate_is_timed_once_and_the_estimate_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    model, x = create_model("tiny-mlp", seed=0).eval(), MODELS.get("tiny-mlp").example_input(batch=4)
    timer = OrtTimer(model, x, calibration=MODELS.get("tiny-mlp").example_input(batch=32))
    calls: list[Policy] = []
    real = timer._time
    monkeypatch.setattr(timer, "_time", lambda p: calls.append(p) or real(p))
    est = timer.estimate(INT8)
    again = Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}, "distill": {"alpha": 0.9}})
    assert timer.estimate(again).total_ms == est.total_ms and len(calls) == 1  # distillation: same model
    assert est.total_ms > 0 and est.device == "ort" and est.model == "ort-measured"
    assert "batch 4" in est.notes[0] and "ONNX Runtime" in est.notes[0]
    assert timer.measure(Policy()) > 0 and len(calls) == 2


def test_the_batch_is_part_of_the_latency_objective(tmp_path: Path) -> None:
    from autocompress.search import load_study_config

    def study(latency: object) -> Path:
        raw = {"name": "s", "task": "digits-cnn", "space": {"rules": [{"layers": "default", "weight_bits": [8]}]},
               "objectives": {"metric": "maximize", "latency": latency}, "budget": {"trials": 1},
               "output_dir": str(tmp_path / "out")}
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    cfg = load_study_config(study({"device": "ort", "batch": 64}))
    assert cfg.latency_device == "ort" and cfg.latency_batch == 64
    assert cfg.to_dict()["objectives"]["latency"] == {"device": "ort", "batch": 64}
    plain = load_study_config(study({"device": "local"}))
    assert plain.latency_batch == 1 and plain.to_dict()["objectives"]["latency"] == {"device": "local"}
    for bad, msg in ((0, "batch: must be an integer >= 1, got 0"), ("big", "must be an integer >= 1, got 'big'")):
        with pytest.raises(ConfigError, match=msg):
            load_study_config(study({"device": "ort", "batch": bad}))


def test_the_ort_predictor_times_the_fp32_base_and_candidates_at_the_batch() -> None:
    from autocompress.search._latency import latency_predictor

    model = create_model("tiny-concat-cnn", seed=0).eval()
    x = MODELS.get("tiny-concat-cnn").example_input(batch=8)
    pred = latency_predictor("ort", model, x, calibration=x)
    assert pred.device == "ort, batch 8" and pred.model == "ort-measured"
    fp32, int8 = pred.predict(Policy()), pred.predict(INT8)
    assert fp32.total_ms > 0 and int8.total_ms > 0
    with torch.no_grad():
        assert model(x).shape[0] == 8


def test_latency_check_of_the_ort_device_reports_its_repeatability() -> None:
    from autocompress.cost.profiling.check import run_ort_check

    model, x = create_model("tiny-mlp", seed=0).eval(), MODELS.get("tiny-mlp").example_input(batch=2)
    report = run_ort_check(model, x, n_policies=3, name="tiny-mlp")
    assert len(report.measured_ms) == 3 and len(report.predicted_ms["ort-measured"]) == 3
    assert [s.latency_model for s in report.scores] == ["ort-measured"] and report.scores[0].n == 3
    assert "ort-measured" in report.table()


def test_the_ort_device_without_onnx_runtime_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from autocompress.search._latency import latency_predictor

    real = builtins.__import__

    def no_ort(name: str, *args: object, **kw: object):  # type: ignore[no-untyped-def]
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    with pytest.raises(ConfigError, match=r"latency device 'ort': .*pip install 'autocompress\[onnx\]'"):
        latency_predictor("ort", create_model("tiny-mlp"), MODELS.get("tiny-mlp").example_input(batch=1))
