"""IHTRegressor: exact recovery, monotone residual, warm start, convergence warning."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sparsestat._kernels._dispatch import force_backend
from sparsestat._kernels.iht import iht_solve, spectral_norm_sq
from sparsestat.linear_model import IHTRegressor, iht


def _iid_problem(n, d, k, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    coef = np.zeros(d)
    support = rng.choice(d, k, replace=False)
    coef[support] = rng.choice([-1.0, 1.0], k) * rng.uniform(1.0, 2.0, k)
    y = X @ coef + noise * rng.standard_normal(n)
    return X, y, coef


@pytest.mark.parametrize("seed", range(10))
def test_exact_support_recovery_noiseless_iid(seed):
    d, k = 400, 5
    n = math.ceil(4 * k * math.log(d))  # n = 4 k log d, the regime
    X, y, coef = _iid_problem(n, d, k, seed)
    model = IHTRegressor(k, fit_intercept=False, max_iter=2000).fit(X, y)
    assert np.array_equal(model.support_, np.flatnonzero(coef))
    np.testing.assert_allclose(model.coef_, coef, atol=1e-8)


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


def test_float32_is_preserved():
    X, y, _ = _iid_problem(30, 20, 2, 6)
    model = IHTRegressor(n_nonzero_coefs=2).fit(X.astype(np.float32), y.astype(np.float32))
    assert model.coef_.dtype == np.float32
    assert model.predict(X.astype(np.float32)).dtype == np.float32


def test_pipeline_and_grid_search():
    X, y, _ = _iid_problem(120, 30, 3, 7, noise=0.1)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), IHTRegressor()),
        {"ihtregressor__n_nonzero_coefs": [1, 3, 8]},
        cv=3,
    ).fit(X, y)
    assert search.best_params_["ihtregressor__n_nonzero_coefs"] == 3


def test_functional_twin_matches_estimator():
    X, y, _ = _iid_problem(50, 30, 3, 8, noise=0.1)
    coef, intercept = iht(X, y, 3)
    model = IHTRegressor(3).fit(X, y)
    np.testing.assert_array_equal(coef, model.coef_)
    assert intercept == model.intercept_


def test_default_sparsity_and_clipping():
    X, y, _ = _iid_problem(30, 20, 2, 9)
    assert np.count_nonzero(IHTRegressor().fit(X, y).coef_) <= 2  # n_features // 10
    assert np.count_nonzero(IHTRegressor(n_nonzero_coefs=50).fit(X, y).coef_) <= 20
