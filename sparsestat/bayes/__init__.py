"""Sparse Bayesian learning: classical EM-SBL and Kronecker-structured SBL (KroSBL)."""

from sparsestat.bayes._design import KroneckerDesign
from sparsestat.bayes._kronecker_sbl import KroneckerSBL, kronecker_sbl
from sparsestat.bayes._many import kronecker_sbl_many
from sparsestat.bayes._sbl import SparseBayesianLearning

__all__ = [
    "KroneckerDesign",
    "KroneckerSBL",
    "SparseBayesianLearning",
    "kronecker_sbl",
    "kronecker_sbl_many",
]
