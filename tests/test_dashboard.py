"""The dashboard's data layer and callbacks, without a browser (the browser test is slow)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from dash_studies import synthetic_study, tiny_study_config

from autocompress.policy import Policy
from autocompress.search.export import stored_export
from autocompress.study_figures import SETTINGS

pytest.importorskip("dash")

from autocompress_dashboards import callbacks as cb
from autocompress_dashboards import create_app
from autocompress_dashboards.data import DashboardError, Source


@pytest.fixture
def storage() -> optuna.storages.InMemoryStorage:
    return optuna.storages.InMemoryStorage()


@pytest.fixture
def source(storage: optuna.storages.InMemoryStorage, tmp_path: Path) -> Source:
    study = synthetic_study(storage, n_trials=40, n_layers=4)
    config = tiny_study_config(tmp_path).to_dict()  # a real resolved config, so export works
    limits = {"max_size_kb": 64.0, "min_metric": 0.5}
    study.set_user_attr("study_config", {**config, "name": "synthetic", "constraints": limits})
    study.add_trial(optuna.trial.create_trial(values=[-1.0, 90.0, 0.05], user_attrs={  # rejected by the size model
        "status": "rejected", "constraints": [0.0, 26.0], "size_bytes": 92160, "latency_ms": 0.05}))
    return Source("memory", storage_factory=lambda: storage)


def _text(component: object) -> str:
    """All the text inside a Dash component tree."""
    children = getattr(component, "children", component)
    if isinstance(children, str | int | float):
        return str(children)
    if isinstance(children, list | tuple):
        return " ".join(_text(c) for c in children)
    return "" if children is None or children is component else _text(children)


def test_app_has_the_pages_parts(source: Source) -> None:
    app = create_app("memory", refresh_s=2, storage_factory=source.storage)
    ids = str(app.layout)
    for part in ("refresh", "study", "studies-table", "pareto", "hypervolume", "trial-A", "trial-B", "layers-A",
                 "export-B", "download-A", "projection", "colour", "slot"):
        assert f"id='{part}'" in ids, part
    response = app.server.test_client().get("/_dash-layout")
    assert response.status_code == 200 and b"pareto" in response.data
    assert len(app.callback_map) >= 8


def test_studies_refresh_lists_and_keeps_the_choice(source: Source, storage: optuna.storages.BaseStorage) -> None:
    optuna.create_study(study_name="later", storage=storage, directions=["maximize", "minimize"])
    table, options, chosen, message = cb.refresh_studies(source, None)
    assert [o["value"] for o in options] == ["synthetic", "later"] and chosen == "synthetic" and message == ""
    assert "done" in _text(table) and "empty" in _text(table)
    assert cb.refresh_studies(source, "later")[2] == "later"
    assert cb.refresh_studies(source, "gone")[2] == "synthetic"


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/missing.db", "sqlite:///{tmp}/notadb.db", "not-a-url"])
def test_unopenable_storage_is_a_message(url: str, tmp_path: Path) -> None:
    (tmp_path / "notadb.db").write_text("hello")
    table, options, chosen, message = cb.refresh_studies(Source(url.format(tmp=tmp_path)), None)
    assert table is None and options == [] and chosen is None
    assert message and "Traceback" not in message
    assert ("no such file" in message) or ("not an SQLite" in message) or ("not a URL" in message)
    assert not (tmp_path / "missing.db").exists()  # a typo never creates an empty database


def _study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"])
    study.set_user_attr("objectives", [{"name": "metric", "direction": "maximize", "device": None},
                                       {"name": "size", "direction": "minimize", "device": None}])
    return study


def test_empty_failed_infeasible_and_foreign_studies_say_so(storage: optuna.storages.BaseStorage) -> None:
    source = Source("memory", storage_factory=lambda: storage)
    _study(storage, "empty")
    failed = _study(storage, "failed")
    for _ in range(3):
        failed.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                                   user_attrs={"fail_reason": "out of memory"}))
    foreign = optuna.create_study(study_name="foreign", storage=storage, directions=["minimize"])
    foreign.add_trial(optuna.trial.create_trial(value=1.0))
    bad = _study(storage, "bad")
    bad.add_trial(optuna.trial.create_trial(values=[-1.0, 90.0], user_attrs={"status": "rejected",
                                                                               "constraints": [0.0, 26.0]}))
    assert "no trials yet" in cb.study_options(source, "empty")[1]
    assert "All 3 finished trial(s)" in cb.study_options(source, "failed")[1]
    assert "out of memory" in cb.study_options(source, "failed")[1]
    assert "No feasible trial" in cb.study_options(source, "bad")[1]
    assert "no study 'nope'" in cb.study_options(source, "nope")[1]
    assert "not written by `autocompress search`" in cb.study_options(source, "foreign")[1]
    for name in ("empty", "failed", "nope", "foreign"):
        fig, _hv = cb.render_study(source, name, "size_kb:metric", "metric", None, None)
        assert fig.layout.annotations and not fig.data  # a message, not a plot
    fig, _hv = cb.render_study(source, "bad", "size_kb:metric", "metric", None, None)
    assert not fig.data and "1 trial(s) rejected before training not shown" in fig.layout.title.text


def test_pareto_figure_projections_colour_and_selection(source: Source) -> None:
    view = source.view("synthetic")
    options, _ = cb.study_options(source, "synthetic")
    a, b = cb.default_trials(options, None, None)
    assert a == options[0]["value"] and b is None and view.trials.set_index("trial").loc[a, "on_front"]
    for projection in ("size_kb:metric", "latency_ms:metric", "size_kb:latency_ms", "3d"):
        fig, hv = cb.render_study(source, "synthetic", projection, "latency_ms", a, 3)
        names = [t.name for t in fig.data]
        assert {"Pareto front", "dominated", "selected A", "selected B"} <= set(names)
        # rejected trials (never trained, placeholder metric) only appear where no metric is plotted
        assert ("infeasible" in names) == (projection == "size_kb:latency_ms")
        front = fig.data[names.index("Pareto front")]
        assert front.marker.showscale and front.opacity == 1.0
        assert fig.data[names.index("dominated")].opacity < 0.5  # dominated trials faded
        assert sorted(d[0] for d in front.customdata) == sorted(view.trials[view.trials["on_front"]]["trial"])
        assert len(hv.data[0].x) == 41
    fig, _ = cb.render_study(source, "synthetic", "size_kb:metric", "metric", None, None)
    limits = {s.y0 for s in fig.layout.shapes if s.y0 == s.y1} | {s.x0 for s in fig.layout.shapes if s.x0 == s.x1}
    assert {64.0, 0.5} <= limits  # constraint lines drawn


def test_click_selects_a_trial() -> None:
    assert cb.clicked_trial({"points": [{"customdata": [7, 0.9, 3.0, 0.1, "evaluated"]}]}) == 7
    assert cb.clicked_trial({"points": [{"x": 1}]}) is None
    assert cb.clicked_trial(None) is None


def test_trial_panel_and_export(source: Source) -> None:
    summary, fig = cb.render_trial(source, "synthetic", 2)
    assert "validation metric" in _text(summary) and "fp32" in _text(summary)
    heat, sizes = fig.data
    assert list(heat.y) == [f"blocks.{i}.conv" for i in range(4)] and tuple(heat.x) == SETTINGS
    assert all(v is not None and v > 0 for v in sizes.x)  # layer sizes, KB
    other = cb.render_trial(source, "synthetic", 3)[1].data[0]
    assert list(other.text) != list(heat.text)  # another trial, another layer view
    data, message = cb.export_trial(source, "synthetic", 2)
    assert message == "" and data["filename"] == "synthetic-trial2.yaml"
    assert data["content"] == stored_export(source.study("synthetic"), 2, source.url).to_yaml()
    assert Policy.from_yaml(data["content"]).meta["trial"] == 2
    failed_trial = 24  # synthetic_study fails every 25th trial
    assert "only COMPLETE" in cb.export_trial(source, "synthetic", failed_trial)[1]
    assert "Select a trial" in cb.export_trial(source, "synthetic", None)[1]
    text = _text(cb.render_trial(source, "synthetic", 999)[0])
    assert "no trial 999" in text


def test_source_view_is_cached_briefly(source: Source) -> None:
    assert source.view("synthetic") is source.view("synthetic")
    with pytest.raises(DashboardError, match="no study"):
        source.view("nope")


def test_live_refresh_sees_new_trials(source: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    import autocompress_dashboards.data

    before = len(cb.study_options(source, "synthetic")[0])
    study = source.study("synthetic")
    study.add_trial(optuna.trial.create_trial(values=[0.99, 1.0, 0.01], user_attrs={"status": "evaluated"}))
    monkeypatch.setattr(autocompress_dashboards.data, "VIEW_TTL_S", 0.0)  # the next tick reads the storage again
    options = cb.study_options(source, "synthetic")[0]
    assert len(options) == before + 1 and options[0]["value"] == 41  # the new best is first, on the front
    assert cb.refresh_studies(source, "synthetic")[1][0]["label"].endswith("42 trials)")


def test_dashboard_cli_checks_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    from autocompress.cli import main

    assert main(["dashboard", "--storage", "sqlite:///x.db", "--port", "0"]) == 2
    assert "--port must be in 1..65535" in capsys.readouterr().err
    assert main(["dashboard", "--storage", "sqlite:///x.db", "--refresh", "-1"]) == 2


def test_measured_figures_from_apply_show_beside_the_predictions(source: Source, tmp_path: Path) -> None:
    from autocompress.apply import record_measured
    from autocompress.study import StudyRecord

    def measured_figures(attrs: dict) -> dict:
        return dict(StudyRecord.from_attrs(attrs).measured)

    study = source.study("synthetic")
    assert measured_figures(study.user_attrs) == {}
    summary, _ = cb.render_trial(source, "synthetic", 2)
    assert "run `autocompress apply`" in _text(summary)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    optuna.copy_study(from_study_name="synthetic", from_storage=source.storage(), to_storage=url)
    policy = Policy().with_meta(study="synthetic", trial=2, storage=url)
    report = {"measured": {"tensor_bytes": 2048, "val_metric": 0.91, "latency_ms": 0.07, "test_metric": 0.9},
              "fp32": {"test_metric": 0.95}}
    assert "recorded" in record_measured(policy, report)
    copied = optuna.load_study(study_name="synthetic", storage=url)
    assert measured_figures(copied.user_attrs)[2]["tensor_bytes"] == 2048
    sqlite_source = Source(url)
    summary, _ = cb.render_trial(sqlite_source, "synthetic", 2)
    text = _text(summary)
    assert "measured" in text and "test metric (applied artifact)" in text and "0.07" in text
    # a policy that names no storage is applied all the same, with a note
    assert "not recorded" in record_measured(Policy(), report)


@pytest.mark.parametrize(("name", "want"), [
    ("quickstart", "quickstart"),
    ("../../etc/passwd", "etc_passwd"),
    ("<script>alert(1)</script>", "script_alert_1_script_"),
    ("a/b\\c", "a_b_c"),
    (".hidden", "hidden"),
    ("", "study"),
    ("é" * 200, "study"),
    ("x" * 300, "x" * 80),
])
def test_download_file_names_are_safe(name: str, want: str) -> None:
    from autocompress_dashboards.data import safe_file_name

    got = safe_file_name(name)
    assert got == want
    assert "/" not in got and "\\" not in got and not got.startswith(".") and "<" not in got
