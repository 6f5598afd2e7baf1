"""Metrics for sparse recovery, signal estimation and learned dictionaries."""

from sparsestat.metrics._ranking import ndcg_at_k, recall_at_k
from sparsestat.metrics._regression import nmse, nmse_db, prediction_error, support_recovery

__all__ = [
    "ndcg_at_k",
    "nmse",
    "nmse_db",
    "prediction_error",
    "recall_at_k",
    "support_recovery",
]
