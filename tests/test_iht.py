"""IHTRegressor / IHTRegressorCV: recovery, independent references, weights, sparse input, CV."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import config_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sparsestat._kernels._dispatch import force_backend
from sparsestat._kernels.iht import iht_solve, spectral_norm_sq
from sparsestat.linear_model import IHTRegressor, IHTRegressorCV, iht


def _iid_problem(n, d, k, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    coef = np.zeros(d)
    support = rng.choice(d, k, replace=False)
    coef[support] = rng.choice([-1.0, 1.0], k) * rng.uniform(1.0, 2.0, k)
    y = X @ coef + noise * rng.standard_normal(n)
    return X, y, coef


def _numpy_iht(X, y, k, step, n_iter):
    """IHT written from its definition (Blumensath and Davies 2009), independent of the kernel."""
    w = np.zeros(X.shape[1])
    for _ in range(n_iter):
        z = w + step * X.T @ (y - X @ w)
        keep = np.argsort(-np.abs(z), kind="stable")[:k]
        w = np.zeros_like(z)
        w[keep] = z[keep]
    return w


@pytest.mark.parametrize("seed", range(10))
def test_exact_support_recovery_noiseless_iid(seed):
    d, k = 400, 5
    n = math.ceil(4 * k * math.log(d))  # n = 4 k log d, the regime
    X, y, coef = _iid_problem(n, d, k, seed)
    model = IHTRegressor(k, fit_intercept=False, max_iter=2000).fit(X, y)
    assert np.array_equal(model.support_, np.flatnonzero(coef))
    np.testing.assert_allclose(model.coef_, coef, atol=1e-8)


@pytest.mark.parametrize("seed", range(3))
def test_fixed_step_equals_from_scratch_numpy_iht(seed):
    X, y, _ = _iid_problem(40, 25, 3, seed, noise=0.3)
    step = 1.0 / np.linalg.norm(X, 2) ** 2
    ref = _numpy_iht(X, y, 3, step, 60)
    model = IHTRegressor(3, step_size=1.0, debias=False, fit_intercept=False, max_iter=60, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    np.testing.assert_allclose(model.coef_, ref, atol=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_debiased_fit_is_the_brute_force_best_support(seed):
    """On a tiny problem the best k-subset is found by enumerating all 28 of them."""
    rng = np.random.default_rng(seed)
    n, d, k = 15, 8, 2
    X = rng.standard_normal((n, d))
    y = 2.0 * X[:, 1] - 1.5 * X[:, 5] + 0.3 * rng.standard_normal(n)
    best = min(
        itertools.combinations(range(d), k),
        key=lambda S: np.sum((y - X[:, S] @ np.linalg.lstsq(X[:, S], y, rcond=None)[0]) ** 2),
    )
    model = IHTRegressor(k, fit_intercept=False).fit(X, y)
    assert tuple(model.support_) == best
    ls = np.linalg.lstsq(X[:, best], y, rcond=None)[0]
    np.testing.assert_allclose(model.coef_[list(best)], ls, rtol=1e-10)


def test_debias_equals_ols_on_support():
    X, y, coef = _iid_problem(80, 40, 4, 0, noise=0.3)
    model = IHTRegressor(n_nonzero_coefs=4).fit(X, y)
    ols = LinearRegression().fit(X[:, model.support_], y)
    np.testing.assert_allclose(model.coef_[model.support_], ols.coef_, rtol=1e-10)
    assert model.intercept_ == pytest.approx(ols.intercept_, abs=1e-10)


@pytest.mark.parametrize("fixed", [True, False])
def test_residual_is_monotone(fixed):
    X, y, _ = _iid_problem(50, 100, 5, 1, noise=0.5)
    step = 1.0 / spectral_norm_sq(X) if fixed else None
    w = np.zeros(100)
    prev = np.inf
    for _ in range(50):
        w, _, _ = iht_solve(X, y, 5, step, w, 1, 0.0)
        r = 0.5 * np.sum((y - X @ w) ** 2)
        assert r <= prev + 1e-10
        prev = r


def test_spectral_norm_power_iteration_matches_svd():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((600, 700))
    assert spectral_norm_sq(X, n_iter=1000) == pytest.approx(np.linalg.norm(X, 2) ** 2, rel=1e-6)


def test_warm_start_continues_from_previous_coef():
    X, y, _ = _iid_problem(60, 80, 4, 3, noise=0.1)
    cold = IHTRegressor(n_nonzero_coefs=4, max_iter=1000).fit(X, y)
    warm = IHTRegressor(n_nonzero_coefs=4, warm_start=True, max_iter=1000).fit(X, y)
    warm.fit(X, y)
    assert warm.n_iter_ <= 3
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=1e-8)


def test_convergence_warning_names_the_certificate():
    X, y, _ = _iid_problem(60, 80, 4, 4, noise=1.0)
    with pytest.warns(ConvergenceWarning, match="relative change"):
        model = IHTRegressor(n_nonzero_coefs=10, max_iter=1, tol=0.0).fit(X, y)
    assert not model.converged_


def test_debiased_fixed_point_certifies_convergence():
    """Correlated columns (diabetes): the iterates creep along the support, but the debiased
    result is already L-stationary (checked by an independent IHT step), and here a 100x
    longer run ends at the same coefficients."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    short = IHTRegressor(9, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short.fit(X, y)
    assert short.converged_ and short.relative_change_ > short.tol
    Xc, yc = X - X.mean(0), y - y.mean()
    step = 1.0 / np.linalg.norm(Xc, 2) ** 2
    z = short.coef_ + step * Xc.T @ (yc - Xc @ short.coef_)
    keep = np.argsort(-np.abs(z), kind="stable")[:9]
    assert set(keep) == set(short.support_)  # one classical IHT step keeps the support
    long = IHTRegressor(9, max_iter=30_000, tol=1e-12).fit(X, y)
    np.testing.assert_allclose(short.coef_, long.coef_, rtol=1e-10, atol=1e-10)
    with pytest.warns(ConvergenceWarning, match="not an IHT fixed point"):
        IHTRegressor(10, max_iter=1, tol=0.0).fit(*_iid_problem(60, 80, 4, 4, noise=1.0)[:2])


