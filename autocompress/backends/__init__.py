"""Real low-precision CPU kernels behind small, replaceable modules (``int8``)."""
