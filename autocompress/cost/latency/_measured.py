"""The measured latency model: this machine's own timings of real deploy-form leaves.

Each leaf configuration is timed by :mod:`autocompress.cost.profiling.profiler` on the real
deploy kernels and cached per machine fingerprint; unseen configurations are interpolated
from measured ones near in size. Fitted per-model terms cover what per-leaf sums miss
(see :func:`~autocompress.cost.profiling.profiler.profile_model`): the non-leaf rest (norms,
activations, adds, pooling, Python dispatch; linear in the elements the layers output), the
factor by which leaves run slower inside the model than alone (caches shared with the
other layers) and a constant per int8 leaf call on top of it. Predicts only for the machine it measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from autocompress.cost._plan import LeafPlan
from autocompress.cost.latency._analytic import analytic_rest_ms, leaf_roofline
from autocompress.cost.latency._base import LatencyModel, LeafLatency
from autocompress.cost.latency._cache import fingerprint
from autocompress.cost.latency._device import DeviceProfile
from autocompress.cost.latency._registry import register_latency_model
from autocompress.cost.latency._table import LeafTable
from autocompress.errors import ConfigError


@register_latency_model("measured")
class MeasuredModel(LatencyModel):
    """Looks leaves up in the measured table of this machine (``device`` must be ``local``).

    Example::

        table = LeafTable.load(fingerprint(threads=1))
        profile_plan(leaf_plan, table)            # time the leaves not yet measured
        est = MeasuredModel(table).predict(leaf_plan, device_profile("local"))
    """

    name = "measured"

    def __init__(self, table: LeafTable | None = None) -> None:
        self._table = table

    def table_for(self, device: DeviceProfile) -> LeafTable:
        """The given table, else the cached table of the machine ``device`` was measured on."""
        if self._table is None:
            self._table = LeafTable.load(fingerprint(device.threads or 1))
        self._check(self._table, device)
        return self._table

    @staticmethod
    def _check(table: LeafTable, device: DeviceProfile) -> None:
        key = table.fingerprint.key
        if device.fingerprint != key:
            raise ConfigError(
                f"the measured latency model only predicts for the machine it measured "
                f"(fingerprint {key}); device {device.name!r} has fingerprint "
                f"{device.fingerprint!r}: use device 'local' or the 'analytic' model"
            )

    def in_model(self, plan: Sequence[LeafPlan], device: DeviceProfile,
                 leaves: tuple[LeafLatency, ...]) -> tuple[tuple[LeafLatency, ...], str | None]:
        """Leaves as timed alone, scaled by the model's fitted in-model factor, plus a constant
        per int8 call."""
        table = self.table_for(device)
        k, q = table.leaf_factor(plan), table.int8_call_ms(plan)
        if k == 1.0 and q == 0.0:
            return leaves, None
        int8_calls = {p.leaf: p.calls for p in plan if p.kernel == "int8"}
        scaled = tuple(dataclasses.replace(x, ms=x.ms * k + q * int8_calls.get(x.leaf, 0)) for x in leaves)
        return scaled, (f"leaves x{k:.3f} and +{q * 1e3:.2f} us per int8 call: measured slowdown inside this "
                        "model vs alone")

    def leaf_ms(self, leaf: LeafPlan, device: DeviceProfile) -> LeafLatency:
        hit = self.table_for(device).lookup(leaf)
        if hit is None:  # no measured leaf of this kind at all: fall back to the roofline
            ms, _ = leaf_roofline(leaf, device)
            return LeafLatency(leaf.leaf, leaf.layer, ms, "estimated")
        per_call, basis = hit
        return LeafLatency(leaf.leaf, leaf.layer, per_call * leaf.calls, basis)  # type: ignore[arg-type]

    def rest_ms(self, plan: Sequence[LeafPlan], device: DeviceProfile) -> tuple[float, str | None]:
        rest = self.table_for(device).rest_ms(plan)
        if rest is None:
            return analytic_rest_ms(plan, device), (
                "rest: no overhead measured for this model (run profile_model); analytic estimate"
            )
        return rest, None
