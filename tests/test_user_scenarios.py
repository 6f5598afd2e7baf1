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
# (imports inside the tests, so that each family's section stands alone)


def test_sbl_in_a_scaled_pipeline_matches_ard_on_diabetes():
    """Diabetes (442 x 10): SBL behind a StandardScaler fits an intercept by default and is
    within 0.02 R^2 of scikit-learn's ARDRegression under 5-fold CV (it was -3.49 without
    one); KroneckerSBL on the same dense X is the same model."""
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import ARDRegression
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sparsestat.bayes import KroneckerSBL, SparseBayesianLearning

    X, y = load_diabetes(return_X_y=True)
    cv = KFold(5, shuffle=True, random_state=0)
    ard = cross_val_score(make_pipeline(StandardScaler(), ARDRegression()), X, y, cv=cv)
    for est in (SparseBayesianLearning(), KroneckerSBL()):
        ours = cross_val_score(make_pipeline(StandardScaler(), est), X, y, cv=cv)
        assert abs(ours.mean() - ard.mean()) <= 0.02, (type(est).__name__, ours, ard)
    # the predictive standard deviation is there too, as ARDRegression's
    model = make_pipeline(StandardScaler(), SparseBayesianLearning()).fit(X, y)
    _, std = model.predict(X[:5], return_std=True)
    assert std.shape == (5,) and np.all(std > 0)


def test_kronecker_sbl_grid_search_with_the_design_in_the_constructor():
    """KroneckerSBL(factors=...) in GridSearchCV with a placeholder X used to fit a one-column
    problem and score -0.08 everywhere; now it fails loudly, and the split form (trailing
    factors in the constructor, rows of the first factor as X) cross-validates properly."""
    import warnings

    import numpy as np
    import pytest
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    from sparsestat.bayes import KroneckerSBL
    from sparsestat.datasets import make_kronecker_sparse_signal

    factors, y, _ = make_kronecker_sparse_signal(
        factor_shapes=((12, 9), (6, 9), (5, 9)), n_nonzero=2, snr_db=25, random_state=0
    )
    grid = {"method": ["svd", "am"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the failing folds' FitFailedWarning
        with pytest.raises(ValueError, match="fits failed"):
            GridSearchCV(KroneckerSBL(factors=factors), grid, cv=3).fit(
                np.zeros((y.shape[0], 1)), y
            )
    A1, A2, A3 = factors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(KroneckerSBL(factors=[A2, A3]), grid, cv=3)
        search.fit(A1, y.reshape(12, 30))
    assert search.best_score_ > 0.95


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
