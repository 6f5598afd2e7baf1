"""Sparse linear models."""

from sparsestat.linear_model._iht import IHTRegressor, iht

__all__ = [
    "IHTRegressor",
    "iht",
]
