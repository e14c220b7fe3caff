"""A tiny study end to end through the CLI: search -> pareto -> export -> apply, resume,
and bad input. The applied artifact's size must equal the trial's predicted size, and its
validation metric must match the search's within fine-tune noise."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml

from autocompress import Policy
from autocompress.cli import main

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _study(tmp_path: Path, trials: int, device: str = "xeon-8480") -> Path:
    study = {
        "name": "tiny",
        "task": "digits-cnn",
        "space": str(ROOT / "search_spaces" / "joint.yaml"),
        "objectives": {"metric": "maximize", "size": "minimize", "latency": {"device": device}},
        "constraints": {"max_size_kb": 120},
        "budget": {"trials": trials},
        "sampler": {"name": "nsga2", "population_size": 4},
        "finetune": {"steps": 20, "eval_every": 10, "lr": 0.0005},
        "warm_start": {"enabled": True, "uniform_bits": [8]},
        "output_dir": str(tmp_path / "out"),
        "seed": 0,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_search_export_apply_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study_file = _study(tmp_path, trials=5)
    assert main(["search", str(study_file), "--no-progress"]) == 0
    out = tmp_path / "out"
    for name in ("trials.csv", "front.csv", "pareto.html", "study_resolved.yaml", "study.db"):
        assert (out / name).is_file(), name
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 5
    assert study.metric_names == ["metric", "size_kb", "latency_ms[xeon-8480]"]

    # resume: a larger budget runs only the missing trials
    assert main(["search", str(study_file), "--no-progress", "--trials", "7"]) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 7

    assert main(["pareto", str(study_file)]) == 0
    evaluated = [t for t in study.trials if t.user_attrs.get("status") == "evaluated"]
    best = max(evaluated, key=lambda t: t.values[0])
    policy_file = tmp_path / "policy.yaml"
    assert main(["export", str(study_file), "--trial", str(best.number), "-o", str(policy_file)]) == 0
    policy = Policy.load(policy_file)
    assert policy.meta["predicted"]["size_bytes"] == best.user_attrs["size_bytes"]
    assert policy.meta["provenance"]["base_sha256"]

    capsys.readouterr()
    assert main(["apply", str(policy_file), "-o", str(tmp_path / "applied")]) == 0
    report = json.loads((tmp_path / "applied" / "report.json").read_text())
    assert report["measured"]["tensor_bytes"] == best.user_attrs["size_bytes"]
    assert report["base_matches_export"]
    assert abs(report["measured"]["val_metric"] - best.values[0]) <= 0.02
    assert report["measured"]["tensor_bytes"] < report["fp32"]["tensor_bytes"]


def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    space = ROOT / "search_spaces" / "joint.yaml"
    bad.write_text(f"name: x\ntask: digits-cnn\nspace: {space}\nbudget: {{trials: -3}}\n")
    assert main(["search", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "budget" in err[0] and "bad.yaml" in err[0]
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert main(["export", str(_study(tmp_path, 1)), "--trial", "0", "-o", str(tmp_path / "p.yaml")]) == 2
