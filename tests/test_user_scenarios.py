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


def _randhie():
    """statsmodels' RAND health insurance data: 20,190 people, doctor visits (mdvis) on 9
    covariates, mapped to [-1, 1] by fixed ranges known before seeing the data (the
    variables' documented ranges: coinsurance, binary indicators, log payments, number of
    diseases), not fitted on it; y = (visits - 5) / 5."""
    import numpy as np
    import statsmodels.api as sm

    data = sm.datasets.randhie.load_pandas().data
    y = (data["mdvis"].to_numpy(float) - 5.0) / 5.0
    X = data.drop(columns="mdvis").to_numpy(float)
    lo, hi = np.zeros(9), np.array([5.0, 1.0, 8.0, 9.0, 1.0, 60.0, 1.0, 1.0, 1.0])
    X = 2.0 * (X - lo) / (hi - lo) - 1.0
    perm = np.random.default_rng(0).permutation(y.size)
    return X[perm[:15000]], y[perm[:15000]], X[perm[15000:]], y[perm[15000:]]


def test_ldp_at_infinite_epsilon_with_defaults_is_within_ten_percent_of_ols():
    import numpy as np
    import pytest
    from sklearn.linear_model import LinearRegression

    from sparsestat.privacy import LDPSparseLinearRegression

    X, y, X_test, y_test = _randhie()
    ols = np.mean((LinearRegression().fit(X, y).predict(X_test) - y_test) ** 2)
    with pytest.warns(UserWarning, match="theory defaults"):  # bounds not given
        model = LDPSparseLinearRegression(epsilon=np.inf, fit_intercept=True).fit(X, y)
    err = np.mean((model.predict(X_test) - y_test) ** 2)
    assert err <= 1.1 * ols
    assert model.alpha_ == 0.0  # the default threshold vanishes without noise
    theory = LDPSparseLinearRegression(epsilon=np.inf, alpha="theory", bounds_X=1.0, bounds_y=5.0)
    assert theory.fit(X, y).alpha_ > 0  # the theory threshold is kept as an option


def test_ldp_at_epsilon_8_runs_with_defaults_and_says_how_many_users_are_needed():
    import re
    import warnings

    import numpy as np

    from sparsestat.privacy import LDPSparseLinearRegression

    X, y, _, _ = _randhie()
    model = LDPSparseLinearRegression(epsilon=8.0)
    assert model.get_params()["calibration"] == "analytic"  # valid for every epsilon
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    messages = [str(w.message) for w in caught]
    needed = [m for m in messages if "users would be needed" in m]
    assert len(needed) == 1, messages
    users = float(re.search(r"at least about ([0-9.e+]+) users", needed[0]).group(1))
    assert users > X.shape[0]  # more users than the 15,000 at hand
    assert np.all(np.isfinite(model.coef_))


def test_ldp_classic_calibration_error_explains_the_budget_split():
    import pytest

    from sparsestat.privacy import LDPSparseLinearRegression

    X, y, _, _ = _randhie()
    with pytest.raises(ValueError, match=r"epsilon / 2 = 4.0 \(the budget is split between"):
        LDPSparseLinearRegression(
            epsilon=8.0, calibration="classic", bounds_X=1.0, bounds_y=3.0
        ).fit(X[:500], y[:500])


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
