"""Mixtures of experts: the Gaussian mixture of linear experts with temperature gates."""

from sparsestat.mixture._gaussian_moe import GaussianMoERegressor

__all__ = ["GaussianMoERegressor"]
