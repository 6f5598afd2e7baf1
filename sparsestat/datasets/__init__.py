"""Synthetic data sets for sparse recovery and sparse learning."""

from sparsestat.datasets._gaussian_moe import make_gaussian_moe
from sparsestat.datasets._regression import make_sparse_regression

__all__ = ["make_gaussian_moe", "make_sparse_regression"]
