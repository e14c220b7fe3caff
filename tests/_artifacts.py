"""One round trip of a deploy form through its artifact, checked as the tests of new techniques
need it: the file's bytes are the size model's to the byte, and a fresh model loaded from it
answers exactly as the deploy form did."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from autocompress import Policy, file_bytes, load_artifact, save_artifact


def ships_exactly(model: nn.Module, deploy: nn.Module, policy: Policy, x: torch.Tensor, path: Path,
                  fresh: nn.Module) -> None:
    info = save_artifact(deploy, policy, path, x)
    assert info.file_bytes == path.stat().st_size == file_bytes(model, policy, x)
    again = load_artifact(path, fresh)
    with torch.no_grad():
        assert torch.equal(again(x), deploy(x))
