"""Helpers for tests and benchmarks that need real infrastructure (a local Ray cluster).

Not imported by the package itself.
"""

from autocompress.testing._ray_cluster import LocalRayCluster, process_tree_hwm

__all__ = ["LocalRayCluster", "process_tree_hwm"]
