"""Metrics for sparse recovery and sparse learning."""

from sparsestat.metrics._dictionary import fvu, mmcs

__all__ = ["fvu", "mmcs"]
