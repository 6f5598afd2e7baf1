"""Metrics for sparse recovery, signal estimation and learned dictionaries."""

from sparsestat.metrics._channel import channel_nmse
from sparsestat.metrics._dictionary import fvu, mmcs
from sparsestat.metrics._regression import nmse, nmse_db, prediction_error, support_recovery
from sparsestat.metrics._voronoi import voronoi_loss

__all__ = [
    "channel_nmse",
    "fvu",
    "mmcs",
    "nmse",
    "nmse_db",
    "prediction_error",
    "support_recovery",
    "voronoi_loss",
]
