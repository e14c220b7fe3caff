"""The study file (``studies/*.yaml``): a frozen, validated dataclass tree.

Example (``studies/quickstart.yaml``)::

    name: quickstart
    task: digits-cnn                     # a registered task, or "package.module:function"
    task_settings: {data_dir: data}
    space: search_spaces/joint.yaml      # relative to the study file, its parent folder or
                                         # the working directory; a bare name ("joint"); inline
    objectives:                          # in this order: the study's directions
      metric: maximize
      size: minimize
      latency: {device: x86-server}
    constraints: {max_size_kb: 20, min_metric: 0.8}
    budget: {trials: 48, minutes: 10}
    sampler: {name: nsga2, population_size: 12}
    finetune: {steps: 150, lr: 0.001, batch_size: 64}

``load_study_config(path)`` validates everything (errors name file, field, value and fix);
``StudyConfig.to_dict()`` is the resolved config (space inlined, paths absolute), saved beside
the outputs and loadable again with ``StudyConfig.from_dict``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from autocompress import fields as f
from autocompress import files
from autocompress.errors import ConfigError
from autocompress.policy import WEIGHT_BITS
from autocompress.search._study_parts import (
    Budget,
    Constraints,
    FinetuneConfig,
    Objective,
    SamplerConfig,
    WarmStart,
    parse_budget,
    parse_constraints,
    parse_finetune,
    parse_objectives,
    parse_sampler,
)
from autocompress.search.space import SearchSpace

Backend = Literal["optuna", "ray"]
_TOP = (
    "name",
    "task",
    "task_settings",
    "space",
    "objectives",
    "constraints",
    "budget",
    "sampler",
    "seed",
    "finetune",
    "storage",
    "output_dir",
    "warm_start",
    "early_stop",
    "backend",
    "workers",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_TASK_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

__all__ = [
    "Budget",
    "Constraints",
    "FinetuneConfig",
    "Objective",
    "SamplerConfig",
    "StudyConfig",
    "WarmStart",
    "load_study_config",
    "parse_finetune",
]


@dataclass(frozen=True)
class StudyConfig:
    """One study: what to compress, how to search, where results go."""

    name: str
    task: str
    space: SearchSpace
    objectives: tuple[Objective, ...]
    output_dir: Path
    storage: str
    budget: Budget
    task_settings: Mapping[str, Any] = field(default_factory=dict)
    constraints: Constraints = field(default_factory=Constraints)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    seed: int = 0
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    warm_start: WarmStart = field(default_factory=WarmStart)
    early_stop: bool = True
    backend: Backend = "optuna"
    workers: int = 1
    source: str = field(default="study", compare=False)

    @property
    def directions(self) -> tuple[str, ...]:
        """Optuna directions, one per objective, in file order."""
        return tuple(o.direction for o in self.objectives)

    @property
    def latency_device(self) -> str | None:
        """The device latency is modelled on (objective first, else the constraint's)."""
        dev = next((o.device for o in self.objectives if o.name == "latency"), None)
        return dev or self.constraints.device

    @property
    def latency_batch(self) -> int:
        """The batch size latency is predicted / measured at (``batch`` beside the device)."""
        obj = next((o for o in self.objectives if o.name == "latency"), None)
        return obj.batch if obj is not None else self.constraints.batch

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "task_settings": dict(self.task_settings),
            "space": self.space.to_dict(),
            "objectives": {o.name: o.to_dict() for o in self.objectives},
            "constraints": {k: v for k, v in asdict(self.constraints).items()
                            if v is not None and not (k == "batch" and v == 1)},
            "budget": {k: v for k, v in asdict(self.budget).items() if v is not None},
            "sampler": {"name": self.sampler.name, **dict(self.sampler.settings)},
            "seed": self.seed,
            "finetune": asdict(self.finetune),
            "storage": self.storage,
            "output_dir": str(self.output_dir),
            "warm_start": self.warm_start.to_dict(),
            "early_stop": self.early_stop,
            "backend": self.backend,
            "workers": self.workers,
        }

    @classmethod
    def from_dict(
        cls, raw: Any, source: str = "study", base_dir: Path | None = None
    ) -> StudyConfig:
        """Validate a plain mapping; relative paths resolve against ``base_dir`` (then cwd)."""
        raw = f.mapping(raw, source)
        f.check_keys(raw, _TOP, source)
        base = base_dir or Path.cwd()
        name = raw.get("name") or (
            Path(source).stem if source.endswith((".yaml", ".yml")) else None
        )
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"{source}: name must be letters, digits, '_', '-', '.' (it names the output "
                f"folder and the study), got {name!r}"
            )
        out = Path(f.as_str(raw.get("output_dir", f"runs/{name}"), f.join(source, "output_dir")))
        out = (out if out.is_absolute() else Path.cwd() / out).resolve()
        storage = raw.get("storage") or f"sqlite:///{out / 'study.db'}"
        if not isinstance(storage, str) or "://" not in storage:
            raise ConfigError(
                f"{source}: storage must be a database URL such as 'sqlite:///runs/x/study.db' or "
                f"'postgresql://user@host/db', got {storage!r}"
            )
        workers = f.as_int(raw.get("workers", 1), f.join(source, "workers"), 1)
        return cls(
            name=name,
            task=_task(raw.get("task"), f.join(source, "task")),
            task_settings=dict(
                f.mapping(raw.get("task_settings"), f.join(source, "task_settings"))
            ),
            space=_space(raw.get("space"), f.join(source, "space"), base),
            objectives=parse_objectives(raw.get("objectives"), f.join(source, "objectives")),
            output_dir=out,
            storage=storage,
            budget=parse_budget(raw.get("budget"), f.join(source, "budget")),
            constraints=parse_constraints(raw.get("constraints"), f.join(source, "constraints")),
            sampler=parse_sampler(raw.get("sampler"), f.join(source, "sampler")),
            seed=f.as_int(raw.get("seed", 0), f.join(source, "seed"), 0),
            finetune=parse_finetune(raw.get("finetune"), f.join(source, "finetune")),
            warm_start=_warm_start(raw.get("warm_start", True), f.join(source, "warm_start"), base),
            early_stop=f.as_bool(raw.get("early_stop", True), f.join(source, "early_stop")),
            backend=f.one_of(
                raw.get("backend", "optuna"), ("optuna", "ray"), f.join(source, "backend")
            ),
            workers=workers,
            source=source,
        )._checked()

    def _checked(self) -> StudyConfig:
        if self.constraints.max_latency_ms is not None and self.latency_device is None:
            raise ConfigError(
                f"{self.source}: constraints.max_latency_ms needs a device: add "
                "`latency: {device: ...}` to objectives or `device: ...` to constraints"
            )
        return self


