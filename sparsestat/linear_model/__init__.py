"""Sparse linear models."""

from sparsestat.linear_model._greedy_complex import (
    complex_omp,
    kronecker_omp,
    oracle_least_squares,
)
from sparsestat.linear_model._iht import IHTRegressor, IHTRegressorCV, iht
from sparsestat.linear_model._lq import LqRegression, LqRegressionCV, lq_path
from sparsestat.linear_model._random_support import (
    RandomSupportRegressor,
    random_support_regression,
)

__all__ = [
    "IHTRegressor",
    "IHTRegressorCV",
    "LqRegression",
    "LqRegressionCV",
    "RandomSupportRegressor",
    "iht",
    "lq_path",
    "random_support_regression",
    "complex_omp",
    "kronecker_omp",
    "oracle_least_squares",
]
