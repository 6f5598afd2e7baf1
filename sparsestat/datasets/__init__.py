"""Synthetic data sets for sparse recovery and sparse learning."""

from sparsestat.datasets._gaussian_moe import make_moe_regression
from sparsestat.datasets._images import (
    load_image_patches,
    make_dct_dictionary,
    whiten_olshausen_field,
)
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
    "load_image_patches",
    "make_dct_dictionary",
    "make_moe_regression",
    "make_implicit_feedback",
    "make_irs_mimo_channel",
    "make_kronecker_sparse_signal",
    "make_planted_features",
    "make_sparse_regression",
    "whiten_olshausen_field",
]
