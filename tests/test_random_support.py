"""Oracles of RandomSupportRegressor (spec random_support_regression.md, oracles 1-10)."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LassoCV

from sparsestat._kernels._dispatch import force_backend
from sparsestat._kernels.precondition import (
    FactorBackMap,
    back_map,
    back_map_adjoint,
    encode_on_support,
    factor_design,
    residual_scales,
    select_factors,
    subset_certificates,
    thin_svd,
)
from sparsestat.datasets import make_sparse_regression
from sparsestat.linear_model import RandomSupportRegressor, random_support_regression


def _pred_err(X, coef_true, est):
    """In-sample prediction error (1/N) ||X (w_hat - w*)||^2, intercept included."""
    return float(np.mean((X @ (est.coef_ - coef_true) + est.intercept_) ** 2))


def _normalised(X):
    Xc = X - X.mean(axis=0)
    return Xc / (np.linalg.norm(Xc, axis=0) / math.sqrt(X.shape[0]))


def _quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


# ----------------------------------------------------------------------------- oracle 1
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_identity_reduces_to_sklearn_lasso(fit_intercept):
    X, y = make_sparse_regression(60, 40, 4, design="factor", random_state=0)
    X = X * np.linspace(0.5, 3.0, 40) + 2.0  # unequal scales and nonzero means
    alpha, tol = 0.02, 1e-12
    est = RandomSupportRegressor(
        preconditioner="identity",
        alpha=alpha,
        fit_intercept=fit_intercept,
        tol=tol,
        max_iter=100_000,
        random_state=0,
    ).fit(X, y)
    assert est.n_factors_ == 0
    Xc = X - X.mean(axis=0) if fit_intercept else X
    c = np.linalg.norm(Xc, axis=0) / math.sqrt(X.shape[0])
    ref = Lasso(alpha=alpha, fit_intercept=fit_intercept, tol=tol, max_iter=100_000)
    ref.fit(X / c, y)
    np.testing.assert_allclose(est.coef_, ref.coef_ / c, rtol=0, atol=1e-8)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, rtol=0, atol=1e-8)


def test_identity_cv_matches_lassocv_on_normalised_columns():
    X, y = make_sparse_regression(80, 50, 4, random_state=1)
    est = RandomSupportRegressor(preconditioner="identity", random_state=0).fit(X, y)
    c = np.linalg.norm(X - X.mean(0), axis=0) / math.sqrt(80)
    ref = LassoCV(alphas=100, cv=5, max_iter=10_000).fit(X / c, y)
    assert est.alpha_ == pytest.approx(ref.alpha_, rel=1e-10)
    np.testing.assert_allclose(est.coef_, ref.coef_ / c, atol=1e-8)
    assert est.intercept_ == pytest.approx(ref.intercept_, abs=1e-8)


# ----------------------------------------------------------------------------- oracle 2
def _factor_pieces(X, r):
    Xn = _normalised(X)
    n = Xn.shape[0]
    U, S, Vt = thin_svd(Xn)
    s = residual_scales(S, Vt, r, n)[r]
    resid_idx = np.flatnonzero(s >= 1e-10)
    return Xn, U, S, Vt, s, resid_idx


@pytest.mark.parametrize("design", ["equicorrelated", "factor", "random_walk"])
@pytest.mark.parametrize("r", [0, 1, 3])
def test_operator_exactness(design, r):
    X, _ = make_sparse_regression(50, 70, 3, design=design, rho=0.99, random_state=2)
    Xn, U, S, Vt, s, resid_idx = _factor_pieces(X, r)
    n = Xn.shape[0]
    Z = factor_design(Xn, U, S, Vt, r, resid_idx, s)
    # an independent construction of Z: residualise by projection, normalise columns
    R = Xn - Xn @ Vt[:r].T @ Vt[:r]
    Z_ref = np.hstack([R / (np.linalg.norm(R, axis=0) / math.sqrt(n)), math.sqrt(n) * U[:, :r]])
    np.testing.assert_allclose(Z, Z_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=0), math.sqrt(n), rtol=1e-10)
    rng = np.random.default_rng(0)
    for _ in range(5):
        alpha = rng.standard_normal(Z.shape[1])
        w = back_map(alpha, Vt[:r].T, S[:r], s, resid_idx, n)
        lhs, rhs = Z @ alpha, Xn @ w
        np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10 * np.linalg.norm(lhs))


def test_dictionary_operator_matches_fit_and_adjoint():
    X, y, w = make_sparse_regression(
        60, 80, 3, design="equicorrelated", rho=0.999, coef=True, random_state=3
    )
    X = X * 3.0 + 1.0
    est = RandomSupportRegressor(alpha=0.01, random_state=0).fit(X, y)
    D = est.dictionary_
    assert not isinstance(D, np.ndarray) and D.shape == (80, 80 + est.n_factors_)
    np.testing.assert_allclose(D @ est.atom_coef_, est.coef_, atol=1e-12)
    rng = np.random.default_rng(1)
    a, g = rng.standard_normal(D.shape[1]), rng.standard_normal(D.shape[0])
    assert float(g @ (D @ a)) == pytest.approx(float(a @ D.rmatvec(g)), rel=1e-10)
    # predictions from the atoms: Xc D a == Z a, and Z has columns of norm sqrt(N)
    Xc = X - X.mean(0)
    cols = np.column_stack([Xc @ (D @ e) for e in np.eye(D.shape[1])[:5]])
    np.testing.assert_allclose(np.linalg.norm(cols, axis=0), math.sqrt(60), rtol=1e-8)
    D2 = pickle.loads(pickle.dumps(D))
    np.testing.assert_allclose(D2 @ a, D @ a)


def test_local_atom_keeps_operator_exact():
    # near-duplicate pairs: a random support often contains a pair, sigma_min ~ eta
    X, y = make_sparse_regression(80, 30, 10, design="near_duplicate", eta=1e-3, random_state=4)
    est = RandomSupportRegressor(
        n_nonzero_coefs=10, local_atoms=True, alpha=0.01, random_state=0
    ).fit(X, y)
    D = est.dictionary_
    assert isinstance(D, FactorBackMap) and D.local is not None
    Xc = X - X.mean(0)
    new_col = Xc @ (D @ np.eye(D.shape[1])[-1])
    assert np.linalg.norm(new_col) == pytest.approx(math.sqrt(80), rel=1e-6)
    assert np.count_nonzero(D @ np.eye(D.shape[1])[-1]) <= 10
    rng = np.random.default_rng(0)
    a, g = rng.standard_normal(D.shape[1]), rng.standard_normal(D.shape[0])
    assert float(g @ (D @ a)) == pytest.approx(float(a @ D.rmatvec(g)), rel=1e-10)


# ----------------------------------------------------------------------------- oracle 3
@pytest.mark.parametrize(("design", "rho"), [("equicorrelated", 0.999), ("factor", 0.0)])
def test_certificate_is_a_valid_bound(design, rho):
    n, d, k = 60, 90, 5
    X, _ = make_sparse_regression(n, d, k, design=design, rho=rho or 0.5, random_state=5)
    Xn = _normalised(X)
    U, S, Vt = thin_svd(Xn)
    rng = np.random.default_rng(0)
    worst = 0.0
    for r in (0, 1, 2, 4):
        s = residual_scales(S, Vt, r, n)[r]
        resid_idx = np.flatnonzero(s >= 1e-10)
        assert resid_idx.size == d
        Ts = np.sort(np.array([rng.choice(d, k, replace=False) for _ in range(250)]), axis=1)
        certs = subset_certificates(S, Vt, s, Ts, r, n)
        for T, cert in zip(Ts, certs):
            w = np.zeros(d)
            # random directions and the worst direction for T
            w[T] = rng.standard_normal(k)
            a = encode_on_support(w, Vt[:r].T, S[:r], s, resid_idx, n)
            np.testing.assert_allclose(
                back_map(a, Vt[:r].T, S[:r], s, resid_idx, n), w, atol=1e-8 * np.abs(w).max()
            )
            bound = cert * np.linalg.norm(Xn @ w) / math.sqrt(n)
            assert np.abs(a).sum() <= bound * (1 + 1e-9)
            worst = max(worst, np.abs(a).sum() / bound)
    assert worst > 0.05  # the bound is not vacuous


def test_certificate_independent_sigma_min():
    # the batched block SVD gives sigma_min(Z_r[:, T] / sqrt(N)) computed directly
    n, d, k, r = 40, 30, 4, 2
    X, _ = make_sparse_regression(n, d, k, design="factor", random_state=6)
    Xn = _normalised(X)
    U, S, Vt = thin_svd(Xn)
    s = residual_scales(S, Vt, r, n)[r]
    Z = factor_design(Xn, U, S, Vt, r, np.arange(d), s)
    Ts = np.array([[0, 3, 7, 9], [1, 2, 5, 29]])
    certs = subset_certificates(S, Vt, s, Ts, r, n)
    for T, cert in zip(Ts, certs):
        smin = np.linalg.svd(Z[:, T] / math.sqrt(n), compute_uv=False)[-1]
        assert cert == pytest.approx(math.sqrt(k) / smin + math.sqrt(r), rel=1e-9)


def test_exact_dependency_gives_infinite_certificate_without_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 10))
    X[:, 1] = X[:, 0] + X[:, 2]  # exact dependency
    Xn = _normalised(X)
    U, S, Vt = thin_svd(Xn)
    s = residual_scales(S, Vt, 0, 30)[0]
    certs = subset_certificates(S, Vt, s, np.array([[0, 1, 2], [3, 4, 5]]), 0, 30)
    assert np.isinf(certs[0]) and np.isfinite(certs[1])


# ----------------------------------------------------------------------------- oracle 4
def test_scale_invariance():
    X, y = make_sparse_regression(70, 60, 4, design="equicorrelated", rho=0.99, random_state=7)
    params = {"alpha": 0.01, "tol": 1e-12, "max_iter": 100_000, "random_state": 0}
    est = RandomSupportRegressor(**params).fit(X, y)
    X2 = X.copy()
    j, c = 5, 37.0
    X2[:, j] *= c
    est2 = RandomSupportRegressor(**params).fit(X2, y)
    np.testing.assert_allclose(est2.predict(X2), est.predict(X), rtol=1e-8)
    np.testing.assert_allclose(est2.coef_[j] * c, est.coef_[j], rtol=1e-8, atol=1e-12)
    others = np.arange(60) != j
    np.testing.assert_allclose(est2.coef_[others], est.coef_[others], rtol=1e-8, atol=1e-12)


# ----------------------------------------------------------------------------- oracle 5
def test_label_independence():
    X, y = make_sparse_regression(60, 80, 4, design="factor", random_state=8)
    est = RandomSupportRegressor(alpha=0.05, random_state=3).fit(X, y)
    y_perm = np.random.default_rng(0).permutation(y)
    est2 = RandomSupportRegressor(alpha=0.05, random_state=3).fit(X, y_perm)
    assert est.n_factors_ == est2.n_factors_
    np.testing.assert_array_equal(est.certificate_, est2.certificate_)


# ----------------------------------------------------------------------------- oracles 6, 7
def _compare_with_lassocv(design, n, d, k, seeds, values="worst_case", rho=0.999):
    ours, peer, cert_ratio = [], [], []
    for seed in seeds:
        X, y, w = make_sparse_regression(
            n,
            d,
            k,
            design=design,
            rho=rho,
            values=values,
            noise=0.1,
            coef=True,
            random_state=seed,
        )
        est = _quiet_fit(RandomSupportRegressor(n_nonzero_coefs=k, random_state=seed), X, y)
        # precompute=True: the same LassoCV solution (to 1e-12), 3x faster on these designs
        ref = _quiet_fit(LassoCV(cv=5, precompute=True), X, y)
        ours.append(_pred_err(X, w, est))
        peer.append(_pred_err(X, w, ref))
        cert_ratio.append(est.certificate_[est.n_factors_] / est.certificate_[0])
    return np.median(ours), np.median(peer), np.median(cert_ratio)


def test_showcase_equicorrelated_ci_size():
    ours, peer, cert_ratio = _compare_with_lassocv("equicorrelated", 100, 200, 5, range(3))
    assert cert_ratio <= 0.1
    assert ours <= 0.5 * peer, (ours, peer)


@pytest.mark.slow
def test_showcase_equicorrelated_full_size():
    ours, peer, cert_ratio = _compare_with_lassocv("equicorrelated", 200, 1000, 5, range(20))
    assert cert_ratio <= 0.1
    assert ours <= 0.5 * peer, (ours, peer)


def test_no_harm_on_iid_ci_size():
    ours, peer, _ = _compare_with_lassocv("iid", 100, 200, 5, range(5), values="signs")
    assert ours <= 1.25 * peer, (ours, peer)


@pytest.mark.slow
def test_no_harm_on_iid_full_size():
    ours, peer, _ = _compare_with_lassocv("iid", 200, 1000, 5, range(20), values="signs")
    assert ours <= 1.25 * peer, (ours, peer)


# ----------------------------------------------------------------------------- oracle 8
def _rate_slope(ns, d, seeds):
    errs = []
    for n in ns:
        e = []
        for seed in seeds:
            X, y, w = make_sparse_regression(
                n,
                d,
                5,
                design="equicorrelated",
                rho=0.999,
                values="worst_case",
                noise=0.5,
                coef=True,
                random_state=seed,
            )
            est = _quiet_fit(RandomSupportRegressor(n_nonzero_coefs=5, random_state=0), X, y)
            e.append(_pred_err(X, w, est))
        errs.append(np.median(e))
    return np.polyfit(np.log(ns), np.log(errs), 1)[0]


def test_rate_slope_ci_size():
    assert _rate_slope([100, 200, 400, 800], 100, range(3)) <= -0.5


@pytest.mark.slow
def test_rate_slope_full_size():
    assert _rate_slope([100, 200, 400, 800, 1600], 500, range(10)) <= -0.5


# ----------------------------------------------------------------------------- oracle 9
@pytest.mark.parametrize("values", ["signs", "worst_case"])
def test_noiseless_recovery(values):
    k, d = 5, 200
    n = math.ceil(8 * k * math.log(d))
    X, y, w = make_sparse_regression(
        n,
        d,
        k,
        design="equicorrelated",
        rho=0.999,
        values=values,
        noise=0.0,
        coef=True,
        random_state=9,
    )
    est = _quiet_fit(RandomSupportRegressor(random_state=0), X, y)
    rel = np.sum((X @ (est.coef_ - w) + est.intercept_) ** 2) / np.sum((X @ w) ** 2)
    assert rel <= 1e-3


# ----------------------------------------------------------------------------- oracle 10
def test_stability_extreme_conditioning():
    X, y = make_sparse_regression(80, 120, 5, design="extreme", random_state=10)
    s = np.linalg.svd(X - X.mean(0), compute_uv=False)
    assert (s[0] / s[-1]) ** 2 > 1e20 or s[-1] == 0
    fits = [_quiet_fit(RandomSupportRegressor(random_state=4), X, y) for _ in range(2)]
    for est in fits:
        assert np.all(np.isfinite(est.coef_)) and np.isfinite(est.intercept_)
        assert np.all(np.isfinite(est.predict(X)))
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)
    np.testing.assert_array_equal(fits[0].certificate_, fits[1].certificate_)
    X_tall, y_tall = make_sparse_regression(300, 40, 5, design="extreme", random_state=11)
    est = _quiet_fit(RandomSupportRegressor(alpha="theory", random_state=0), X_tall, y_tall)
    assert np.all(np.isfinite(est.coef_))


# ----------------------------------------------------------------------------- other paths
def test_refit_and_statsmodels_summary():
    sm = pytest.importorskip("statsmodels.api")
    X, y, w = make_sparse_regression(120, 40, 3, noise=0.1, coef=True, random_state=12)
    est = RandomSupportRegressor(alpha=0.05, refit=True, random_state=0).fit(X, y)
    S = np.flatnonzero(est.coef_)
    ref = sm.OLS(y, sm.add_constant(X[:, S])).fit()
    np.testing.assert_allclose(est.coef_[S], ref.params[1:], rtol=1e-8)
    assert est.intercept_ == pytest.approx(ref.params[0], rel=1e-8)
    text = str(est.summary())
    assert "OLS Regression Results" in text and f"x{S[0]}" in text
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    assert "OLS Regression Results" in str(again.summary())
    with pytest.raises(ValueError, match="refit=True"):
        RandomSupportRegressor(alpha=0.05).fit(X, y).summary()


def test_whiten_and_callable_preconditioners():
    X, y, w = make_sparse_regression(150, 40, 3, noise=0.0, coef=True, random_state=13)
    est = RandomSupportRegressor(preconditioner="whiten", alpha=1e-6, tol=1e-12).fit(X, y)
    assert est.n_factors_ == 40
    np.testing.assert_allclose(est.predict(X), y, atol=1e-3)

    def identity(Xn, rng):
        return Xn, lambda a: a

    ours = RandomSupportRegressor(preconditioner=identity, alpha=0.02, tol=1e-12).fit(X, y)
    ref = RandomSupportRegressor(preconditioner="identity", alpha=0.02, tol=1e-12).fit(X, y)
    assert ours.n_factors_ is None and ours.certificate_ is None
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-10)


def test_theory_alpha_and_functional_form():
    X, y, w = make_sparse_regression(
        150, 100, 4, design="factor", noise=0.5, coef=True, random_state=14
    )
    coef, info = random_support_regression(X, y, alpha="theory", random_state=0)
    m = info["estimator"].dictionary_.shape[1]
    # 2 sigma_hat sqrt(2 ln m / N) with sigma_hat close to the true noise level 0.5
    sigma_hat = info["alpha"] / (2 * math.sqrt(2 * math.log(m) / 150))
    assert 0.3 < sigma_hat < 0.7
    assert np.mean((X @ (coef - w) + info["intercept"]) ** 2) < 0.2
    assert set(info) >= {"n_factors", "certificate", "n_iter", "converged"}


def test_convergence_warning_and_input_untouched():
    X, y = make_sparse_regression(60, 80, 4, design="factor", random_state=15)
    X0, y0 = X.copy(), y.copy()
    with pytest.warns(ConvergenceWarning):
        est = RandomSupportRegressor(alpha=1e-4, max_iter=2, tol=1e-12).fit(X, y)
    assert not est.converged_
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_select_factors_stops_and_prefers_small_r():
    X, _ = make_sparse_regression(60, 100, 4, design="iid", random_state=16)
    Xn = _normalised(X)
    U, S, Vt = thin_svd(Xn)
    Ts = np.sort(np.random.default_rng(0).random((50, 100)).argsort(1)[:, :4], axis=1)
    r, scores, _ = select_factors(S, Vt, Ts, 20, 60, 0.9)
    assert r == 0
    assert len(scores) < 21  # early stop: scores rise with r on an iid design
    X, _ = make_sparse_regression(60, 100, 4, design="factor", n_factors=3, random_state=16)
    Xn = _normalised(X)
    U, S, Vt = thin_svd(Xn)
    r, scores, _ = select_factors(S, Vt, Ts, 20, 60, 0.9)
    assert r == 3


# ----------------------------------------------------------------------------- generic path
def test_generic_kernels_on_torch_match_numpy():
    torch = pytest.importorskip("torch")
    X, _ = make_sparse_regression(30, 20, 3, design="factor", random_state=17)
    Xn = _normalised(X)
    n, r = 30, 2
    U, S, Vt = thin_svd(Xn)
    with force_backend("generic"):
        Ut, St, Vtt = thin_svd(torch.from_numpy(Xn))
    np.testing.assert_allclose(St.numpy(), S, rtol=1e-10)
    # singular vectors agree up to sign: compare projections
    np.testing.assert_allclose((Ut[:, :r] @ Ut[:, :r].T).numpy(), U[:, :r] @ U[:, :r].T, atol=1e-10)
    Ut, St, Vtt = torch.from_numpy(U), torch.from_numpy(S), torch.from_numpy(Vt)
    sc = residual_scales(S, Vt, 3, n)
    np.testing.assert_allclose(residual_scales(St, Vtt, 3, n).numpy(), sc, rtol=1e-12)
    s = sc[r]
    idx = np.arange(20)
    Ts = np.array([[0, 1, 2], [3, 9, 17], [4, 5, 19]])
    np.testing.assert_allclose(
        subset_certificates(St, Vtt, torch.from_numpy(s), torch.from_numpy(Ts), r, n).numpy(),
        subset_certificates(S, Vt, s, Ts, r, n),
        rtol=1e-10,
    )
    Z = factor_design(Xn, U, S, Vt, r, idx, s)
    Zt = factor_design(
        torch.from_numpy(Xn), Ut, St, Vtt, r, torch.from_numpy(idx), torch.from_numpy(s)
    )
    np.testing.assert_allclose(Zt.numpy(), Z, rtol=1e-12)
    a = np.random.default_rng(0).standard_normal(22)
    args = (Vt[:r].T, S[:r], s, idx, n)
    targs = (Vtt[:r].T, St[:r], torch.from_numpy(s), torch.from_numpy(idx), n)
    np.testing.assert_allclose(back_map(torch.from_numpy(a), *targs).numpy(), back_map(a, *args))
    g = np.random.default_rng(1).standard_normal(20)
    np.testing.assert_allclose(
        back_map_adjoint(torch.from_numpy(g), *targs).numpy(), back_map_adjoint(g, *args)
    )
    np.testing.assert_allclose(
        encode_on_support(torch.from_numpy(g), *targs).numpy(), encode_on_support(g, *args)
    )


# ----------------------------------------------------------------------------- weights, dtypes
@pytest.mark.parametrize("alpha", [0.01, "theory"])
def test_integer_weights_equal_repeated_rows(alpha):
    X, y = make_sparse_regression(50, 60, 3, design="factor", random_state=18)
    sw = np.random.default_rng(3).integers(0, 4, 50)
    rep = np.repeat(np.arange(50), sw)
    kw = {"alpha": alpha, "n_cert": 30, "r_max": 4, "tol": 1e-10, "random_state": 0}
    a = RandomSupportRegressor(**kw).fit(X, y, sample_weight=sw)
    b = RandomSupportRegressor(**kw).fit(X[rep], y[rep])
    assert a.n_factors_ == b.n_factors_
    np.testing.assert_allclose(a.certificate_, b.certificate_, rtol=1e-8)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-7)
    assert a.intercept_ == pytest.approx(b.intercept_, abs=1e-7)
    ones = RandomSupportRegressor(**kw).fit(X, y, sample_weight=np.ones(50))
    plain = RandomSupportRegressor(**kw).fit(X, y)
    np.testing.assert_allclose(ones.coef_, plain.coef_, atol=1e-10)


def test_float32_in_float32_out():
    X, y = make_sparse_regression(60, 40, 3, design="factor", random_state=19)
    est = RandomSupportRegressor(alpha=0.01, n_cert=20, random_state=0)
    est.fit(X.astype(np.float32), y.astype(np.float32))
    assert est.coef_.dtype == np.float32
    assert est.predict(X.astype(np.float32)).dtype == np.float32
    ref = RandomSupportRegressor(alpha=0.01, n_cert=20, random_state=0).fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-4, atol=1e-5)


def test_sparse_input_is_a_clear_error():
    sparse = pytest.importorskip("scipy.sparse")
    X, y = make_sparse_regression(30, 20, 3, random_state=20)
    with pytest.raises(TypeError, match="does not accept sparse X.*thin SVD"):
        RandomSupportRegressor(alpha=0.01).fit(sparse.csr_matrix(X), y)


def test_dask_predict_is_lazy_and_equal():
    da = pytest.importorskip("dask.array")
    X, y = make_sparse_regression(60, 30, 3, design="factor", random_state=21)
    est = RandomSupportRegressor(alpha=0.01, n_cert=20, random_state=0).fit(X, y)
    pred = est.predict(da.from_array(X, chunks=(25, 30)))
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), est.predict(X), rtol=0, atol=1e-12)
