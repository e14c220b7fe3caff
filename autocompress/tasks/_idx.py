"""MNIST from its original IDX files (gzipped or not) in a directory the user names.

The files are never copied; every check (magic number, dimensions, counts, label range)
fails with a DataError naming the file and where the files are expected.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from autocompress.errors import DataError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
MNIST_DIR_ENV = "AUTOCOMPRESS_MNIST_DIR"
_UBYTE = 0x08


def _expected(directory: Path) -> str:
    names = ", ".join(f"{n}[.gz]" for i, lb, _ in MNIST_FILES.values() for n in (i, lb))
    return f"MNIST IDX files are expected in {str(directory)!r}: {names}"


def find_idx(directory: Path, name: str) -> Path:
    """``name.gz`` if present, else ``name``; DataError if neither exists."""
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"missing MNIST file {name!r} (or {name}.gz); {_expected(directory)}")


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX array with ``ndim`` dimensions, checked against its header."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read {str(path)!r}: {e}; re-download the file") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{str(path)!r} is not an IDX file (bad magic number {raw[:4].hex()!r})")
    if raw[2] != _UBYTE or raw[3] != ndim:
        raise DataError(
            f"{str(path)!r}: expected unsigned-byte data with {ndim} dimensions, got type "
            f"0x{raw[2]:02x} with {raw[3]} dimensions; is it the right file?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{str(path)!r} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise DataError(
            f"{str(path)!r}: header says shape {shape} ({size} bytes) but the file holds "
            f"{len(raw) - header} data bytes; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_mnist_split(
    directory: Path, split: str, expected: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 28, 28)`` uint8 and labels ``(n,)`` of the ``train`` or ``test`` split."""
    img_name, lbl_name, count = MNIST_FILES[split]
    count = count if expected is None else expected
    img_path, lbl_path = find_idx(directory, img_name), find_idx(directory, lbl_name)
    images, labels = read_idx(img_path, 3), read_idx(lbl_path, 1)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{str(img_path)!r}: images must be 28x28, got {images.shape[1:]}")
    if len(images) != count or len(labels) != count:
        raise DataError(
            f"MNIST {split}: expected {count} images and labels, got {len(images)} in "
            f"{str(img_path)!r} and {len(labels)} in {str(lbl_path)!r}"
        )
    if labels.max(initial=0) > 9:
        raise DataError(f"{str(lbl_path)!r}: labels must be 0..9, got {int(labels.max())}")
    return images, labels


def mnist_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """The directory named by the ``data_dir`` setting, else by ``$AUTOCOMPRESS_MNIST_DIR``."""
    chosen = data_dir if data_dir is not None else os.environ.get(MNIST_DIR_ENV)
    if chosen is None:
        raise DataError(
            "MNIST tasks need the directory of the IDX files: pass the task setting "
            f"data_dir=... (study file: task_settings: {{data_dir: ...}}) or set ${MNIST_DIR_ENV}"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataError(f"MNIST data_dir {str(path)!r} is not a directory; {_expected(path)}")
    return path
