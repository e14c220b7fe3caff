"""The bad-input corpus: every input file the CLI reads goes through one reader, and every
output through one writer; each bad case is exit 2 with one line naming the path."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from autocompress import Policy, files
from autocompress.cli import main
from autocompress.errors import ConfigError, InputFileError, OutputError, PolicyError
from autocompress.search import load_study_config

GOOD_POLICY = "format: autocompress.policy\nversion: 1\nlayers:\n  fc1: {weight_bits: 8}\n"


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ---- one case per kind of broken file; each is given to validate, apply and the loaders ----
CORPUS: dict[str, tuple[bytes, str]] = {
    "latin1": ("layers:\n  fc1: {weight_bits: 8}  # caf\xe9\n".encode("latin-1"), ":2:31: not UTF-8 text (byte 0xe9)"),
    "utf16": ("layers: {}\n".encode("utf-16"), ":1:4: a binary file"),
    "nul": (b"layers:\n  fc1:\x00 {}\n", ":2:7: a binary file"),
    "sqlite": (b"SQLite format 3\x00" + bytes(200), "a binary file"),
    "tab-indent": (b"layers:\n\tfc1: {weight_bits: 8}\n", ":2:1: not valid YAML"),
    "unclosed": (b"layers: {fc1: {weight_bits: 8}\n", "not valid YAML"),
    "bad-indent": (b"layers:\n  fc1:\n    weight_bits: 8\n   act_bits: 8\n", ":4:4: not valid YAML"),
    "duplicate-key": (b"layers:\n  fc1: {weight_bits: 8}\n  fc1: {weight_bits: 4}\n",
                      ":3:3: not valid YAML: key 'fc1' appears twice"),
    "python-tag": (b"layers: !!python/object/apply:os.system ['touch /tmp/owned']\n", "not valid YAML"),
    "custom-tag": (b"layers: !include other.yaml\n", "not valid YAML"),
    "unhashable-key": (b"? [a, b]\n: 1\n", "not valid YAML"),
    "deep": (b"[" * 5000 + b"]" * 5000, "nest"),
    "deep-900": (b"a: " + b"[" * 900 + b"]" * 900, ""),
    "deep-mapping": (b"".join(b"  " * i + b"k:\n" for i in range(3000)), ""),
    "empty": (b"", "empty"),
    "list": (b"- 1\n- 2\n", ""),
    "scalar": (b"42\n", ""),
}
_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True))
CORPUS["billion-laughs"] = (_BOMB.encode(), "expands to more than")


@pytest.mark.parametrize("case", sorted(CORPUS))
@pytest.mark.parametrize("command", ["validate", "apply"])
def test_broken_file_is_one_line_exit_2(case: str, command: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data, needle = CORPUS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(data)
    argv = ["validate", str(path)] if command == "validate" else ["apply", str(path), "-o", str(tmp_path / "out")]
    start = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - start < 10  # refused, not walked
    _one_line_error(capsys, str(path), needle)
    assert not (tmp_path / "out").exists()
    assert not Path("/tmp/owned").exists()


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_broken_file_is_an_input_error_for_every_loader(case: str, tmp_path: Path) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(CORPUS[case][0])
    where = str(path).replace(".", r"\.")
    with pytest.raises(PolicyError, match=where):
        Policy.load(path)
    with pytest.raises(ConfigError, match=where):
        load_study_config(path)


def test_too_large_file_is_refused_before_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.yaml"
    entry = "  layer{}: {{weight_bits: 8}}\n"
    with path.open("w") as fh:
        fh.write("layers:\n")
        for i in range(60_000):  # ~2 MB: each line is a valid layer entry
            fh.write(entry.format(i))
    start = time.monotonic()
    assert main(["validate", str(path)]) == 2
    assert time.monotonic() - start < 5
    _one_line_error(capsys, str(path), "larger than 1 MB", "AUTOCOMPRESS_MAX_INPUT_MB")


def test_size_limit_can_be_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("layers:\n" + "".join(f"  layer{i}: {{weight_bits: 8}}\n" for i in range(60_000)))
    with pytest.raises(InputFileError, match="larger than"):
        files.read_text(path, "policy")
    monkeypatch.setenv("AUTOCOMPRESS_MAX_INPUT_MB", "4")
    assert len(Policy.load(path).layers) == 60_000
    monkeypatch.setenv("AUTOCOMPRESS_MAX_INPUT_MB", "lots")
    with pytest.raises(InputFileError, match="AUTOCOMPRESS_MAX_INPUT_MB must be a number"):
        files.read_text(path, "policy")


def test_a_device_file_is_read_no_further_than_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    monkeypatch.setenv("AUTOCOMPRESS_MAX_INPUT_MB", "0.01")
    with pytest.raises(InputFileError, match="larger than"):
        files.read_text("/dev/zero", "policy")


def test_missing_file_and_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    _one_line_error(capsys, "nope.yaml", "not found")
    assert main(["apply", str(tmp_path), "-o", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, str(tmp_path), "is a folder")


def test_a_utf8_bom_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_POLICY.encode())
    assert dict(Policy.load(path).layers)["fc1"].weight_bits == 8


def test_yaml_error_carries_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("layers:\n  fc1: {weight_bits: 8\n  fc2: {}\n")
    with pytest.raises(InputFileError) as e:
        Policy.load(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}:3:")


# ---- meta: a typed record, each wrong field named ------------------------------------------
@pytest.mark.parametrize(("meta", "needle"), [
    ("{task: digits-cnn}", "meta.task"),
    ("{task: {name: 3}}", "meta.task.name"),
    ("{task: {name: digits-cnn, settings: [1]}}", "meta.task.settings"),
    ("{task: {name: digits-cnn, seed: one}}", "meta.task.seed"),
    ("{trial: -1}", "meta.trial"),
    ("{trial: abc}", "meta.trial"),
    ("{predicted: 5}", "meta.predicted"),
    ("{predicted: {size_bytes: big}}", "meta.predicted.size_bytes"),
    ("{provenance: {base_sha256: 7}}", "meta.provenance.base_sha256"),
    ("{finetune: {steps: many}}", "meta.finetune"),
    ("{surprise: 1}", "meta: unknown field 'surprise'"),
    ("[1, 2]", "meta"),
])
def test_invalid_meta_is_one_line(meta: str, needle: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(GOOD_POLICY + f"meta: {meta}\n")
    assert main(["validate", str(path)]) == 2
    _one_line_error(capsys, str(path), needle)
    assert main(["apply", str(path), "-o", str(tmp_path / "out"), "--task", "digits-cnn"]) == 2
    _one_line_error(capsys, needle)
    assert not (tmp_path / "out").exists()


# ---- the writer --------------------------------------------------------------------------
def test_write_is_atomic_and_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "p.yaml"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), files.atomic_path(target, "policy") as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt  # killed mid-write
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.yaml"]  # no temporary file left
    files.write_text(target, "new\n", "policy")
    assert target.read_text() == "new\n"
    assert (target.stat().st_mode & 0o777) == 0o644 & ~_umask()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(("code", "why"), [(errno.EROFS, "read-only"), (errno.ENOSPC, "disk is full"),
                                           (errno.EACCES, "permission denied")])
def test_os_errors_are_one_line(code: int, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: object, **k: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OutputError) as e:
        files.write_text(tmp_path / "r.json", "{}", "report")
    assert why in str(e.value) and str(tmp_path / "r.json") in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    with pytest.raises(OutputError, match=why):
        files.check_output_file(tmp_path / "p.yaml", "policy")
    with pytest.raises(OutputError, match=why):
        files.check_output_dir(tmp_path / "art", "artifact")


def test_output_paths_are_checked(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a folder"):
        files.check_output_file(tmp_path, "policy")
    with pytest.raises(OutputError, match="is a file"):
        files.check_output_dir(tmp_path / "file", "artifact")
    with pytest.raises(OutputError, match="not a folder"):
        files.check_output_file(tmp_path / "file" / "p.yaml", "policy")
    deep = tmp_path / "a" / "b" / "p.yaml"
    assert files.check_output_file(deep, "policy") == deep and deep.parent.is_dir()  # mkdir -p
    made, created = files.check_output_dir(tmp_path / "new", "artifact")
    assert created and made.is_dir()
    assert files.check_output_dir(tmp_path / "new", "artifact") == (made, False)


def test_apply_output_problems_are_found_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import autocompress.apply as apply_mod

    def no_work(*a: object, **k: object) -> None:
        raise AssertionError("the output should have been refused before any work")

    monkeypatch.setattr(apply_mod, "_apply", no_work)
    policy = tmp_path / "p.yaml"
    policy.write_text(GOOD_POLICY)
    (tmp_path / "taken").write_text("a file")
    assert main(["apply", str(policy), "-o", str(tmp_path / "taken"), "--task", "digits-cnn"]) == 2
    _one_line_error(capsys, "taken", "is a file")
    assert main(["apply", str(policy), "-o", str(tmp_path / "taken" / "sub"), "--task", "digits-cnn"]) == 2
    _one_line_error(capsys, "taken", "not a folder")


def test_export_output_is_checked_before_reading_the_study(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.db"
    study = tmp_path / "s.yaml"
    study.write_text(f"name: s\ntask: digits-cnn\nspace: joint\nstorage: sqlite:///{missing}\nbudget: {{trials: 2}}\n")
    assert main(["export", str(study), "--trial", "0", "-o", str(tmp_path)]) == 2
    _one_line_error(capsys, "is a folder")
    assert main(["export", str(study), "--trial", "0", "-o", str(tmp_path / "p.yaml")]) == 2
    _one_line_error(capsys, "missing.db", "no such file")
    other = tmp_path / "other.db"
    assert main(["export", str(study), "--storage", f"sqlite:///{other}", "--trial", "0",
                 "-o", str(tmp_path / "p.yaml")]) == 2
    _one_line_error(capsys, "other.db", "no such file")
    assert main(["pareto", str(study)]) == 2
    _one_line_error(capsys, "missing.db")
    assert not missing.exists() and not other.exists()  # a mistyped storage is not created
    assert not (tmp_path / "p.yaml").exists()


def test_a_storage_that_fails_mid_run_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The study database deleted or made read-only under a running search: optuna raises
    StorageInternalError from SQLAlchemy; the CLI says what failed in one line, exit 2."""
    import sqlite3

    import optuna

    from autocompress.cli import _search, main

    def broken(*_a, **_k):
        try:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        except sqlite3.OperationalError as e:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from e

    monkeypatch.setattr(_search, "run", broken)
    assert main(["search", "studies/quickstart.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "readonly database" in err and "run again to resume" in err
