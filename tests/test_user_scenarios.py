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


def test_moe_on_diabetes_scores_r2_like_any_regressor():
    """cross_val_score of the mixture of experts is R^2 (not the log-likelihood, about -5.4
    here), within a few points of LinearRegression's on diabetes."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sparsestat.mixture import GaussianMoERegressor

    X, y = load_diabetes(return_X_y=True)
    cv = KFold(3, shuffle=True, random_state=0)
    moe = make_pipeline(StandardScaler(), GaussianMoERegressor(random_state=0))
    scores = cross_val_score(moe, X, y, cv=cv)
    linear = cross_val_score(make_pipeline(StandardScaler(), LinearRegression()), X, y, cv=cv)
    assert abs(scores.mean() - linear.mean()) < 0.08, (scores, linear)  # measured 0.495, 0.490
    tr, te = next(iter(cv.split(X)))
    fitted = moe.fit(X[tr], y[tr])
    assert fitted.score(X[te], y[te]) == r2_score(y[te], fitted.predict(X[te]))
    assert scores[0] == fitted.score(X[te], y[te])
    assert fitted[-1].score_loglik(fitted[0].transform(X[te]), y[te]) < -4  # the likelihood


def test_moe_on_engel_two_experts_and_a_quiet_dense_to_sparse_gate():
    """Engel's food expenditure (statsmodels): two experts beat one on BIC, score is R^2, and
    the dense-to-sparse gate with its defaults fits without a warning (its temperature is
    only fitted where it is identifiable) and gives the softmax gate's fit."""
    import warnings

    import numpy as np
    import pytest
    from sklearn.metrics import r2_score

    from sparsestat.mixture import GaussianMoERegressor

    sm = pytest.importorskip("statsmodels.api")
    data = sm.datasets.engel.load_pandas().data
    X, y = data[["income"]].to_numpy(), data["foodexp"].to_numpy()
    one = GaussianMoERegressor(1, random_state=0).fit(X, y)
    two = GaussianMoERegressor(2, random_state=0).fit(X, y)
    assert two.bic(X, y) < one.bic(X, y) - 50  # measured 2783 vs 2908
    assert two.score(X, y) == pytest.approx(r2_score(y, two.predict(X)), rel=1e-12)
    assert two.score(X, y) > 0.8  # measured 0.85
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        dts = GaussianMoERegressor(2, gate="dense_to_sparse", random_state=0).fit(X, y)
    assert dts.score(X, y) == pytest.approx(two.score(X, y), abs=1e-6)
    with pytest.warns(UserWarning, match="not identifiable"):
        GaussianMoERegressor(2, gate="dense_to_sparse", fit_temperature=True).fit(X, y)
    assert np.isfinite(dts.score_loglik(X, y))


def test_sparse_codes_of_digits_in_a_pandas_pipeline():
    """A dictionary learned on digits (8x8 images) gives sparse codes that a linear classifier
    reads almost as well as the raw pixels; the pipeline outputs named pandas columns, and
    the images as a SciPy sparse matrix (half of the pixels are 0) give the same codes."""
    import numpy as np
    import pytest
    import scipy.sparse as sp
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline

    from sparsestat.decomposition import LqSparseCoder, MiniBatchLqDictionaryLearning

    pd = pytest.importorskip("pandas")
    X, y = load_digits(return_X_y=True)
    X = pd.DataFrame(X / 16.0, columns=[f"pixel{i}" for i in range(64)])
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0, stratify=y)
    learner = MiniBatchLqDictionaryLearning(
        32, penalty="l1/2", alpha=0.1, max_iter=3, random_state=0
    )
    pipe = make_pipeline(learner, LogisticRegression(max_iter=2000)).fit(Xtr, ytr)
    assert pipe.score(Xte, yte) > 0.93  # measured 0.964; raw pixels 0.969
    codes = pipe[0].set_output(transform="pandas").transform(Xte)
    assert list(codes.columns) == [f"minibatchlqdictionarylearning{i}" for i in range(32)]
    assert np.mean(np.count_nonzero(codes.to_numpy(), axis=1)) < 8  # measured 4.9 of 32
    coder = LqSparseCoder(learner.components_, penalty="l1/2", alpha=0.1, max_iter=300, tol=1e-5)
    dense = coder.transform(Xte.to_numpy())
    np.testing.assert_allclose(coder.transform(sp.csr_array(Xte.to_numpy())), dense, atol=1e-10)
    np.testing.assert_allclose(dense, codes.to_numpy(), atol=1e-10)


# ----------------------------------------------------------------------------------------------
# Sparse autoencoders (SparseAutoencoder)
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Other torch estimators (sparse training, SSVI, COMET, group envelope, QuickSelection, SMF)
# ----------------------------------------------------------------------------------------------
