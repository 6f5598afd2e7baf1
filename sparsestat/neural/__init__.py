"""PyTorch-based estimators (the ``torch`` extra)."""

from sparsestat.neural._sae import SparseAutoencoder

__all__ = ["SparseAutoencoder"]
