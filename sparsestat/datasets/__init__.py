"""Synthetic data sets for sparse recovery and sparse learning."""

from sparsestat.datasets._gaussian_moe import make_gaussian_moe
from sparsestat.datasets._implicit import make_implicit_feedback
from sparsestat.datasets._kronecker import (
    irs_channels_from_coef,
    make_irs_mimo_channel,
    make_kronecker_sparse_signal,
)
from sparsestat.datasets._planted import make_planted_features
from sparsestat.datasets._regression import make_sparse_regression

__all__ = [
    "irs_channels_from_coef",
    "make_gaussian_moe",
    "make_implicit_feedback",
    "make_irs_mimo_channel",
    "make_kronecker_sparse_signal",
    "make_planted_features",
    "make_sparse_regression",
]
