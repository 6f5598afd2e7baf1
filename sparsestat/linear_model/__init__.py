"""Sparse linear models."""

from sparsestat.linear_model._greedy_complex import (
    complex_omp,
    kronecker_omp,
    oracle_least_squares,
)
from sparsestat.linear_model._iht import IHTRegressor, iht

__all__ = [
    "IHTRegressor",
    "complex_omp",
    "iht",
    "kronecker_omp",
    "oracle_least_squares",
]
