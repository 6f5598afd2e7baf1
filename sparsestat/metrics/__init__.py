"""Metrics for sparse recovery, signal estimation and learned dictionaries."""

from sparsestat.metrics._calibration import expected_calibration_error
from sparsestat.metrics._channel import channel_nmse
from sparsestat.metrics._dictionary import fvu, mmcs
from sparsestat.metrics._ranking import ndcg_at_k, recall_at_k
from sparsestat.metrics._regression import nmse, nmse_db, prediction_error, support_recovery
from sparsestat.metrics._voronoi import voronoi_loss

__all__ = [
    "channel_nmse",
    "expected_calibration_error",
    "fvu",
    "mmcs",
    "ndcg_at_k",
    "nmse",
    "nmse_db",
    "prediction_error",
    "recall_at_k",
    "support_recovery",
    "voronoi_loss",
]
