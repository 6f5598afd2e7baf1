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


def test_ldp_iht_says_when_its_estimate_is_noise_and_refuses_too_many_nonzeros():
    import warnings

    import numpy as np
    import pytest

    from sparsestat.privacy import LDPIHTRegressor

    X, y, X_test, y_test = _randhie()
    kw = {"bounds_X": 1.0, "bounds_y": 5.0, "random_state": 0}
    with pytest.warns(UserWarning, match="users would be needed"):
        noisy = LDPIHTRegressor(epsilon=8.0, **kw).fit(X, y)
    assert np.mean((noisy.predict(X_test) - y_test) ** 2) > np.var(y_test)  # worse than the mean
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no noise, no warning
        LDPIHTRegressor(epsilon=np.inf, **kw).fit(X, y)
    with pytest.raises(ValueError, match="n_nonzero_coefs=10 exceeds n_features=9"):
        LDPIHTRegressor(n_nonzero_coefs=10, epsilon=8.0, **kw).fit(X, y)


def test_ldp_default_fits_an_intercept_on_an_uncentred_target():
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    from sparsestat.privacy import LDPSparseLinearRegression

    X, y = load_diabetes(return_X_y=True)  # y from 25 to 346, mean 152
    # bounds from public knowledge: the features are scaled to within 0.2, y below 400
    model = LDPSparseLinearRegression(epsilon=np.inf, bounds_X=0.25, bounds_y=400.0).fit(X, y)
    ols = LinearRegression().fit(X, y).score(X, y)
    assert model.score(X, y) > ols - 0.02  # through the origin it was R^2 = -3.4


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
def _diabetes():
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True)


def _breast_cancer_as_regression():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return X, y.astype(float)


def test_linear_lq_cv_in_a_scaled_pipeline_matches_lasso_cv_on_diabetes():
    import warnings

    from sklearn.linear_model import LassoCV
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sparsestat.linear_model import LqRegressionCV

    X, y = _diabetes()
    folds = KFold(3, shuffle=True, random_state=0)
    ref = cross_val_score(make_pipeline(StandardScaler(), LassoCV()), X, y, cv=folds).mean()
    for penalty in ("l1_2", "cel0"):  # l1 equals LassoCV exactly (test_lq_regression.py)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # defaults converge: no warning to ignore
            pipe = make_pipeline(StandardScaler(), LqRegressionCV(penalty))
            score = cross_val_score(pipe, X, y, cv=folds).mean()
        assert score >= ref - 0.01, (penalty, score, ref)


def test_linear_lq_default_tolerance_converges_on_unscaled_breast_cancer():
    """An ill-conditioned design (feature scales 1e-3 .. 1e3): defaults converge, no warning."""
    import warnings

    import numpy as np
    from sklearn.linear_model import Lasso

    from sparsestat.linear_model import LqRegression

    X, y = _breast_cancer_as_regression()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = LqRegression("l1", alpha=1e-3).fit(X, y)
    assert ours.converged_ and ours.certificate_ <= 1e-6
    ref = Lasso(alpha=1e-3, tol=1e-10, max_iter=1_000_000).fit(X, y)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-3)


def test_linear_iht_out_of_range_sparsity_is_a_clear_error_and_full_sparsity_is_ols():
    import warnings

    import numpy as np
    import pytest
    from sklearn.linear_model import LinearRegression

    from sparsestat.linear_model import IHTRegressor

    X, y = _diabetes()  # 10 features
    with pytest.raises(ValueError, match="n_nonzero_coefs=50 exceeds .* n_features=10"):
        IHTRegressor(n_nonzero_coefs=50).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # k = n_features: no useless convergence warning
        iht = IHTRegressor(n_nonzero_coefs=10).fit(X, y)
    np.testing.assert_allclose(iht.predict(X), LinearRegression().fit(X, y).predict(X), rtol=1e-8)


