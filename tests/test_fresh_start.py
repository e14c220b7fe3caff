"""A search or worker that fails before its first trial leaves nothing behind; what was
there before is never touched."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from autocompress.cli import main
from autocompress.study._fresh_start import storage_file, undo_on_failure

BAD_SPACE = "format: autocompress.search_space\nversion: 1\nrules:\n  - layers: [no_such_layer]\n    weight_bits: [8]\n"


def _study(tmp_path: Path, out: Path, storage: str | None = None) -> Path:
    (tmp_path / "space.yaml").write_text(BAD_SPACE)
    text = f"name: s\ntask: digits-cnn\nspace: {tmp_path / 'space.yaml'}\noutput_dir: {out}\nbudget: {{trials: 2}}\n"
    if storage:
        text += f"storage: {storage}\n"
    (tmp_path / "s.yaml").write_text(text)
    return tmp_path / "s.yaml"


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory: pytest.TempPathFactory):  # one base model for the module
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOCOMPRESS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def test_failed_search_leaves_no_database_or_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs" / "s" / "deep"
    assert main(["search", str(_study(tmp_path, out)), "--no-progress"]) == 2
    assert "no_such_layer" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_failed_worker_leaves_no_journal(tmp_path: Path) -> None:
    journal = tmp_path / "shared" / "j.log"
    out = tmp_path / "out"
    study = _study(tmp_path, out, f"journal:///{journal}")
    assert main(["worker", str(study)]) == 2
    assert not journal.exists() and not journal.parent.exists() and not out.exists()


def test_a_failed_resume_keeps_the_existing_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    db = out / "study.db"
    optuna.create_study(study_name="s", storage=f"sqlite:///{db}")  # an earlier run's study
    (out / "notes.txt").write_text("mine")
    assert main(["search", str(_study(tmp_path, out)), "--no-progress"]) == 2
    assert db.is_file() and (out / "notes.txt").read_text() == "mine"
    assert optuna.load_study(study_name="s", storage=f"sqlite:///{db}") is not None


def test_undo_removes_only_what_it_created(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    db = keep / "new" / "study.db"
    with pytest.raises(RuntimeError), undo_on_failure(keep / "new", f"sqlite:///{db}"):
        db.parent.mkdir()
        db.write_bytes(b"x")
        raise RuntimeError("build failed")
    assert keep.is_dir() and not (keep / "new").exists()
    with undo_on_failure(keep / "ok", f"sqlite:///{keep / 'ok' / 'study.db'}"):
        (keep / "ok").mkdir()
    assert (keep / "ok").is_dir()  # success: kept


def test_storage_file_of_each_url() -> None:
    assert storage_file("sqlite:///runs/x/study.db") == Path("runs/x/study.db")
    assert storage_file("sqlite:////abs/s.db") == Path("/abs/s.db")
    assert storage_file("journal:///shared/j.log") == Path("/shared/j.log")
    assert storage_file("sqlite:///:memory:") is None
    assert storage_file("postgresql://u@h/db") is None
