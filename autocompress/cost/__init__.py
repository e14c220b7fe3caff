"""Cost models computed without training: exact size, and latency per device."""

from autocompress.cost._plan import LeafPlan, plan, structural_copy
from autocompress.cost._size import SizeReport, file_bytes, size_breakdown, size_bytes, size_report

__all__ = ["LeafPlan", "SizeReport", "file_bytes", "plan", "size_breakdown", "size_bytes", "size_report",
           "structural_copy"]
