"""A search or worker that fails before its first trial leaves nothing behind.

``search`` creates the output folder and, with the default storage, an SQLite file in it
before it builds the task; when the build fails (a bad layer name, a task that raises, an
unreachable database) the user fixes the file and runs again, and an empty ``study.db`` or
``runs/<name>/`` left from the failed start only confuses (``pareto`` would find a study
with no trials). What existed before the start is never touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from autocompress import files
from autocompress.study._storage import storage_file


@contextlib.contextmanager
def undo_on_failure(output_dir: Path, storage: str) -> Iterator[None]:
    """Remove the storage file and the folders this start created if the block raises.

    A journal file is removed only while it is still empty: other workers may share one.
    """
    db = storage_file(storage)
    db_existed = db is not None and db.exists()
    made = _missing_dirs(output_dir) + (_missing_dirs(db.parent) if db is not None else [])
    try:
        yield
    except BaseException:
        if db is not None and not db_existed and db.is_file():
            if storage.startswith("sqlite:") or db.stat().st_size == 0:
                for extra in (db, db.with_name(db.name + "-journal"), db.with_name(db.name + "-wal"),
                              db.with_name(db.name + "-shm")):
                    with contextlib.suppress(OSError):
                        extra.unlink()
        for folder in sorted(set(made), key=lambda p: len(p.parts), reverse=True):
            files.remove_if_empty(folder)
        raise


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet (deepest first)."""
    out: list[Path] = []
    p = path.absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out
