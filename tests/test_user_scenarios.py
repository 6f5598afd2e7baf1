"""What a new user meets: each estimator with its defaults on real, bundled data sets.

Every scenario runs on data that ships with scikit-learn or statsmodels (diabetes, digits,
breast cancer, star98, ...) or on a small planted problem, and states the outcome a user
should get with the defaults: a score close to scikit-learn's counterpart, a clear error, or a
warning that says why. One section per family.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------------------------
# Sparse Bayesian learning (SparseBayesianLearning, KroneckerSBL)
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Local differential privacy (LDPSparseLinearRegression, LDPIHTRegressor)
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Linear models (IHTRegressor, LqRegression, RandomSupportRegressor)
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Sparse coding and mixtures (LqSparseCoder, dictionary learners, GaussianMoERegressor)
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Sparse autoencoders (SparseAutoencoder)
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Other torch estimators (sparse training, SSVI, COMET, group envelope, QuickSelection, SMF)
# ----------------------------------------------------------------------------------------------