def test_too_many_nonzero_coefs_is_a_clear_error():
    X, y, _ = _iid_problem(30, 10, 2, 9)
    with pytest.raises(
        ValueError, match=r"n_nonzero_coefs=50 exceeds the number of features, n_features=10"
    ):
        IHTRegressor(n_nonzero_coefs=50).fit(X, y)


def test_all_features_is_least_squares_without_a_warning():
    X, y, _ = _iid_problem(30, 10, 2, 9, noise=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = IHTRegressor(n_nonzero_coefs=10).fit(X, y)
    ols = LinearRegression().fit(X, y)
    np.testing.assert_allclose(model.coef_, ols.coef_, rtol=1e-10)
    assert model.intercept_ == pytest.approx(ols.intercept_, abs=1e-10)
    assert model.n_iter_ == 0 and model.converged_


def test_default_sparsity():
    X, y, _ = _iid_problem(30, 20, 2, 9)
    assert np.count_nonzero(IHTRegressor().fit(X, y).coef_) <= 2  # n_features // 10


@pytest.mark.parametrize("fixed", [True, False])
def test_generic_and_torch_paths_agree(fixed):
    torch = pytest.importorskip("torch")
    X, y, _ = _iid_problem(40, 60, 3, 5, noise=0.2)
    step = 1 / spectral_norm_sq(X) if fixed else None
    ref, n_ref, _ = iht_solve(X, y, 3, step, np.zeros(60), 200, 1e-10)
    with force_backend("generic"):
        gen, _, _ = iht_solve(X, y, 3, step, np.zeros(60), 200, 1e-10)
    w0 = torch.zeros(60, dtype=torch.float64)
    tw, _, _ = iht_solve(torch.tensor(X), torch.tensor(y), 3, step, w0, 200, 1e-10)
    np.testing.assert_allclose(gen, ref, atol=1e-12)
    np.testing.assert_allclose(tw.numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("namespace", ["torch", "array_api_strict"])
@pytest.mark.parametrize("weighted", [False, True])
def test_estimator_on_array_api_inputs_matches_numpy(namespace, weighted):
    """The whole fit (centring, weights, IHT, debiasing) runs in the input's library."""
    xp = pytest.importorskip(namespace)
    X, y, _ = _iid_problem(50, 30, 3, 11, noise=0.2)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, 50) if weighted else None
    ref = IHTRegressor(3).fit(X, y, sample_weight=sw)
    X_xp, y_xp = xp.asarray(X), xp.asarray(y)
    sw_xp = None if sw is None else xp.asarray(sw)
    with config_context(array_api_dispatch=True):
        est = IHTRegressor(3).fit(X_xp, y_xp, sample_weight=sw_xp)
        pred = est.predict(X_xp)
    assert type(est.coef_) is type(X_xp) and type(pred) is type(X_xp)
    np.testing.assert_allclose(np.asarray(est.coef_), ref.coef_, atol=1e-10)
    np.testing.assert_allclose(np.asarray(pred), ref.predict(X), atol=1e-10)
    assert est.intercept_ == pytest.approx(ref.intercept_, abs=1e-10)


def test_float32_is_preserved():
    X, y, _ = _iid_problem(30, 20, 2, 6)
    model = IHTRegressor(n_nonzero_coefs=2).fit(X.astype(np.float32), y.astype(np.float32))
    assert model.coef_.dtype == np.float32
    assert model.predict(X.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_sparse_input_equals_dense_fit(fmt, fit_intercept):
    X, y, _ = _iid_problem(80, 50, 4, 12, noise=0.1)
    X[np.abs(X) < 0.8] = 0.0  # about 40 % nonzeros
    y = y + 3.0
    sw = np.random.default_rng(1).integers(0, 3, 80).astype(float)
    for step in ("normalized", 1.0):
        dense = IHTRegressor(4, step_size=step, fit_intercept=fit_intercept, max_iter=2000)
        sparse = IHTRegressor(4, step_size=step, fit_intercept=fit_intercept, max_iter=2000)
        dense.fit(X, y, sample_weight=sw)
        sparse.fit(sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X), y, sample_weight=sw)
        np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-8)
        assert sparse.intercept_ == pytest.approx(dense.intercept_, abs=1e-8)
        np.testing.assert_allclose(sparse.predict(sp.csr_matrix(X)), dense.predict(X), atol=1e-8)


