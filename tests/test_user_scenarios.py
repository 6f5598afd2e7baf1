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


def test_sae_recovers_a_small_planted_dictionary_with_the_default_training_length():
    """6,000 rows, d = 32, 64 planted atoms, 3 active per row: the default training length
    adapts to the small data (at least 2,000 optimiser steps) and recovers the atoms; 20
    epochs of 6 mini-batches (the former default) leave them undertrained."""
    import pytest

    pytest.importorskip("torch")
    from sparsestat.datasets import make_planted_features
    from sparsestat.metrics import mmcs
    from sparsestat.neural import SparseAutoencoder, TopK

    X, _, atoms = make_planted_features(6000, 32, 64, firing_prob=3 / 64, random_state=0)
    sae = SparseAutoencoder(n_components=64, activation=TopK(k=3), random_state=0).fit(X)
    assert mmcs(atoms, sae.components_) >= 0.9
    assert sae.n_epochs_ * 6 >= 2000 and sae.n_steps_ >= 2000
    assert sae.n_dead_latents_ <= 6
    short = SparseAutoencoder(64, activation=TopK(k=3), max_epochs=20, random_state=0).fit(X)
    assert mmcs(atoms, short.components_) < 0.85  # the former default: undertrained


def test_sae_k_larger_than_the_number_of_latents_raises_naming_k():
    import numpy as np
    import pytest

    pytest.importorskip("torch")
    from sparsestat.neural import SparseAutoencoder, TopK

    X = np.random.default_rng(0).standard_normal((200, 16))
    with pytest.raises(ValueError, match=r"k=100 is larger than n_components=32"):
        SparseAutoencoder(n_components=32, activation=TopK(k=100)).fit(X)
    with (  # the former flat name
        pytest.warns(FutureWarning, match="activation=TopK"),
        pytest.raises(ValueError, match=r"k=100 is larger than n_components=32"),
    ):
        SparseAutoencoder(k=100, n_components=32).fit(X)


def test_sae_warns_when_most_latents_never_fire_on_digits():
    import pytest

    pytest.importorskip("torch")
    from sklearn.datasets import load_digits

    from sparsestat.neural import SparseAutoencoder, TopK

    X = load_digits().data  # 1,797 rows: with k = 1, at most 1,797 of 4,096 latents can fire
    sae = SparseAutoencoder(n_components=4096, activation=TopK(k=1), max_epochs=1)
    with pytest.warns(UserWarning, match=r"of 4096 latents did not fire"):
        sae.set_params(random_state=0).fit(X)
    assert sae.n_dead_latents_ > 2048 and sae.dead_latents_.sum() == sae.n_dead_latents_


# ----------------------------------------------------------------------------------------------
# Other torch estimators (sparse training, SSVI, COMET, group envelope, QuickSelection, SMF)
# ----------------------------------------------------------------------------------------------
