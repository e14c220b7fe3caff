from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from autocompress.errors import ConfigError
from autocompress.evaluate import FinetuneConfig
from autocompress.search import SearchSpace, StudyConfig, load_space, load_study_config

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


MINIMAL = """
task: digits-cnn
space: joint
budget: {trials: 5}
"""


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_studies_load_and_round_trip(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_study_config(path)
    assert cfg.name == path.stem
    assert cfg.storage == f"sqlite:///{tmp_path.resolve() / 'runs' / cfg.name / 'study.db'}"
    assert cfg.output_dir == tmp_path.resolve() / "runs" / cfg.name
    resolved = cfg.to_dict()
    text = yaml.safe_dump(resolved, sort_keys=False)  # plain data only
    again = StudyConfig.from_dict(yaml.safe_load(text), "resolved.yaml")
    assert again == cfg


def test_quickstart_contents() -> None:
    cfg = load_study_config(ROOT / "studies" / "quickstart.yaml")
    assert cfg.task == "digits-cnn"
    assert cfg.space == load_space(ROOT / "search_spaces" / "joint.yaml")
    assert cfg.directions == ("maximize", "minimize", "minimize")
    assert [o.name for o in cfg.objectives] == ["metric", "size", "latency"]
    assert cfg.latency_device is not None and cfg.budget.trials is not None
    assert cfg.sampler.name in ("nsga2", "tpe", "random")


def test_defaults_and_space_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # a bare space name is found under search_spaces/
    cfg = load_study_config(write(tmp_path, MINIMAL, "mine.yaml"))
    assert cfg.name == "mine" and cfg.seed == 0 and cfg.early_stop
    assert cfg.directions == ("maximize", "minimize")
    assert cfg.finetune == FinetuneConfig() and cfg.warm_start.uniform_bits == (8,)
    assert cfg.latency_device is None


def test_bare_space_name_is_found_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a user's own folder: no search_spaces/ here
    cfg = load_study_config(write(tmp_path, MINIMAL, "mine.yaml"))
    assert cfg.space == load_space(ROOT / "search_spaces" / "joint.yaml")
    with pytest.raises(ConfigError, match=r"not found; .*shipped space: .*joint.*pruning"):
        load_study_config(write(tmp_path, MINIMAL.replace("joint", "jont"), "typo.yaml"))


def test_space_relative_to_study_file_and_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "mine.yaml").write_text(
        "rules: [{layers: default, weight_bits: [4, 8]}]"
    )
    (tmp_path / "studies").mkdir()
    cfg = load_study_config(
        write(tmp_path / "studies", MINIMAL.replace("joint", "../spaces/mine.yaml"))
    )
    assert cfg.space.rules[0].weight_bits == (4, 8)
    inline = MINIMAL.replace("space: joint", "space: {rules: [{layers: default, act_bits: [8]}]}")
    cfg = load_study_config(write(tmp_path, inline))
    assert isinstance(cfg.space, SearchSpace) and cfg.space.rules[0].act_bits == (8,)


def test_samplers_are_built_from_the_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import optuna

    from autocompress.search._controller import make_sampler

    monkeypatch.chdir(ROOT)
    kinds = {"nsga2": optuna.samplers.NSGAIISampler, "tpe": optuna.samplers.TPESampler,
             "gp": optuna.samplers.GPSampler, "random": optuna.samplers.RandomSampler}
    for name, kind in kinds.items():
        extra = {"gp": ", n_startup_trials: 5, deterministic_objective: true",
                 "tpe": ", multivariate: true, group: true"}.get(name, "")
        cfg = load_study_config(write(tmp_path, MINIMAL + f"sampler: {{name: {name}{extra}}}\n"))
        assert isinstance(make_sampler(cfg).base, kind)
    with pytest.raises(ConfigError, match=r"sampler: unknown field 'multivariate'"):
        load_study_config(write(tmp_path, MINIMAL + "sampler: {name: gp, multivariate: true}\n"))


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("budget: {}", r"budget: give `trials`"),
        ("budget: {trials: 0}", r"budget\.trials.*>= 1.*0"),
        ("sampler: cmaes", r"sampler\.name.*cmaes"),
        ("sampler: {name: tpe, population_size: 4}", r"sampler: unknown field 'population_size'"),
        ("objectives: {size: minimize}", r"objectives: must include `metric"),
        ("objectives: {metric: maximize, size: maximize}", r"objectives\.size.*maximize"),
        ("objectives: {metric: up}", r"objectives\.metric.*'up'"),
        ("objectives: {metric: maximize, latency: {}}", r"objectives\.latency: needs a device"),
        ("objectives: {metric: maximize, flops: minimize}", r"unknown field 'flops'"),
        ("constraints: {max_size_kb: -1}", r"constraints\.max_size_kb.*-1"),
        ("constraints: {max_latency_ms: 3}", r"max_latency_ms needs a device"),
        ("finetune: {steps: 1.5}", r"finetune\.steps.*1\.5"),
        ("finetune: {optimizer: lion}", r"finetune\.optimizer.*lion"),
        ("finetune: {lr: 0}", r"finetune\.lr"),
        ("seed: -3", r"seed.*-3"),
        ("storage: study.db", r"storage.*URL"),
        ("name: 'my study'", r"name.*'my study'"),
        ("early_stop: maybe", r"early_stop.*true or false"),
        (
            "warm_start: {policies: [nope.yaml]}",
            r"warm_start\.policies\[0\]: policy file not found",
        ),
        ("warm_start: {uniform_bits: [7]}", r"warm_start\.uniform_bits\[0\]"),
        ("task_settings: [1]", r"task_settings: expected a mapping"),
        ("taks: x", r"unknown field 'taks'.*'task'"),
        ("space: nowhere.yaml", r"space: search space 'nowhere.yaml' not found"),
        (
            "space: {rules: [{layers: default, weight_bits: [7]}]}",
            r"space\.rules\[0\]\.weight_bits\[0\]",
        ),
    ],
)
def test_malformed_study_names_file_and_field(
    extra: str, match: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    lines = [ln for ln in MINIMAL.strip().splitlines() if ln.split(":")[0] != extra.split(":")[0]]
    p = write(tmp_path, "\n".join([*lines, extra]) + "\n")
    with pytest.raises(ConfigError, match=match) as e:
        load_study_config(p)
    assert str(e.value).startswith(str(p))


def test_missing_task_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"task: missing"):
        load_study_config(write(tmp_path, "space: joint\nbudget: {trials: 1}\n"))
    with pytest.raises(ConfigError, match=r"s\.yaml:2:\d+: not valid YAML"):
        load_study_config(write(tmp_path, "task: x\n  budget: [\n"))
    with pytest.raises(ConfigError, match="study file not found"):
        load_study_config(tmp_path / "none.yaml")


def test_task_as_module_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    cfg = load_study_config(write(tmp_path, MINIMAL.replace("digits-cnn", "my_pkg.tasks:make")))
    assert cfg.task == "my_pkg.tasks:make"
    with pytest.raises(ConfigError, match="task"):
        load_study_config(write(tmp_path, MINIMAL.replace("digits-cnn", "import os; x")))
