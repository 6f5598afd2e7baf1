"""Quality metrics for sparse estimation and sparse learning."""

from sparsestat.metrics._ranking import ndcg_at_k, recall_at_k

__all__ = ["ndcg_at_k", "recall_at_k"]
