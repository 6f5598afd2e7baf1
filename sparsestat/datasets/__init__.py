"""Synthetic data generators."""

from sparsestat.datasets._kronecker import (
    irs_channels_from_coef,
    make_irs_mimo_channel,
    make_kronecker_sparse_signal,
)

__all__ = [
    "irs_channels_from_coef",
    "make_irs_mimo_channel",
    "make_kronecker_sparse_signal",
]
