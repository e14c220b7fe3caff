"""Artifact format 3: a CRC-32 per tensor checked at load, non-finite weights refused at save
and at load, a header with only what loading needs, and a file size known before training."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from autocompress import Policy, compress, file_bytes, layers, load_artifact, save_artifact
from autocompress.artifact import read_header
from autocompress.artifact._integrity import checksums
from autocompress.errors import ArtifactError, PolicyError
from autocompress.models import MODELS, create_model

TINY = [n for n in MODELS.names() if MODELS.get(n).tiny]


def _artifact(tmp_path: Path, name: str = "tiny-mlp", policy: dict | None = None):
    model = create_model(name, seed=0).eval()
    x = MODELS.get(name).example_input(batch=4)
    p = Policy.from_dict(policy or {"default": {"weight_bits": 8, "act_bits": 8}},
                         ).with_meta(note="kept beside, not in the header", trial=3)
    deploy = compress(model, p, form="deploy", example_input=x)
    path = tmp_path / "m.safetensors"
    info = save_artifact(deploy, p, path, x)
    return model, x, p, deploy, path, info


def _data_start(path: Path) -> int:
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    return 8 + n


def _tensor_span(path: Path, name: str) -> tuple[int, int]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    begin, end = json.loads(raw[8:8 + n])[name]["data_offsets"]
    return 8 + n + begin, 8 + n + end


def test_a_flipped_byte_is_named_by_its_tensor(tmp_path: Path) -> None:
    _, _, _, _, path, _ = _artifact(tmp_path)
    tensors = load_file(str(path))
    victim = sorted(tensors)[len(tensors) // 2]
    start, end = _tensor_span(path, victim)
    raw = bytearray(path.read_bytes())
    raw[(start + end) // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError) as e:
        load_artifact(path, create_model("tiny-mlp"))
    msg = str(e.value)
    assert f"tensor {victim!r} does not match its checksum" in msg and "\n" not in msg


def test_truncated_and_garbage_files_are_one_line(tmp_path: Path) -> None:
    _, _, _, _, path, _ = _artifact(tmp_path)
    raw = path.read_bytes()
    for i, data in enumerate([raw[: len(raw) // 2], raw[:7], b"", b"\xff" * 64, b"SQLite format 3\x00" * 8]):
        bad = tmp_path / f"bad{i}.safetensors"
        bad.write_bytes(data)
        with pytest.raises(ArtifactError) as e:
            load_artifact(bad, create_model("tiny-mlp"))
        assert str(bad) in str(e.value) and "\n" not in str(e.value)


def test_nan_weights_with_a_matching_checksum_are_refused(tmp_path: Path) -> None:
    _, _, _, _, path, _ = _artifact(tmp_path, policy={"layers": {"fc1": {"weight_bits": 8}}})
    header = read_header(path)
    tensors = load_file(str(path))
    bias = next(k for k in sorted(tensors) if k.endswith("bias") and tensors[k].is_floating_point())
    tensors[bias] = torch.full_like(tensors[bias], float("nan"))
    header["crc32"] = checksums(tensors)  # someone who knows the format edits it consistently
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(ArtifactError, match=rf"not loaded: tensor {bias!r} holds NaN"):
        load_artifact(path, create_model("tiny-mlp"))


def test_a_diverged_model_is_not_saved(tmp_path: Path) -> None:
    _model, x, p, deploy, _, _ = _artifact(tmp_path, policy={"layers": {"fc1": {"weight_bits": 8}}})
    with torch.no_grad():
        deploy.fc3.bias[0] = float("inf")  # fc3 is left in float
    target = tmp_path / "diverged.safetensors"
    with pytest.raises(ArtifactError, match="not saved: tensor 'fc3.bias' holds NaN or infinite"):
        save_artifact(deploy, p, target, x)
    assert not target.exists()


def test_an_edited_policy_or_checksum_list_is_refused(tmp_path: Path) -> None:
    _, _, _, _, path, _ = _artifact(tmp_path)
    header, tensors = read_header(path), load_file(str(path))
    short = dict(header, crc32=header["crc32"][:-8])
    save_file(tensors, str(tmp_path / "short.safetensors"), metadata=short)
    with pytest.raises(ArtifactError, match="checksums for"):
        load_artifact(tmp_path / "short.safetensors", create_model("tiny-mlp"))
    wrong = dict(header, policy=json.dumps({"layers": {"fc1": {"weight_bits": 99}}}))
    save_file(tensors, str(tmp_path / "wrong.safetensors"), metadata=wrong)
    with pytest.raises(PolicyError, match="weight_bits"):
        load_artifact(tmp_path / "wrong.safetensors", create_model("tiny-mlp"))
    aliases = dict(header, aliases=json.dumps({"fc1.weight": "nope"}))
    save_file(tensors, str(tmp_path / "alias.safetensors"), metadata=aliases)
    with pytest.raises(ArtifactError, match="aliases"):
        load_artifact(tmp_path / "alias.safetensors", create_model("tiny-mlp"))


def test_header_holds_only_what_loading_needs(tmp_path: Path) -> None:
    _, _, _p, deploy, path, info = _artifact(tmp_path)
    header = read_header(path)
    assert set(header) <= {"format", "version", "policy", "input_shape", "input_dtype", "input_shapes",
                           "input_dtypes", "aliases", "crc32"}
    assert header["version"] == "3" and "meta" not in json.loads(header["policy"])
    assert "kept beside" not in path.read_bytes()[8:_data_start(path)].decode()
    back = load_artifact(path, create_model("tiny-mlp", seed=5))
    x = MODELS.get("tiny-mlp").example_input(batch=4)
    with torch.no_grad():
        torch.testing.assert_close(back(x), deploy(x))
    assert info.file_bytes == path.stat().st_size and info.tensor_bytes < info.file_bytes


def test_a_wrong_model_is_one_line(tmp_path: Path) -> None:
    _, _, _, _, path, _ = _artifact(tmp_path)
    with pytest.raises(ArtifactError) as e:
        load_artifact(path, create_model("tiny-resdw-cnn"))
    assert "does not fit this model" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", TINY)
def test_file_bytes_predicts_the_file_exactly(name: str, tmp_path: Path) -> None:
    """The size objective is the shipped file: header, alignment and all, before any training."""
    model = create_model(name, seed=0).eval()
    x = MODELS.get(name).example_input(batch=4)
    infos = layers(model, x)
    rng = random.Random(name)
    policies = [Policy(), Policy.from_dict({"default": {"weight_bits": 8, "act_bits": 8}})]
    for _ in range(4):
        entries = {}
        for info in infos:
            n = info.name
            if rng.random() < 0.3:
                continue
            entry: dict = {"weight_bits": rng.choice([2, 3, 4, 6, 8, 16, 32])}
            if info.kind == "embedding":  # a lookup table: weight fields only
                entries[n] = entry
                continue
            if entry["weight_bits"] <= 8 and rng.random() < 0.4:
                entry["act_bits"] = 8
            if rng.random() < 0.3:
                entry["sparsity"] = rng.choice([0.25, 0.5])
            if entry["weight_bits"] <= 4 and rng.random() < 0.3:
                entry["codebook"] = True
            entries[n] = entry
        policies.append(Policy.from_dict({"layers": entries}))
    checked = 0
    for k, policy in enumerate(policies):
        try:
            deploy = compress(model, policy, form="deploy", example_input=x)
        except PolicyError:
            continue
        info = save_artifact(deploy, policy, tmp_path / f"{k}.safetensors", x)
        assert file_bytes(model, policy, x) == info.file_bytes == (tmp_path / f"{k}.safetensors").stat().st_size
        checked += 1
    assert checked >= 3
