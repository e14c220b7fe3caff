"""``autocompress validate FILE``: check a policy, search-space or study file."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from autocompress.errors import ConfigError


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="a policy, search-space or study YAML file")


def kind_of_file(path: Path) -> str:
    """'policy', 'space' or 'study', from the file's content."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    if raw.get("format") == "autocompress.policy" or ("distill" in raw and "task" not in raw and "rules" not in raw):
        return "policy"
    if "task" in raw:
        return "study"
    return "space"


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    kind = kind_of_file(path)
    if kind == "policy":
        from autocompress.policy import Policy

        p = Policy.load(path)
        print(f"{path}: valid policy ({len(p.layers)} layer entries, default={'yes' if p.default else 'no'})")
    elif kind == "study":
        from autocompress.search.study_config import load_study_config

        cfg = load_study_config(path)
        print(f"{path}: valid study {cfg.name!r} (task {cfg.task!r})")
    else:
        from autocompress.search.space import load_space

        load_space(path)
        print(f"{path}: valid search space")
    return 0
