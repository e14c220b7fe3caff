"""Cost models computed without training: exact size, and latency per device."""

from autocompress.cost._plan import LeafPlan, plan, structural_copy
from autocompress.cost._size import size_breakdown, size_bytes

__all__ = ["LeafPlan", "plan", "size_breakdown", "size_bytes", "structural_copy"]
