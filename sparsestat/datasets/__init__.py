"""Data generators for the simulations of the papers."""

from sparsestat.datasets._gaussian_moe import make_gaussian_moe

__all__ = ["make_gaussian_moe"]