def load_study_config(path: str | Path) -> StudyConfig:
    """Read and validate ``studies/<name>.yaml``."""
    p = Path(path)
    return StudyConfig.from_dict(files.read_yaml(p, "study"), str(p), base_dir=p.resolve().parent)


def _task(raw: Any, where: str) -> str:
    if raw is None:
        raise ConfigError(
            f"{where}: missing; name a registered task (e.g. digits-cnn) or "
            "'package.module:function'"
        )
    t = f.as_str(raw, where)
    if not (_NAME.match(t) or _TASK_PATH.match(t)):
        raise ConfigError(f"{where}: must be a task name or 'package.module:function', got {t!r}")
    return t


def builtin_spaces_dir() -> Path:
    """The shipped search spaces (``autocompress/search_spaces``, a link to the repository's
    top-level ``search_spaces/``; a wheel holds copies)."""
    return Path(__file__).resolve().parents[1] / "search_spaces"


def builtin_space_names() -> list[str]:
    d = builtin_spaces_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def _candidates(rel: str, base: Path) -> list[Path]:
    bases = [base, base.parent, Path.cwd()]
    rels = [Path(rel)]
    if "/" not in rel and not rel.endswith((".yaml", ".yml")):
        rels = [Path("search_spaces") / f"{rel}.yaml"]  # a bare name: a shipped space
        # ... also found from any folder: the spaces that ship with autocompress
        return [*(b / r for r in rels for b in bases), builtin_spaces_dir() / f"{rel}.yaml"]
    return [b / r for r in rels for b in bases]


def _space(raw: Any, where: str, base: Path) -> SearchSpace:
    if isinstance(raw, dict):
        return SearchSpace.from_dict(raw, where)
    rel = f.as_str(raw, where)
    tried = [Path(rel)] if Path(rel).is_absolute() else _candidates(rel, base)
    for p in tried:
        if p.is_file():
            return SearchSpace.load(p.resolve())
    raise ConfigError(
        f"{where}: search space {rel!r} not found; looked at {[str(p) for p in tried]} "
        f"(give a path relative to the study file, an inline mapping, or a shipped space: "
        f"{', '.join(builtin_space_names()) or 'none found'})"
    )


def _warm_start(raw: Any, where: str, base: Path) -> WarmStart:
    if isinstance(raw, bool):
        return WarmStart(enabled=raw)
    raw = f.mapping(raw, where)
    f.check_keys(raw, ("enabled", "policies", "uniform_bits"), where)
    pw, bw = f.join(where, "policies"), f.join(where, "uniform_bits")
    pols = raw.get("policies") or []
    pols = f.as_list(pols, pw) if pols else []
    bits = raw.get("uniform_bits", [8])
    bits = f.as_list(bits, bw) if bits != [] else []
    return WarmStart(
        enabled=f.as_bool(raw.get("enabled", True), f.join(where, "enabled")),
        policies=tuple(_policy_file(p, f.join(pw, i), base) for i, p in enumerate(pols)),
        uniform_bits=tuple(f.one_of(b, WEIGHT_BITS, f.join(bw, i)) for i, b in enumerate(bits)),
    )


def _policy_file(raw: Any, where: str, base: Path) -> str:
    rel = Path(f.as_str(raw, where))
    tried = [rel] if rel.is_absolute() else [base / rel, Path.cwd() / rel]
    for p in tried:
        if p.is_file():
            return str(p.resolve())
    raise ConfigError(f"{where}: policy file not found; looked at {[str(p) for p in tried]}")
