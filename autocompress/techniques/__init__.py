"""Compression techniques: masks, low rank, quantisation, channel pruning, distillation."""
