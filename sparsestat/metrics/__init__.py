"""Metrics for sparse recovery."""

from sparsestat.metrics._channel import channel_nmse

__all__ = ["channel_nmse"]
