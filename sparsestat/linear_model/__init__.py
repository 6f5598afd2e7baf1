"""Sparse linear models."""

from sparsestat.linear_model._random_support import (
    RandomSupportRegressor,
    random_support_regression,
)

__all__ = ["RandomSupportRegressor", "random_support_regression"]