def test_integer_weights_equal_repeated_rows_and_zero_weights_removal():
    X, y, _ = _iid_problem(40, 15, 3, 13, noise=0.3)
    sw = np.random.default_rng(2).integers(0, 4, 40)
    rep = np.repeat(np.arange(40), sw)
    a = IHTRegressor(3).fit(X, y, sample_weight=sw)
    b = IHTRegressor(3).fit(X[rep], y[rep])
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-10)
    assert a.intercept_ == pytest.approx(b.intercept_, abs=1e-10)


def test_pipeline_and_grid_search():
    X, y, _ = _iid_problem(120, 30, 3, 7, noise=0.1)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), IHTRegressor()),
        {"ihtregressor__n_nonzero_coefs": [1, 3, 8]},
        cv=3,
    ).fit(X, y)
    assert search.best_params_["ihtregressor__n_nonzero_coefs"] == 3


def test_cv_picks_the_planted_sparsity_and_matches_manual_cross_validation():
    X, y, coef = _iid_problem(120, 30, 4, 8, noise=0.3)
    folds = KFold(4)
    model = IHTRegressorCV(max_n_nonzero_coefs=8, cv=folds).fit(X, y)
    assert model.n_nonzero_coefs_ == 4
    np.testing.assert_array_equal(model.support_, np.flatnonzero(coef))
    assert model.mse_path_.shape == (8, 4)
    # the k = 4 column of the error path, recomputed fold by fold with plain fits
    for j, (train, test) in enumerate(folds.split(X)):
        fit = IHTRegressor(4).fit(X[train], y[train])
        mse = np.mean((fit.predict(X[test]) - y[test]) ** 2)
        assert model.mse_path_[3, j] == pytest.approx(mse, rel=1e-8)


def test_dask_predict_is_lazy_and_equal():
    da = pytest.importorskip("dask.array")
    X, y, _ = _iid_problem(90, 12, 3, 14, noise=0.1)
    model = IHTRegressor(3).fit(X, y)
    Xd = da.from_array(X, chunks=(25, 12))
    pred = model.predict(Xd)
    assert isinstance(pred, da.Array) and pred.shape == (90,)
    np.testing.assert_allclose(pred.compute(), model.predict(X), atol=1e-12)


def test_functional_form():
    X, y, _ = _iid_problem(50, 30, 3, 8, noise=0.1)
    coef, intercept = iht(X, y, 3)
    assert np.count_nonzero(coef) == 3 and isinstance(intercept, float)
