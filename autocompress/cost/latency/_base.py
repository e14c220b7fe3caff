"""The latency-model interface: a narrow base class, and the estimate every model returns.

A latency model maps the deploy form's plan (``list[LeafPlan]``) and a device profile to
an estimate with a figure per leaf, the non-leaf rest of the model (norms, activations,
pooling, attention matmuls, framework overhead) and the end-to-end total. A new model
supplies :meth:`LatencyModel.leaf_ms` and :meth:`LatencyModel.rest_ms` (optuna
``BaseSampler`` style) and, if leaves run differently inside a model than alone, the
optional hook :meth:`LatencyModel.in_model`; :meth:`LatencyModel.predict` composes them
(subclasses do not override it) and records which model and device produced every figure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from autocompress.cost._plan import LeafPlan
from autocompress.cost.latency._device import DeviceProfile

Basis = Literal["compute", "memory", "measured", "interpolated", "estimated"]


@dataclass(frozen=True)
class LeafLatency:
    """One leaf's predicted time (all its calls), and what the figure rests on."""

    leaf: str
    layer: str
    ms: float
    basis: Basis


@dataclass(frozen=True)
class LatencyEstimate:
    """A prediction, stamped with the latency model and the device that produced it."""

    model: str
    device: str
    leaves: tuple[LeafLatency, ...]
    rest_ms: float
    total_ms: float
    notes: tuple[str, ...] = field(default=())

    @property
    def leaf_ms(self) -> dict[str, float]:
        return {x.leaf: x.ms for x in self.leaves}

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_model": self.model,
            "device": self.device,
            "total_ms": self.total_ms,
            "rest_ms": self.rest_ms,
            "leaves": {x.leaf: {"ms": x.ms, "basis": x.basis} for x in self.leaves},
            "notes": list(self.notes),
        }


class LatencyModel(ABC):
    """Predicts the latency of a deploy form from its plan, on one device.

    Subclasses set ``name`` and implement the two hooks; they must not run torch ops
    (a prediction is a filter applied before any training: <= 5 ms for 50 leaves).

    Example::

        model = get_latency_model("analytic")
        est = model.predict(plan(net, policy, x), device_profile("a100"))
        print(est.total_ms, est.leaf_ms)
    """

    name: ClassVar[str] = "base"

    @abstractmethod
    def leaf_ms(self, leaf: LeafPlan, device: DeviceProfile) -> LeafLatency:
        """Time of one leaf, all its calls included."""

    @abstractmethod
    def rest_ms(self, plan: Sequence[LeafPlan], device: DeviceProfile) -> tuple[float, str | None]:
        """Time of everything that is not a weight leaf, and a note on how it was obtained."""

    def in_model(self, plan: Sequence[LeafPlan], device: DeviceProfile,
                 leaves: tuple[LeafLatency, ...]) -> tuple[tuple[LeafLatency, ...], str | None]:
        """Hook: the leaves' times inside the whole model, from their times alone (default:
        unchanged), and a note on what was applied."""
        return leaves, None

    def predict(self, plan: Sequence[LeafPlan], device: DeviceProfile) -> LatencyEstimate:
        """Per-leaf and end-to-end milliseconds of the deploy form described by ``plan``."""
        leaves, adjusted = self.in_model(plan, device, tuple(self.leaf_ms(p, device) for p in plan))
        rest, note = self.rest_ms(plan, device)
        notes = tuple(n for n in (note, adjusted) if n)
        total = sum(x.ms for x in leaves) + rest
        return LatencyEstimate(self.name, device.name, leaves, rest, total, notes)


def layer_outputs(plan: Sequence[LeafPlan]) -> list[LeafPlan]:
    """Leaves whose output is a layer's output (a factorized layer's ``first`` is internal).

    The non-leaf rest of a model (norm, activation, residual add, pooling) acts on these.
    """
    return [p for p in plan if p.leaf == p.layer or not p.leaf.endswith(".first")]


def batch_of(p: LeafPlan) -> int:
    return int(p.input_shape[0]) if p.input_shape else 1


def numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n
