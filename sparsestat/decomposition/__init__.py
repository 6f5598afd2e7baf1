"""Sparse coding and dictionary learning with l1, l0, l1/2, lq and CEL0 penalties."""

from sparsestat.decomposition._lq_coding import LqSparseCoder, lq_sparse_encode

__all__ = ["LqSparseCoder", "lq_sparse_encode"]
