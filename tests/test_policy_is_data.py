"""A policy file is data: nothing it says makes autocompress import or run code.

User code runs only from a study file's ``task: package.module:function`` or from an
explicit ``apply --task`` / ``--study``. ``validate`` flags a policy naming user code.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import autocompress.apply as apply_mod
import autocompress.tasks._registry as registry
from autocompress import Policy
from autocompress.cli import main
from autocompress.errors import AutocompressError

EVIL_MODULE = "autocompress_test_evil_task"


@pytest.fixture
def evil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module on sys.path that leaves a mark when imported or called."""
    mark = tmp_path / "owned"
    (tmp_path / f"{EVIL_MODULE}.py").write_text(
        f"open({str(mark)!r}, 'a').write('imported\\n')\n"
        f"def build(**kw):\n    open({str(mark)!r}, 'a').write('called\\n')\n    raise SystemExit(99)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield mark
    sys.modules.pop(EVIL_MODULE, None)


def _policy(tmp_path: Path, meta: dict[str, Any]) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"format": "autocompress.policy", "version": 1,
                                    "layers": {"conv1": {"weight_bits": 8}}, "meta": meta}))
    return path


@pytest.mark.parametrize("task", [
    {"name": "os:system", "settings": {"command": "touch {mark}"}},
    {"name": "subprocess:getoutput", "settings": {"cmd": "touch {mark}"}},
    {"name": f"{EVIL_MODULE}:build"},
])
def test_a_policy_naming_code_runs_nothing(task: dict[str, Any], evil: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    task = {**task, "settings": {k: v.format(mark=evil) for k, v in task.get("settings", {}).items()}}
    path = _policy(tmp_path, {"task": task})
    assert main(["validate", str(path)]) == 0  # valid data, flagged
    out = capsys.readouterr().out
    assert "user code" in out and "never runs code" in out
    assert main(["apply", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "meta.task.name" in err[0] and "--task" in err[0]
    assert not evil.exists() and EVIL_MODULE not in sys.modules
    assert not (tmp_path / "out").exists()


def test_user_code_runs_only_when_named_on_the_command_line(evil: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = _policy(tmp_path, {"task": {"name": "digits-cnn"}})
    with pytest.raises(SystemExit, match="99"):  # the user asked for it: their code runs
        main(["apply", str(path), "-o", str(tmp_path / "out"), "--task", f"{EVIL_MODULE}:build"])
    assert evil.read_text() == "imported\ncalled\n"


def test_validate_checks_layer_names_against_the_builtin_task(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    good = _policy(tmp_path, {"task": {"name": "digits-cnn"}})
    assert main(["validate", str(good)]) == 0
    assert "checked against the model of task 'digits-cnn'" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("layers:\n  conv9: {weight_bits: 8}\nmeta: {task: {name: digits-cnn}}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "conv9" in err[0] and "digits-cnn" in err[0]
    nameless = tmp_path / "nameless.yaml"
    nameless.write_text("layers:\n  conv9: {weight_bits: 8}\n")
    assert main(["validate", str(nameless)]) == 0
    assert "layer names not checked" in capsys.readouterr().out
    assert main(["validate", str(nameless), "--task", "digits-cnn"]) == 2
    assert "conv9" in capsys.readouterr().err


def test_validate_refuses_unknown_builtin_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = _policy(tmp_path, {"task": {"name": "digits-cmn"}})
    assert main(["validate", str(policy)]) == 2
    assert "did you mean 'digits-cnn'" in capsys.readouterr().err
    study = tmp_path / "s.yaml"
    study.write_text("name: s\ntask: digits-cmn\nspace: joint\nbudget: {trials: 2}\n")
    assert main(["validate", str(study)]) == 2
    assert "unknown task 'digits-cmn'" in capsys.readouterr().err
    study.write_text(f"name: s\ntask: {EVIL_MODULE}:build\nspace: joint\nbudget: {{trials: 2}}\n")
    assert main(["validate", str(study)]) == 0  # a study may name user code; validate does not import it
    assert "PYTHONPATH" in capsys.readouterr().out and EVIL_MODULE not in sys.modules


# ---- fuzz: random bytes and random YAML trees -------------------------------------------------
_KEYS = ["format", "version", "layers", "default", "distill", "meta", "task", "name", "settings", "seed",
         "weight_bits", "act_bits", "sparsity", "pattern", "rank", "codebook", "granularity", "symmetric",
         "conv1", "conv2", "fc", "re:conv.*", "study", "trial", "storage", "predicted", "provenance",
         "finetune", "steps", "temperature", "alpha", "rules", "space", "budget", "trials", "objectives"]
_VALUES: list[Any] = [None, True, False, 0, 1, -1, 2, 3, 4, 8, 16, 32, 7, 0.5, 1.5, -0.1, float("nan"),
                      float("inf"), "", "8", "2:4", "channel", "unstructured", "digits-cnn", "os:system",
                      f"{EVIL_MODULE}:build", "../../etc/passwd", "autocompress.policy", "x" * 5000, [], {}]


def _tree(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth > 3 or r < 0.35:
        return rng.choice(_VALUES)
    if r < 0.5:
        return [_tree(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(_KEYS): _tree(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _bytes(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.3:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    text = yaml.safe_dump(_tree(rng), allow_unicode=True).encode()
    if kind < 0.6 and text:  # a valid document, damaged
        i = rng.randrange(len(text))
        return text[:i] + bytes([rng.randrange(256)]) + text[i + 1:]
    return text


class _Sentinel(AutocompressError):
    """Raised instead of building a model: the fuzz inputs must never reach real work."""


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch, evil: Path) -> Path:
    def no_import(ref: str) -> None:
        raise AssertionError(f"user code {ref!r} was imported because a file said so")

    def no_work(*a: Any, **k: Any) -> None:
        raise _Sentinel("reached the fine-tune")

    monkeypatch.setattr(registry, "_import_builder", no_import)
    monkeypatch.setattr(apply_mod, "_apply", no_work)
    return evil


def test_fuzz_validate_apply_and_the_loader(guarded: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(20)
    outcomes = {"refused": 0, "valid": 0}
    for i in range(250):
        data = _bytes(rng)
        path = tmp_path / f"f{i}.yaml"
        path.write_bytes(data)
        try:
            Policy.load(path)
        except AutocompressError as e:
            assert "\n" not in str(e) and str(path) in str(e), (data, str(e))
        rc = main(["validate", str(path)])
        captured = capsys.readouterr()
        assert rc in (0, 2), (data, rc)
        if rc == 2:
            lines = captured.err.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in captured.err, (data, captured.err)
        outcomes["refused" if rc == 2 else "valid"] += 1
        assert main(["apply", str(path), "-o", str(tmp_path / "out")]) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in captured.err, (data, captured.err)
        if "reached the fine-tune" not in lines[0]:
            assert not (tmp_path / "out").exists()
        else:  # only a valid policy of a built-in task gets that far
            Policy.load(path)
            (tmp_path / "out").rmdir()
    assert not guarded.exists()
    assert outcomes["refused"] > 100 and outcomes["valid"] > 5, outcomes  # both paths were exercised