def test_linear_iht_cv_and_random_support_defaults_on_diabetes():
    import warnings

    from sklearn.linear_model import LassoCV
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sparsestat.linear_model import IHTRegressorCV, RandomSupportRegressor

    X, y = _diabetes()
    folds = KFold(5, shuffle=True, random_state=0)
    ref = cross_val_score(make_pipeline(StandardScaler(), LassoCV()), X, y, cv=folds).mean()
    for est in (IHTRegressorCV(), RandomSupportRegressor(random_state=0)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no convergence warning with the defaults
            pipe = make_pipeline(StandardScaler(), est)
            score = cross_val_score(pipe, X, y, cv=folds, error_score="raise").mean()
        assert score >= ref - 0.02, (type(est).__name__, score, ref)


def test_linear_grid_search_over_a_flat_alpha_with_a_string_penalty_on_diabetes():
    import numpy as np
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sparsestat.linear_model import LqRegression

    X, y = _diabetes()
    grid = {"lqregression__alpha": np.geomspace(1e-3, 10, 5)}
    search = GridSearchCV(make_pipeline(StandardScaler(), LqRegression("l1_2")), grid, cv=3)
    search.fit(X, y)
    assert search.best_params_["lqregression__alpha"] < 10  # the grid was searched
    assert search.best_score_ > 0.4


def test_linear_sample_weight_and_sparse_input_on_breast_cancer():
    import numpy as np
    import scipy.sparse as sp
    from sklearn.preprocessing import MaxAbsScaler

    from sparsestat.linear_model import IHTRegressor, LqRegression

    X, y = _breast_cancer_as_regression()
    X = MaxAbsScaler().fit_transform(X)
    X[X < 0.3] = 0.0  # a sparse design
    w = np.where(y == 1, 1.0, 3.0)  # up-weight the minority class
    for est in (LqRegression("l0", alpha=1e-3), IHTRegressor(n_nonzero_coefs=5)):
        dense = est.fit(X, y, sample_weight=w).coef_.copy()
        sparse = est.fit(sp.csr_matrix(X), y, sample_weight=w).coef_
        np.testing.assert_allclose(sparse, dense, atol=1e-8)
        rep = np.repeat(np.arange(len(y)), w.astype(int))
        np.testing.assert_allclose(est.fit(X[rep], y[rep]).coef_, dense, atol=1e-8)


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


def _breast_cancer_split():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def test_sparse_mlp_defaults_adapt_to_small_data_and_match_mlpclassifier():
    """569 rows are 6 mini-batches per epoch: a fixed 50 epochs would be 300 optimiser
    steps; the default ``max_epochs="auto"`` trains for at least 2000 and the 90 %-sparse
    network scores as scikit-learn's dense ``MLPClassifier`` in a scaled pipeline."""
    import pytest

    pytest.importorskip("torch")
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sparsestat.neural import SparseMLPClassifier

    Xtr, Xte, ytr, yte = _breast_cancer_split()
    ours = make_pipeline(StandardScaler(), SparseMLPClassifier(random_state=0)).fit(Xtr, ytr)
    ref = make_pipeline(StandardScaler(), MLPClassifier(random_state=0)).fit(Xtr, ytr)
    clf = ours[-1]
    assert clf.n_steps_ >= 2000 and clf.n_epochs_ > 50
    assert clf.sparsity_ == pytest.approx(0.9, abs=0.01)
    assert ours.score(Xte, yte) >= ref.score(Xte, yte) - 0.03


def test_torch_classifiers_take_sample_weight_and_early_stopping_on_breast_cancer():
    """Up-weighting the malignant class raises its recall; early stopping stops early and
    keeps the best epoch; both as in scikit-learn's MLPClassifier."""
    import numpy as np
    import pytest

    pytest.importorskip("torch")
    from sklearn.metrics import recall_score
    from sklearn.preprocessing import StandardScaler

    from sparsestat.neural import COMETMoEClassifier, SparseMLPClassifier

    Xtr, Xte, ytr, yte = _breast_cancer_split()
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    kw = {"hidden_layer_sizes": (32,), "max_epochs": 30, "random_state": 0}
    plain = SparseMLPClassifier(**kw).fit(Xtr, ytr)
    heavy = SparseMLPClassifier(**kw).fit(Xtr, ytr, sample_weight=np.where(ytr == 0, 20.0, 1.0))
    r_plain = recall_score(yte, plain.predict(Xte), pos_label=0)
    r_heavy = recall_score(yte, heavy.predict(Xte), pos_label=0)
    assert r_heavy > r_plain and r_heavy >= 0.95
    moe = COMETMoEClassifier(
        n_experts=4, k=2, max_epochs=300, early_stopping=True, n_iter_no_change=5,
        random_state=0,
    ).fit(Xtr, ytr)  # fmt: skip
    assert moe.converged_ and moe.n_iter_ < 300
    losses = [h["valid_loss"] for h in moe.history_]
    assert moe.best_loss_ == min(losses)
    assert moe.score(Xte, yte) > 0.9


def test_out_of_range_neural_parameters_raise_naming_them():
    """A group count above the number of neurons, and a module option the network does not
    have, are named in a clear error (scikit-learn raises in ``set_params`` too)."""
    import pytest

    pytest.importorskip("torch")
    from sklearn.datasets import load_digits

    from sparsestat.neural import GroupEnvelopeMLPClassifier, SSVIClassifier

    X, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match="n_nonzero_groups=1000 exceeds the 32 groups"):
        GroupEnvelopeMLPClassifier(hidden_layer_sizes=(32,), n_nonzero_groups=1000).fit(X, y)
    with pytest.raises(ValueError, match="'module__foo'"):
        SSVIClassifier().set_params(module__foo=1)
    with pytest.raises(ValueError, match="'module__foo'"):
        SSVIClassifier(module__foo=1, max_epochs=1).fit(X[:50], y[:50])
