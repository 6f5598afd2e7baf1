"""Sparse coding and dictionary learning with l1, l0, l1/2, lq and CEL0 penalties."""

from sparsestat.decomposition._lq_coding import LqSparseCoder, lq_sparse_encode
from sparsestat.decomposition._lq_dict_learning import (
    LqDictionaryLearning,
    MiniBatchLqDictionaryLearning,
)
from sparsestat.decomposition._receptive_fields import fit_gabor, gabor_2d, orientation_tuning

__all__ = [
    "LqDictionaryLearning",
    "LqSparseCoder",
    "MiniBatchLqDictionaryLearning",
    "fit_gabor",
    "gabor_2d",
    "lq_sparse_encode",
    "orientation_tuning",
]
