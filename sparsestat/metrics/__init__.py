"""Metrics for sparse recovery and parameter estimation."""

from sparsestat.metrics._voronoi import voronoi_loss

__all__ = ["voronoi_loss"]
