"""Oracles for LqRegression, lq_path and the working-set CD kernel."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, lasso_path

from sparsestat._kernels._dispatch import force_backend
from sparsestat._kernels.cd import cd_objective, cd_solve
from sparsestat.linear_model import LqRegression, lq_path
from sparsestat.penalties import CEL0, L1_2, make_penalty

PENALTIES = ["l1", "l0", "l1/2", "lq", "cel0"]


def _data(n=80, d=40, k=4, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = np.zeros(d)
    w[rng.choice(d, k, replace=False)] = rng.choice([-2.0, 2.0], k)
    y = X @ w + 0.5 + noise * rng.standard_normal(n)
    return X, y, w


def test_l1_equals_sklearn_lasso():
    X, y, _ = _data()
    for fit_intercept in (True, False):
        ours = LqRegression("l1", alpha=0.05, fit_intercept=fit_intercept, tol=1e-12).fit(X, y)
        ref = Lasso(alpha=0.05, fit_intercept=fit_intercept, tol=1e-14, max_iter=100000).fit(X, y)
        np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-7)
        np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-7)
        assert ours.certificate_kind_ == "duality_gap" and ours.converged_


@pytest.mark.parametrize("name", PENALTIES)
def test_coordinatewise_fixed_point(name):
    """At convergence every coordinate is its own prox step (checked with penalty objects)."""
    X, y, _ = _data(seed=1)
    alpha = 0.05
    reg = LqRegression(name, alpha=alpha, q=0.7, fit_intercept=False, tol=1e-12).fit(X, y)
    n = X.shape[0]
    L = np.sum(X**2, axis=0) / n
    g = -X.T @ (y - X @ reg.coef_) / n
    pen = make_penalty(name, alpha=alpha, q=0.7)
    if name == "cel0":
        pen = CEL0(alpha, atom_norms=np.sqrt(L))
        # gamma a^2 = 1: the CEL0 coordinate prox is the hard threshold at sqrt(2 alpha / L)
        z = reg.coef_ - g / L
        again = np.where(np.abs(z) > np.sqrt(2 * alpha / L), z, 0.0)
    else:
        again = pen.prox(reg.coef_ - g / L, 1.0 / L)
    np.testing.assert_allclose(again, reg.coef_, atol=1e-8)
    assert reg.certificate_ <= 1e-12


def test_recovers_planted_support_and_objective_below_l1_start():
    X, y, w = _data(n=100, d=60, noise=0.05, seed=2)
    for name in ["l0", "l1/2", "cel0"]:
        reg = LqRegression(name, alpha=0.02).fit(X, y)
        assert set(np.flatnonzero(reg.coef_)) == set(np.flatnonzero(w)), name
        np.testing.assert_allclose(reg.coef_, w, atol=0.05)


def test_numba_matches_generic_cd():
    X, y, _ = _data(n=40, d=25, seed=3)
    for name in PENALTIES:
        a = cd_solve(X, y, name, 0.05, q=0.6, tol=1e-10)
        with force_backend("generic"):
            b = cd_solve(X, y, name, 0.05, q=0.6, tol=1e-10)
        np.testing.assert_allclose(a["coef"], b["coef"], atol=1e-10)
        assert a["n_epochs"] == b["n_epochs"]


def test_objective_matches_independent_formula():
    X, y, _ = _data(seed=4)
    w = np.random.default_rng(0).standard_normal(X.shape[1]) * 0.3
    n = X.shape[0]
    for name in ["l1", "l0", "l1/2", "lq"]:
        pen = make_penalty(name, alpha=0.2, q=0.4)
        ref = 0.5 * np.sum((y - X @ w) ** 2) / n + pen.value(w)
        assert np.isclose(cd_objective(X, y, w, name, 0.2, 0.4), ref, rtol=1e-12)


def test_warm_start_convergence_warning_and_penalty_object():
    X, y, _ = _data(seed=5)
    reg = LqRegression(L1_2(alpha=0.05), warm_start=True).fit(X, y)
    first = reg.n_epochs_
    reg.fit(X, y)
    assert reg.n_epochs_ <= max(first // 2, 1)
    assert LqRegression(L1_2(alpha=0.05)).fit(X, y).coef_.tolist() == pytest.approx(
        LqRegression("l1/2", alpha=0.05).fit(X, y).coef_.tolist()
    )
    with pytest.warns(ConvergenceWarning, match="duality_gap"):
        LqRegression("l1", alpha=1e-4, max_iter=1, tol=1e-15).fit(X, y)
    with pytest.raises(ValueError):
        LqRegression(make_penalty("group_l1", groups=np.zeros(40, int))).fit(X, y)


def test_path_l1_matches_lasso_path_and_alpha_max_is_tight():
    X, y, _ = _data(seed=6)
    Xc, yc = X - X.mean(0), y - y.mean()
    alphas, coefs, certs = lq_path(Xc, yc, penalty="l1", n_alphas=8, tol=1e-12)
    ref_alphas, ref_coefs, _ = lasso_path(Xc, yc, alphas=alphas, tol=1e-14, max_iter=100000)
    np.testing.assert_allclose(coefs, ref_coefs, atol=1e-6)
    assert np.all(certs <= 1e-12)
    for name in PENALTIES:
        alphas, coefs, _ = lq_path(Xc, yc, penalty=name, n_alphas=3, eps=0.99)
        assert np.all(coefs[:, 0] == 0), name  # alpha_max: zero is a fixed point
        a, c, _ = lq_path(Xc, yc, penalty=name, alphas=[alphas[0] * 0.98])
        assert np.any(c != 0), name  # and just below it zero is not
