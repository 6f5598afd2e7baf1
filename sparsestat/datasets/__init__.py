"""Synthetic data generators and loaders."""

from sparsestat.datasets._implicit import make_implicit_feedback

__all__ = ["make_implicit_feedback"]
