"""The small sections of a study file: objectives, constraints, budget, sampler, fine-tune."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from autocompress import fields as f
from autocompress.errors import ConfigError
from autocompress.evaluate import PRUNE_SCHEDULES, FinetuneConfig
from autocompress.search._samplers import SAMPLERS, check_settings

ObjectiveName = Literal["metric", "size", "latency"]
Direction = Literal["maximize", "minimize"]
SamplerName = Literal["nsga2", "tpe", "gp", "random"]  # the rows of search._samplers.SAMPLERS
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
SCHEDULES: tuple[str, ...] = ("constant", "cosine")


@dataclass(frozen=True)
class Objective:
    """``metric`` (the task's score), ``size`` (artifact bytes) or ``latency`` (ms on a device)."""

    name: ObjectiveName
    direction: Direction
    device: str | None = None
    batch: int = 1  # latency: the batch size it is predicted / measured at

    def to_dict(self) -> Any:
        if self.name != "latency":
            return self.direction
        return {"device": self.device} if self.batch == 1 else {"device": self.device, "batch": self.batch}


@dataclass(frozen=True)
class Constraints:
    """Hard limits; a candidate breaking a size/latency limit is rejected before training."""

    max_size_kb: float | None = None
    max_latency_ms: float | None = None
    min_metric: float | None = None
    device: str | None = None  # latency device when latency is not an objective
    batch: int = 1  # its batch size


@dataclass(frozen=True)
class Budget:
    """Stop after ``trials`` trials or ``minutes`` of wall time, whichever comes first."""

    trials: int | None = None
    minutes: float | None = None


@dataclass(frozen=True)
class SamplerConfig:
    name: SamplerName = "nsga2"
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WarmStart:
    """Trials enqueued before sampling: uniform ``uniform_bits`` policies and policy files."""

    enabled: bool = True
    policies: tuple[str, ...] = ()
    uniform_bits: tuple[int, ...] = (8,)

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "policies": list(self.policies),
            "uniform_bits": list(self.uniform_bits),
        }


def parse_objectives(raw: Any, where: str) -> tuple[Objective, ...]:
    if raw is None:
        return (Objective("metric", "maximize"), Objective("size", "minimize"))
    raw = f.mapping(raw, where)
    f.check_keys(raw, ("metric", "size", "latency"), where)
    if "metric" not in raw:
        raise ConfigError(f"{where}: must include `metric: maximize` (or minimize, for a loss)")
    out = []
    for name, v in raw.items():
        w = f.join(where, name)
        if name == "latency":
            m = f.mapping(v, w) if v is not None else {}
            f.check_keys(m, ("device", "direction", "batch"), w)
            if "device" not in m:
                raise ConfigError(f"{w}: needs a device, e.g. `latency: {{device: x86-server}}`")
            f.one_of(m.get("direction", "minimize"), ("minimize",), f.join(w, "direction"))
            out.append(Objective("latency", "minimize", f.as_str(m["device"], f.join(w, "device")),
                                 f.as_int(m.get("batch", 1), f.join(w, "batch"), 1)))
            continue
        allowed = ("maximize", "minimize") if name == "metric" else ("minimize",)
        d = v.get("direction") if isinstance(v, dict) else v
        out.append(Objective(name, f.one_of(d or allowed[0], allowed, w)))
    return tuple(out)


def parse_constraints(raw: Any, where: str) -> Constraints:
    raw = f.mapping(raw, where)
    f.check_keys(raw, ("max_size_kb", "max_latency_ms", "min_metric", "device", "batch"), where)

    def pos(k: str) -> float | None:
        v = raw.get(k)
        return None if v is None else f.as_float(v, f.join(where, k), 0.0, open_lo=True)

    mm = raw.get("min_metric")
    dev = raw.get("device")
    return Constraints(
        max_size_kb=pos("max_size_kb"),
        max_latency_ms=pos("max_latency_ms"),
        min_metric=None if mm is None else f.as_float(mm, f.join(where, "min_metric")),
        device=None if dev is None else f.as_str(dev, f.join(where, "device")),
        batch=f.as_int(raw.get("batch", 1), f.join(where, "batch"), 1),
    )


def parse_budget(raw: Any, where: str) -> Budget:
    raw = f.mapping(raw, where)
    f.check_keys(raw, ("trials", "minutes"), where)
    if raw.get("trials") is None and raw.get("minutes") is None:
        raise ConfigError(f"{where}: give `trials` and/or `minutes`, e.g. budget: {{trials: 50}}")
    t, m = raw.get("trials"), raw.get("minutes")
    return Budget(
        trials=None if t is None else f.as_int(t, f.join(where, "trials"), 1),
        minutes=None if m is None else f.as_float(m, f.join(where, "minutes"), 0.0, open_lo=True),
    )


def parse_sampler(raw: Any, where: str) -> SamplerConfig:
    if raw is None:
        return SamplerConfig()
    if isinstance(raw, str):
        raw = {"name": raw}
    raw = dict(f.mapping(raw, where))
    name = f.one_of(raw.pop("name", "nsga2"), tuple(SAMPLERS), f.join(where, "name"))
    check_settings(name, raw, where)
    return SamplerConfig(name, raw)


def parse_finetune(raw: Any, where: str) -> FinetuneConfig:
    raw = f.mapping(raw, where)
    d = FinetuneConfig()
    f.check_keys(raw, tuple(d.__dataclass_fields__), where)

    def get(k: str) -> Any:
        return raw.get(k, getattr(d, k))

    return FinetuneConfig(
        steps=f.as_int(get("steps"), f.join(where, "steps"), 0),
        lr=f.as_float(get("lr"), f.join(where, "lr"), 0.0, open_lo=True),
        batch_size=f.as_int(get("batch_size"), f.join(where, "batch_size"), 1),
        optimizer=f.one_of(get("optimizer"), OPTIMIZERS, f.join(where, "optimizer")),
        schedule=f.one_of(get("schedule"), SCHEDULES, f.join(where, "schedule")),
        eval_every=f.as_int(get("eval_every"), f.join(where, "eval_every"), 1),
        weight_decay=f.as_float(get("weight_decay"), f.join(where, "weight_decay"), 0.0),
        momentum=f.as_float(get("momentum"), f.join(where, "momentum"), 0.0),
        calibration_batch=f.as_int(get("calibration_batch"), f.join(where, "calibration_batch"), 1),
        prune_schedule=f.one_of(get("prune_schedule"), PRUNE_SCHEDULES, f.join(where, "prune_schedule")),
        prune_ramp=f.as_float(get("prune_ramp"), f.join(where, "prune_ramp"), 0.0, 1.0, open_lo=True),
        prune_every=f.as_int(get("prune_every"), f.join(where, "prune_every"), 1),
        prune_start_density=f.as_float(get("prune_start_density"), f.join(where, "prune_start_density"), 1.0),
        augment=f.as_bool(get("augment"), f.join(where, "augment")),
    )
