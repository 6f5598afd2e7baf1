"""Metrics for sparse recovery, signal estimation and learned dictionaries."""

from sparsestat.metrics._dictionary import fvu, mmcs
from sparsestat.metrics._regression import nmse, nmse_db, prediction_error, support_recovery

__all__ = [
    "fvu",
    "mmcs",
    "nmse",
    "nmse_db",
    "prediction_error",
    "support_recovery",
]
