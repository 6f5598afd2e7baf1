"""scikit-learn conventions of the SBL estimators: intercept, predictive standard deviation,
the feature-space E-step, sample weights, float32, and the ways of giving a Kronecker design.

Every expected value comes from an independent dense computation (explicit posterior
covariance, ``np.kron``, repeated rows), never from the code under test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold

from sparsestat._kernels.kron import dense_estep, feature_estep
from sparsestat._solvers.sbl import sbl_em
from sparsestat.bayes import KroneckerDesign, KroneckerSBL, SparseBayesianLearning
from sparsestat.datasets import make_kronecker_sparse_signal
from tests.test_kronecker_sbl import dense_kron, rel


def sparse_problem(n, p, cplx=False, seed=0, offset=0.0, noise=0.05):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    w = np.zeros(p)
    w[[1, 4, p - 2]] = [1.5, -2.0, 1.0]
    if cplx:
        X = X + 1j * rng.standard_normal((n, p))
        w = w * (1 - 0.5j)
    y = X @ w + offset + noise * rng.standard_normal(n)
    return X, y


def posterior_on_support(A, y, gamma, s2):
    """Independent posterior over the support: explicit inverse of the precision matrix."""
    S = np.flatnonzero(gamma > 0)
    As = A[:, S]
    Sigma = np.linalg.inv(As.conj().T @ As / s2 + np.diag(1 / gamma[S]))
    mu = Sigma @ As.conj().T @ y / s2
    return S, Sigma, mu


# --------------------------------------------------------------------------- intercept
@pytest.mark.parametrize("cplx", [False, True])
def test_intercept_is_fitted_by_default(cplx):
    X, y = sparse_problem(40, 60, cplx, offset=7.0 - 2j if cplx else 7.0)
    est = SparseBayesianLearning(noise_variance=0.05**2).fit(X, y)
    # the fit equals the no-intercept fit on data centred by hand, plus the offset
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    ref = SparseBayesianLearning(noise_variance=0.05**2, fit_intercept=False).fit(Xc, yc)
    assert rel(est.coef_, ref.coef_) < 1e-12
    assert np.isclose(est.intercept_, y.mean() - X.mean(axis=0) @ ref.coef_, rtol=1e-12)
    assert abs(est.intercept_ - (7.0 - 2j if cplx else 7.0)) < 0.1
    assert rel(est.predict(X), Xc @ ref.coef_ + y.mean()) < 1e-12
    # the same for KroneckerSBL with one dense factor; a Kronecker design has none
    kro = KroneckerSBL(noise_variance=0.05**2).fit(X, y)
    assert rel(kro.coef_, est.coef_) < 1e-12 and np.isclose(kro.intercept_, est.intercept_)
    factors, yk, _ = make_kronecker_sparse_signal(
        factor_shapes=((5, 6), (6, 6)), n_nonzero=2, snr_db=30, random_state=0
    )
    assert KroneckerSBL().fit(factors, yk + 3.0).intercept_ == 0.0


def test_intercept_multi_target():
    X, y = sparse_problem(30, 20, seed=1)
    Y = np.column_stack([y + 1.0, 2 * y - 3.0])
    est = SparseBayesianLearning(noise_variance=0.01).fit(X, Y)
    assert est.intercept_.shape == (2,) and est.predict(X).shape == (30, 2)
    Xc = X - X.mean(axis=0)
    ref = SparseBayesianLearning(noise_variance=0.01, fit_intercept=False).fit(Xc, Y - Y.mean(0))
    assert rel(est.coef_, ref.coef_) < 1e-12
    assert np.allclose(est.intercept_, Y.mean(0) - ref.coef_ @ X.mean(axis=0), rtol=1e-12)


# --------------------------------------------------------------------------- predictive std
@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("shape", [(30, 50), (80, 12)], ids=["wide", "tall"])
def test_predict_return_std_matches_dense_posterior(cplx, shape):
    X, y = sparse_problem(*shape, cplx, offset=2.0, seed=2)
    s2 = 0.05**2
    est = SparseBayesianLearning(noise_variance=s2).fit(X, y)
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    S, Sigma, mu = posterior_on_support(Xc, yc, est.gamma_, s2)
    assert np.array_equal(S, est.support_)
    assert rel(est.coef_[S], mu) < 1e-9
    assert rel(est.sigma_, Sigma) < 1e-9
    X_new, _ = sparse_problem(7, shape[1], cplx, seed=3)
    mean, std = est.predict(X_new, return_std=True)
    Xn = (X_new - X.mean(axis=0))[:, S]
    expected = np.sqrt(np.real(np.sum((Xn @ Sigma) * Xn.conj(), axis=1)) + s2)
    assert rel(std, expected) < 1e-9
    assert rel(mean, est.predict(X_new)) == 0.0


@pytest.mark.parametrize("cplx", [False, True])
def test_kronecker_predict_return_std_is_matrix_free_posterior(cplx):
    factors, y, _ = make_kronecker_sparse_signal(
        factor_shapes=((4, 6), (5, 6), (3, 6)), n_nonzero=2, snr_db=20, complex=cplx,
        random_state=4,
    )  # fmt: skip
    s2 = 0.02
    est = KroneckerSBL(method="am", noise_variance=s2).fit(factors, y)
    A = dense_kron(factors)
    S, Sigma, mu = posterior_on_support(A, y, est.gamma_, s2)
    assert rel(est.coef_[S], mu) < 1e-9
    mean, std = est.predict(return_std=True)
    expected = np.sqrt(np.real(np.sum((A[:, S] @ Sigma) * A[:, S].conj(), axis=1)) + s2)
    assert rel(std, expected) < 1e-9 and rel(mean, A @ est.coef_) < 1e-12
    # a new design with other rows (same columns): kron of new factors
    rng = np.random.default_rng(5)
    new = [rng.standard_normal((2, 6)) for _ in range(3)]
    _, std_new = est.predict(new, return_std=True)
    An = dense_kron(new)[:, S]
    assert rel(std_new, np.sqrt(np.real(np.sum((An @ Sigma) * An.conj(), axis=1)) + s2)) < 1e-9


# --------------------------------------------------------------------------- feature E-step
@pytest.mark.parametrize("cplx", [False, True])
def test_feature_space_estep_equals_sample_space(cplx):
    X, y = sparse_problem(50, 9, cplx, seed=6)
    rng = np.random.default_rng(0)
    gamma = rng.uniform(0.05, 2.0, 9)
    Y = np.column_stack([y, 0.5 * y])
    a = dense_estep(X, gamma, 0.3, Y)
    b = feature_estep(X.conj().T @ X, X.conj().T @ Y, float(np.sum(np.abs(Y) ** 2)), gamma, 0.3, 50)
    assert rel(b.mean, a.mean) < 1e-12 and rel(b.sigma_diag, a.sigma_diag) < 1e-12
    assert abs(b.logdet - a.logdet) < 1e-10 * abs(a.logdet)
    assert abs(b.quad - a.quad) < 1e-10 * a.quad
    # whole EM runs: the same iterates whichever E-step (the automatic choice is 'feature')
    kw = {"noise_var": None, "max_iter": 30, "tol": 1e-8, "prune_rel": 1e-3}
    auto = sbl_em([X], Y, **kw)
    dense = sbl_em([X], Y, estep="dense", **kw)
    assert auto.estep == "feature" and dense.estep == "dense"
    assert auto.n_iter == dense.n_iter
    assert rel(auto.coef, dense.coef) < 1e-9 and rel(auto.gamma, dense.gamma) < 1e-9
    assert abs(auto.noise_var / dense.noise_var - 1) < 1e-9


# --------------------------------------------------------------------------- sample weights
def _repeat(X, y, w):
    reps = np.asarray(w, dtype=int)
    return np.repeat(X, reps, axis=0), np.repeat(y, reps, axis=0)


@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("cls", [SparseBayesianLearning, KroneckerSBL])
def test_integer_weights_equal_repeated_rows(cls, cplx):
    X, y = sparse_problem(25, 30, cplx, offset=1.0, seed=7, noise=0.2)
    w = np.random.default_rng(1).integers(0, 4, 25)
    weighted = cls().fit(X, y, sample_weight=w)
    repeated = cls().fit(*_repeat(X, y, w))
    removed = cls().fit(X[w > 0], y[w > 0], sample_weight=w[w > 0])
    for other in (repeated, removed):
        assert weighted.n_iter_ == other.n_iter_
        assert rel(weighted.coef_, other.coef_) < 1e-8
        assert abs(weighted.intercept_ - other.intercept_) < 1e-8 * abs(other.intercept_)
        assert abs(weighted.noise_variance_ / other.noise_variance_ - 1) < 1e-8
    # the score is weighted the same way
    assert np.isclose(weighted.score(X, y, sample_weight=w), repeated.score(*_repeat(X, y, w)))


def test_slice_weights_in_the_split_form():
    factors, y, _ = make_kronecker_sparse_signal(
        factor_shapes=((7, 8), (5, 8), (4, 8)), n_nonzero=2, snr_db=15, random_state=8
    )
    A1, A2, A3 = factors
    Y = y.reshape(7, 20)
    w = np.array([1, 0, 2, 3, 1, 0, 2])
    est = KroneckerSBL(factors=[A2, A3], method="am").fit(A1, Y, sample_weight=w)
    rep = KroneckerSBL(factors=[A2, A3], method="am").fit(*_repeat(A1, Y, w))
    assert est.n_iter_ == rep.n_iter_
    assert rel(est.coef_, rep.coef_) < 1e-8
    assert abs(est.noise_variance_ / rep.noise_variance_ - 1) < 1e-8
    with pytest.raises(ValueError, match="sample_weight"):
        KroneckerSBL().fit(factors, y, sample_weight=np.ones(y.shape[0]))


# --------------------------------------------------------------------------- float32
@pytest.mark.parametrize("cplx", [False, True])
def test_float32_is_kept(cplx):
    X, y = sparse_problem(40, 60, cplx, offset=1.0, seed=9)
    single = np.complex64 if cplx else np.float32
    est32 = SparseBayesianLearning().fit(X.astype(single), y.astype(single))
    est64 = SparseBayesianLearning().fit(X, y)
    assert est32.coef_.dtype == single and est32.gamma_.dtype == np.float32
    assert est32.predict(X.astype(single)).dtype == single
    assert est32.predict(X.astype(single), return_std=True)[1].dtype == np.float32
    assert np.array_equal(est32.support_, est64.support_)
    assert rel(est32.coef_, est64.coef_) < 1e-4
    factors, yk, _ = make_kronecker_sparse_signal(
        factor_shapes=((6, 8), (7, 8), (5, 8)), n_nonzero=2, snr_db=30, complex=cplx,
        random_state=10,
    )  # fmt: skip
    kro32 = KroneckerSBL().fit([f.astype(single) for f in factors], yk.astype(single))
    kro64 = KroneckerSBL().fit(factors, yk)
    assert kro32.coef_.dtype == single and kro32.predict().dtype == single
    assert np.array_equal(kro32.support_, kro64.support_)
    assert rel(kro32.coef_, kro64.coef_) < 1e-4


# --------------------------------------------------------------------------- design forms
def _small_kron(seed=0):
    factors, y, coef = make_kronecker_sparse_signal(
        factor_shapes=((8, 9), (6, 9), (5, 9)), n_nonzero=2, snr_db=25, random_state=seed
    )
    return factors, y, coef


def test_design_given_twice_raises():
    factors, y, _ = _small_kron()
    with pytest.raises(ValueError, match="design twice"):
        KroneckerSBL(factors=factors).fit(factors, y)
    with pytest.raises(ValueError, match="design twice"):
        KroneckerSBL(factors=factors).fit(KroneckerDesign(factors), y)
    # the way GridSearchCV used to be fooled: a placeholder X with the whole design in the
    # constructor is the leading factor of the split form, and y does not fit it
    with pytest.raises(ValueError, match=r"split form.*shape \(240, 240\)"):
        KroneckerSBL(factors=factors).fit(np.zeros((240, 1)), y)
    # the design given once, either way, is the same fit
    a = KroneckerSBL(factors=factors).fit(None, y)
    b = KroneckerSBL().fit(factors, y)
    assert np.array_equal(a.coef_, b.coef_)


def test_split_form_is_the_same_fit_and_predicts_slices():
    factors, y, _ = _small_kron(1)
    A1, A2, A3 = factors
    Y = y.reshape(8, 30)
    split = KroneckerSBL(factors=[A2, A3]).fit(A1, Y)
    whole = KroneckerSBL().fit(factors, y)
    assert np.array_equal(split.coef_, whole.coef_) and split.n_iter_ == whole.n_iter_
    assert split.n_features_in_ == 9
    assert np.allclose(
        split.predict(A1[:3]), (dense_kron(factors) @ whole.coef_)[:90].reshape(3, 30)
    )
    mean, std = split.predict(A1[:3], return_std=True)
    _, std_whole = whole.predict([A1[:3], A2, A3], return_std=True)
    assert std.shape == (3, 30) and np.allclose(std.ravel(), std_whole, rtol=1e-12)


def test_grid_search_over_slices_of_a_kronecker_design():
    """GridSearchCV holds out rows of the leading factor; every fold is a Kronecker fit, and
    the scores tell a good setting (R^2 0.99) from a bad one (pruning half the prior)."""
    factors, y, _ = make_kronecker_sparse_signal(
        factor_shapes=((12, 9), (6, 9), (5, 9)), n_nonzero=2, snr_db=25, random_state=0
    )
    A1, A2, A3 = factors
    Y = y.reshape(12, 30)
    cv = KFold(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(
            KroneckerSBL(factors=[A2, A3]), {"prune_threshold": [1e-3, 0.5]}, cv=cv
        ).fit(A1, Y)
        assert search.best_score_ > 0.98 and search.best_params_["prune_threshold"] == 1e-3
        assert np.min(search.cv_results_["mean_test_score"]) < 0.5
        # each fold by hand: the whole-design fit on the training slices, scored on the others
        for i, (train, test) in enumerate(cv.split(A1)):
            est = KroneckerSBL(prune_threshold=1e-3).fit([A1[train], A2, A3], Y[train].ravel())
            pred = (dense_kron([A1[test], A2, A3]) @ est.coef_).reshape(len(test), 30)
            r2 = 1 - np.sum((Y[test] - pred) ** 2) / np.sum((Y[test] - Y[test].mean(0)) ** 2)
            assert np.isclose(search.cv_results_[f"split{i}_test_score"][search.best_index_], r2)


def test_split_form_bad_y_and_conflicting_rows():
    factors, y, _ = _small_kron(3)
    A1, A2, A3 = factors
    with pytest.raises(ValueError, match="split form"):
        KroneckerSBL(factors=[A2, A3]).fit(A1, y)  # flat y: one row per row of X is needed
    with pytest.raises(ValueError, match="split form"):
        KroneckerSBL(factors=[A2, A3]).fit(A1, y.reshape(8, 30)[:, :29])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = KroneckerSBL(factors=[A2, A3], max_iter=3).fit(A1, y.reshape(8, 30))
    with pytest.raises(ValueError, match="features"):
        est.predict(np.ones((2, 5)))
