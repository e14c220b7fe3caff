"""Reading a study without a model: layer bytes, the stored export, the study list, the report."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from dash_studies import run_tiny_study, synthetic_study

from autocompress.cli import main
from autocompress.cost import size_bytes
from autocompress.cost._layer_bytes import layer_bytes
from autocompress.errors import ConfigError
from autocompress.models import create_model
from autocompress.policy import Policy
from autocompress.results._browse import (
    LAYER_COLUMNS,
    constraint_limits,
    hypervolume_curve,
    layer_table,
    study_summaries,
)
from autocompress.results._front import study_hypervolume, trials_table
from autocompress.search.export import stored_export
from autocompress.study_report import write_study_report

PLOTLY_BANNER = "plotly.js v"  # the licence banner at the top of plotly.min.js


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, optuna.Study]:
    root = tmp_path_factory.mktemp("tiny")
    cfg = run_tiny_study(root, trials=4)
    (root / "tiny.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return root, optuna.load_study(study_name=cfg.name, storage=cfg.storage)


@pytest.fixture
def synthetic() -> optuna.Study:
    return synthetic_study(optuna.storages.InMemoryStorage(), n_trials=60, n_layers=5)


def test_layer_bytes_sum_to_the_size_model() -> None:
    model = create_model("tiny-mlp", seed=0)
    x = __import__("torch").randn(8, 64)
    for raw in ({}, {"default": {"weight_bits": 4, "sparsity": 0.5}},
                {"default": {"weight_bits": 8}, "layers": {"fc2": {"weight_bits": 32, "rank": 0.5}}}):
        policy = Policy.from_dict(raw)
        per_layer = layer_bytes(model, policy, x)
        assert list(per_layer) == ["fc1", "fc2", "fc3"]  # every compressible layer, fp32 ones included
        assert sum(per_layer.values()) == size_bytes(model, policy, x)  # tiny-mlp: no other tensors


def test_search_stores_policy_layer_bytes_and_config(tiny: tuple[Path, optuna.Study]) -> None:
    _root, study = tiny
    assert study.metric_names == ["metric", "size_kb", "latency_ms[xeon-8480]"]  # what optuna-dashboard shows
    assert study.user_attrs["study_config"]["name"] == "tiny"
    for t in study.trials:
        assert Policy.from_dict(t.user_attrs["policy"]).layers  # a real, loadable policy
        # the layers hold every tensor (a bare MLP); the file adds its header on top
        assert sum(t.user_attrs["layer_bytes"].values()) == t.user_attrs["tensor_bytes"] < t.user_attrs["size_bytes"]
        table = layer_table(t)
        assert tuple(table.columns) == LAYER_COLUMNS and table["layer"].tolist() == ["fc1", "fc2", "fc3"]


def test_stored_export_equals_cli_export(tiny: tuple[Path, optuna.Study], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root, study = tiny
    monkeypatch.setenv("AUTOCOMPRESS_CACHE", str(root / "cache"))
    for t in study.trials:
        out = tmp_path / f"cli-{t.number}.yaml"
        assert main(["export", str(root / "tiny.yaml"), "--trial", str(t.number), "-o", str(out)]) == 0
        assert stored_export(study, t.number).to_yaml() == out.read_text()


def test_stored_export_errors_name_the_fix(tiny: tuple[Path, optuna.Study]) -> None:
    old = optuna.create_study(directions=["maximize", "minimize"])  # a study from before study_config
    with pytest.raises(ConfigError, match="stores no 'study_config'.*autocompress export"):
        stored_export(old, 0)
    _root, study = tiny
    with pytest.raises(ConfigError, match="no such trial"):
        stored_export(study, 99)


def test_constraint_limits_and_summaries(synthetic: optuna.Study) -> None:
    assert constraint_limits(synthetic) == {"size_kb": 64.0, "metric": 0.5}
    storage = synthetic._storage
    optuna.create_study(study_name="empty", storage=storage, directions=["maximize", "minimize"])
    rows = study_summaries(storage).set_index("study")
    assert rows.loc["synthetic", "status"] == "done" and rows.loc["synthetic", "trials"] == 60
    assert rows.loc["synthetic", "fail"] == 2 and rows.loc["synthetic", "front"] > 0
    assert rows.loc["empty", "status"] == "empty" and rows.loc["empty", "trials"] == 0


def test_hypervolume_curve_is_monotone_and_ends_at_the_study_value(synthetic: optuna.Study) -> None:
    df = trials_table(synthetic)
    curve = hypervolume_curve(synthetic, df)
    assert curve["trial"].tolist() == list(range(60))
    assert curve["hypervolume"].is_monotonic_increasing
    assert curve["hypervolume"].iloc[-1] == pytest.approx(study_hypervolume(synthetic, df))
    assert hypervolume_curve(optuna.create_study(directions=["maximize", "minimize"])).empty


def test_report_of_200_trials_is_self_contained_and_small(tmp_path: Path) -> None:
    study = synthetic_study(optuna.storages.InMemoryStorage(), n_trials=200, n_layers=12)
    path = write_study_report(study, tmp_path / "report.html")
    text = path.read_text()
    assert path.stat().st_size <= 5_000_000, path.stat().st_size
    assert text.count(PLOTLY_BANNER) == 1  # plotly.js embedded once
    assert "<script src=" not in text  # nothing fetched from the network
    assert text.count("Plotly.newPlot") >= 5  # 3 projections, 3D, hypervolume, front policies
    assert "policies on the front" in text and "hypervolume over trials" in text


def test_report_cli_and_empty_study(tiny: tuple[Path, optuna.Study], tmp_path: Path) -> None:
    root, _study = tiny
    out = tmp_path / "r" / "report.html"
    assert main(["report", str(root / "tiny.yaml"), "-o", str(out)]) == 0
    assert out.stat().st_size > 1_000_000 and "size_kb limit" in out.read_text()
    empty = optuna.create_study(study_name="nothing", directions=["maximize", "minimize"])
    assert "No finished trials yet" in write_study_report(empty, tmp_path / "empty.html").read_text()
