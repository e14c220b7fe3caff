"""The measured latency model: this machine's own timings of real deploy-form leaves.

Each leaf configuration is timed by :mod:`autocompress.cost.latency.profiler` on the real
deploy kernels and cached per machine fingerprint; unseen configurations are interpolated
from measured ones near in size. A fitted per-model term (end to end minus the sum of the
leaves, linear in the elements the layers output) covers what per-leaf sums miss: norms,
activations, adds, pooling, Python dispatch. Predicts only for the machine it measured.
"""

from __future__ import annotations

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

    def __init__(self, table: LeafTable | None = None, *, threads: int = 1) -> None:
        self._table = table
        self._threads = threads

    @property
    def table(self) -> LeafTable:
        if self._table is None:
            self._table = LeafTable.load(fingerprint(self._threads))
        return self._table

    def _check(self, device: DeviceProfile) -> None:
        key = self.table.fingerprint.key
        if device.fingerprint != key:
            raise ConfigError(
                f"the measured latency model only predicts for the machine it measured "
                f"(fingerprint {key}); device {device.name!r} has fingerprint "
                f"{device.fingerprint!r}: use device 'local' or the 'analytic' model"
            )

    def leaf_ms(self, leaf: LeafPlan, device: DeviceProfile) -> LeafLatency:
        self._check(device)
        hit = self.table.lookup(leaf)
        if hit is None:  # no measured leaf of this kind at all: fall back to the roofline
            ms, _ = leaf_roofline(leaf, device)
            return LeafLatency(leaf.leaf, leaf.layer, ms, "estimated")
        per_call, basis = hit
        return LeafLatency(leaf.leaf, leaf.layer, per_call * leaf.calls, basis)  # type: ignore[arg-type]

    def rest_ms(self, plan: Sequence[LeafPlan], device: DeviceProfile) -> tuple[float, str | None]:
        rest = self.table.rest_ms(plan)
        if rest is None:
            return analytic_rest_ms(plan, device), (
                "rest: no overhead measured for this model (run profile_model); analytic estimate"
            )
        return rest, None
