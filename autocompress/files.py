"""The one reader of input files and the one writer of output files.

Reading a policy, study, search-space or device file (:func:`read_yaml`):

- a size limit (:data:`MAX_INPUT_BYTES`, ``AUTOCOMPRESS_MAX_INPUT_MB`` to change it), checked
  before parsing, so a huge file fails at once instead of parsing for minutes;
- UTF-8 decoding (a BOM is allowed); a bad byte is named by line and column;
- YAML's C loader where PyYAML has it (``CSafeLoader``), else the pure-Python one: both *safe*
  loaders build plain data only (mappings, lists, strings, numbers) and never run code;
- one parse per file, and a bound on what YAML aliases may expand to (a "billion laughs" file
  is refused, not walked);
- every error is one line, ``path:line:col: message``, as a linter prints it.

Writing (:func:`write_text`, :func:`write_bytes`, :func:`atomic_path`): the destination is
checked *before* the work (:func:`check_output_file`, :func:`check_output_dir`), the bytes go
to a temporary file in the same folder that is then renamed over the destination (a killed
run leaves the old file or the new one, never half of one), and an OS error (read-only file
system, disk full, no permission) is one line naming the path and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from autocompress.errors import InputFileError, OutputError

MAX_INPUT_BYTES = 2**20  # a policy for a model of 25,000 layers; real files are a few KB
MAX_NODES = 2_000_000  # values a parsed file may hold, aliases expanded
_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SafeUniqueLoader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader (C parser where available) that also refuses a key given twice in one
    mapping: YAML would silently keep the last one, and a layer listed twice is a mistake."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                dup = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so with its mark
                break
            if dup:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping; keep one", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


_SAFE_LOADER: Any = _SafeUniqueLoader


def max_input_bytes() -> int:
    raw = os.environ.get("AUTOCOMPRESS_MAX_INPUT_MB")
    if not raw:
        return MAX_INPUT_BYTES
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if not mb > 0:
        raise InputFileError(f"environment variable AUTOCOMPRESS_MAX_INPUT_MB must be a number of MB > 0, got {raw!r}")
    return int(mb * 2**20)


# ---- reading --------------------------------------------------------------------------
def read_text(path: str | Path, what: str) -> str:
    """The text of ``path`` (a ``what`` file: "policy", "study", ...), checked and decoded."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: {what} file not found (check the path, relative to {Path.cwd()})")
    if p.is_dir():
        raise InputFileError(f"{p}: is a folder; give the {what} file itself")
    limit = max_input_bytes()
    try:
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)  # never more: a device or a growing file cannot exhaust memory
    except OSError as e:
        raise InputFileError(f"{p}: cannot read the {what} file ({e.strerror or e})") from None
    if len(data) > limit:
        raise InputFileError(
            f"{p}: the {what} file is larger than {limit / 2**20:g} MB; a {what} file is a few KB "
            "(set AUTOCOMPRESS_MAX_INPUT_MB to read a larger one)")
    return decode(data, str(p), what)


def decode(data: bytes, source: str, what: str) -> str:
    """UTF-8 text of ``data``; a NUL byte or an invalid byte is one line naming where."""
    if b"\x00" in data:
        line, col = _line_col(data, data.index(b"\x00"))
        raise InputFileError(f"{source}:{line}:{col}: a binary file, not a YAML {what} file "
                             f"(is it a database or an artifact?); give the {what} file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line, col = _line_col(data, e.start)
        raise InputFileError(
            f"{source}:{line}:{col}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the {what} file as UTF-8"
        ) from None


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def load_yaml(text: str, source: str) -> Any:
    """Parse YAML text as plain data (safe loader); errors as ``source:line:col: message``."""
    try:
        raw = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = " ".join(str(e.problem or e.context or "syntax error").split())
        context = f" ({' '.join(str(e.context).split())})" if e.context and e.problem else ""
        raise InputFileError(f"{where}: not valid YAML: {problem}{context}") from None
    except yaml.YAMLError as e:
        raise InputFileError(f"{source}: not valid YAML: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise InputFileError(f"{source}: not a usable YAML file: nested too deeply") from None
    _check_expansion(raw, source)
    return raw


def read_yaml(path: str | Path, what: str) -> Any:
    """:func:`read_text` then :func:`load_yaml`: the one way an input file is parsed."""
    return load_yaml(read_text(path, what), str(path))


def _check_expansion(raw: Any, source: str) -> None:
    """Refuse data whose aliases expand past :data:`MAX_NODES` values (walked with a budget)."""
    left = MAX_NODES
    stack = [raw]
    while stack:
        node = stack.pop()
        left -= 1
        if left < 0:
            raise InputFileError(
                f"{source}: the file expands to more than {MAX_NODES:,} values (YAML anchors and aliases "
                "repeated too often); write the values out")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple, set)):
            stack.extend(node)


# ---- writing --------------------------------------------------------------------------
def check_output_file(path: str | Path, what: str) -> Path:
    """Fail now, before any work, if ``path`` cannot be written as a ``what`` file.

    A missing parent folder is created (as ``mkdir -p`` would); one that cannot be is an error."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{p}: is a folder; give a file name for the {what}, e.g. {p / _example(what)}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _output_error(p, e, what) from None
    _probe(parent, p, what)
    return p


def check_output_dir(path: str | Path, what: str) -> tuple[Path, bool]:
    """Create the output folder ``path`` if needed and check that files can be written in it.

    Returns (path, whether this call created it): a caller whose work then fails can remove
    what it created (:func:`remove_if_empty`)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{p}: is a file; give a folder for the {what}")
    created = not p.exists()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _output_error(p, e, what) from None
    _probe(p, p / "x", what)
    return p, created


def remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def _probe(folder: Path, target: Path, what: str) -> None:
    """Write and delete a temporary file in ``folder`` (``os.access`` misses read-only mounts)."""
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{target}: exists and is not writable; choose another path for the {what}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".autocompress-", dir=folder)
    except OSError as e:
        raise _output_error(target, e, what) from None
    os.close(fd)
    os.unlink(tmp)


def _example(what: str) -> str:
    return {"policy": "policy.yaml", "report": "report.html"}.get(what, "out.yaml")


def _output_error(path: Path, e: OSError, what: str) -> OutputError:
    why = {
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOENT: "the folder does not exist",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EEXIST: "a part of the path is a file, not a folder",
        errno.EISDIR: "it is a folder",
        errno.ENAMETOOLONG: "the name is too long",
    }.get(e.errno or 0, e.strerror or str(e))
    return OutputError(f"{path}: cannot write the {what}: {why}; free space or choose another path (-o)")


@contextlib.contextmanager
def atomic_path(path: str | Path, what: str) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block ends.

    For libraries that write by file name (safetensors, plotly). On any error the temporary
    file is removed and ``path`` is left as it was."""
    p = Path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
        os.close(fd)
    except OSError as e:
        raise _output_error(p, e, what) from None
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _output_error(p, e, what) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    """The process umask (read once: ``os.umask`` can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes, what: str) -> Path:
    with atomic_path(path, what) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text(path: str | Path, text: str, what: str) -> Path:
    return write_bytes(path, text.encode("utf-8"), what)


__all__ = [
    "MAX_INPUT_BYTES",
    "atomic_path",
    "check_output_dir",
    "check_output_file",
    "decode",
    "load_yaml",
    "read_text",
    "read_yaml",
    "remove_if_empty",
    "write_bytes",
    "write_text",
]
