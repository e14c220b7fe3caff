"""A tiny study end to end through the CLI: search -> pareto -> export -> apply, resume,
and bad input. The applied artifact's size must equal the trial's predicted size, and its
validation metric must match the search's within fine-tune noise."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
import yaml

from autocompress import Policy
from autocompress.cli import main
from autocompress.models import MODELS, ModelSpec, register_model
from autocompress.tasks import Task, TrainConfig
from autocompress.tasks._datasets import load_digits_data

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _study(tmp_path: Path, trials: int, device: str = "xeon-8480", batch: int = 1) -> Path:
    latency = {"device": device} if batch == 1 else {"device": device, "batch": batch}
    study = {
        "name": "tiny",
        "task": "digits-cnn",
        "space": str(ROOT / "search_spaces" / "joint.yaml"),
        "objectives": {"metric": "maximize", "size": "minimize", "latency": latency},
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
    # the size objective is the shipped file, header included; the tensors are predicted too
    assert report["measured"]["file_bytes"] == best.user_attrs["size_bytes"]
    assert report["measured"]["tensor_bytes"] == best.user_attrs["tensor_bytes"]
    assert report["measured"]["file_bytes"] == (tmp_path / "applied" / "model.safetensors").stat().st_size
    assert report["base_matches_export"]
    assert abs(report["measured"]["val_metric"] - best.values[0]) <= 0.02
    assert report["measured"]["tensor_bytes"] < report["fp32"]["tensor_bytes"]
    assert report["measured"]["val_held_out"] and report["finetune_data"] == "train"

    # refit on train+validation: same bytes, and the report says validation was trained on
    assert main(["apply", str(policy_file), "-o", str(tmp_path / "refit"), "--refit"]) == 0
    assert "validation accuracy (trained on)" in capsys.readouterr().out
    refit = json.loads((tmp_path / "refit" / "report.json").read_text())
    assert refit["finetune_data"] == "train+val" and not refit["measured"]["val_held_out"]
    assert refit["measured"]["tensor_bytes"] == report["measured"]["tensor_bytes"]


def test_a_search_optimises_onnx_runtime_latency_at_the_named_batch(tmp_path: Path) -> None:
    """`latency: {device: ort, batch: 16}`: every candidate is exported and timed in ONNX
    Runtime at batch 16 before training; the objective, the fp32 baseline and the exported
    policy all name that device and batch."""
    pytest.importorskip("onnxruntime")
    study_file = _study(tmp_path, trials=3, device="ort", batch=16)
    assert main(["search", str(study_file), "--no-progress"]) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
    assert study.metric_names == ["metric", "size_kb", "latency_ms[ort, batch 16]"]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3 and all(t.values[2] > 0 for t in done)
    assert len({round(t.values[2], 6) for t in done}) > 1  # measured per candidate, not one figure
    policy_file = tmp_path / "policy.yaml"
    assert main(["export", str(study_file), "--trial", str(done[0].number), "-o", str(policy_file)]) == 0
    assert Policy.load(policy_file).meta["provenance"]["latency_device"] == "ort, batch 16"
    assert Policy.load(policy_file).meta["provenance"]["latency_batch"] == 16
    # apply measures where the search measured: ONNX Runtime, batch 16, against the fp32 base there
    assert main(["apply", str(policy_file), "-o", str(tmp_path / "applied")]) == 0
    measured = json.loads((tmp_path / "applied" / "report.json").read_text())["measured"]
    assert measured["latency_batch"] == 16 and measured["latency_runtime"] == "onnxruntime"
    assert measured["latency_ms"] > 0


def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    space = ROOT / "search_spaces" / "joint.yaml"
    bad.write_text(f"name: x\ntask: digits-cnn\nspace: {space}\nbudget: {{trials: -3}}\n")
    assert main(["search", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "budget" in err[0] and "bad.yaml" in err[0]
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert main(["export", str(_study(tmp_path, 1)), "--trial", "0", "-o", str(tmp_path / "p.yaml")]) == 2


# ---- a new user's own model: residual depthwise block, attention, a layer used twice ----------
class _Block(torch.nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.dw = torch.nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.pw = torch.nn.Conv2d(c, c, 1)
        self.bn = torch.nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.bn(self.pw(self.dw(x))))


class UserHybrid(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.block = _Block(16)
        self.attn = torch.nn.MultiheadAttention(16, 2, batch_first=True)
        self.shared = torch.nn.Linear(16, 16)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.block(torch.relu(self.stem(x))).flatten(2).transpose(1, 2)
        t = t + self.attn(t, t, t, need_weights=False)[0]
        t = torch.relu(self.shared(torch.relu(self.shared(t))))  # one layer, called twice
        return self.head(t.mean(1))


def user_hybrid_task() -> Task:
    if "e2e-user-hybrid" not in MODELS.names():
        register_model("e2e-user-hybrid", ModelSpec(UserHybrid, (1, 8, 8), 10))
    return Task("e2e-user-hybrid", "e2e-user-hybrid", load_digits_data, train=TrainConfig(epochs=3))


def test_user_model_with_attention_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # outside the repository: the space is found by its bare name
    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(tmp_path / "cache"))
    study = {"name": "user", "task": f"{__name__}:user_hybrid_task", "space": "joint",
             "objectives": {"metric": "maximize", "size": "minimize", "latency": {"device": "xeon-8480"}},
             "budget": {"trials": 4}, "sampler": {"name": "random"}, "seed": 0,
             "finetune": {"steps": 10, "eval_every": 5}, "warm_start": {"enabled": True, "uniform_bits": [8]}}
    (tmp_path / "user.yaml").write_text(yaml.safe_dump(study))
    assert main(["search", "user.yaml", "--no-progress"]) == 0
    db = tmp_path / "runs" / "user" / "study.db"
    assert main(["pareto", str(db)]) == 0  # the study's database is enough
    assert main(["export", str(db), "--trial", "0", "-o", "p.yaml"]) == 0
    policy = Policy.load(tmp_path / "p.yaml")
    assert {"attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj", "shared"} <= set(dict(policy.layers))
    capsys.readouterr()
    # the policy names user code: apply runs it only when the user says so (--study or --task)
    assert main(["apply", "p.yaml", "-o", "applied"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "user code" in err[0] and "--study" in err[0]
    assert not (tmp_path / "applied").exists()
    assert main(["apply", "p.yaml", "-o", "applied", "--study", "user.yaml"]) == 0
    report = json.loads((tmp_path / "applied" / "report.json").read_text())
    assert report["measured"]["file_bytes"] == policy.meta["predicted"]["size_bytes"]
    assert report["measured"]["tensor_bytes"] == policy.meta["predicted"]["tensor_bytes"]
    assert report["measured"]["tensor_bytes"] < report["fp32"]["tensor_bytes"]


def test_a_candidate_proposed_again_is_not_trained_again(tmp_path: Path) -> None:
    from autocompress.search import load_study_config
    from autocompress.search._controller import run_search

    study = {"name": "dup", "task": "digits-cnn", "output_dir": str(tmp_path / "out"), "seed": 0,
             "space": {"rules": [{"layers": "default", "weight_bits": [8]}]},  # one candidate only
             "budget": {"trials": 3}, "sampler": {"name": "random"}, "warm_start": False,
             "finetune": {"steps": 10, "eval_every": 5}}
    (tmp_path / "dup.yaml").write_text(yaml.safe_dump(study))
    s = run_search(load_study_config(tmp_path / "dup.yaml"), progress=False).study
    t0, *again = sorted(s.trials, key=lambda t: t.number)
    assert t0.user_attrs["status"] == "evaluated" and "duplicate_of" not in t0.user_attrs
    for t in again:
        assert t.user_attrs["duplicate_of"] == 0 and t.values == t0.values
        assert t.user_attrs["curve"] == t0.user_attrs["curve"]
    # none counts against the budget; the space is exhausted, so the search stops (not loops)
    from autocompress.search._explore import GIVE_UP_AFTER
    from autocompress.study._budget import census

    assert len(again) == GIVE_UP_AFTER and census(s).counted == 1
    front = pd.read_csv(tmp_path / "out" / "front.csv")
    assert list(front["trial"]) == [0]  # shown once
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert (trials["duplicate_of"].dropna() == 0).sum() == GIVE_UP_AFTER
