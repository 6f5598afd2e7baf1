"""Synthetic data sets for sparse recovery and sparse learning."""

from sparsestat.datasets._regression import make_sparse_regression

__all__ = ["make_sparse_regression"]
