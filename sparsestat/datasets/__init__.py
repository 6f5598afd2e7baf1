"""Synthetic data sets for sparse recovery and sparse learning."""

from sparsestat.datasets._planted import make_planted_features

__all__ = ["make_planted_features"]
