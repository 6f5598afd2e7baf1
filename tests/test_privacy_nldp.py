"""Oracles for LDPSparseLinearRegression: noise laws, clipping, constants, aggregation, rates."""

from __future__ import annotations

import itertools
import math
import pickle
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.linear_model import LinearRegression

from sparsestat.privacy import BudgetAccountant, BudgetError
from sparsestat.privacy import LDPSparseLinearRegression as _LDPSparseLinearRegression


def LDPSparseLinearRegression(*args, fit_intercept=False, **kwargs):
    """The paper's estimator, without intercept (these tests check its formulas)."""
    return _LDPSparseLinearRegression(*args, fit_intercept=fit_intercept, **kwargs)


def _data(n, d, seed=0, law="rademacher", noise=0.1):
    rng = np.random.default_rng(seed)
    if law == "rademacher":
        X = rng.choice([-1.0, 1.0], size=(n, d))
    elif law == "uniform":
        X = rng.uniform(-1, 1, size=(n, d))
    else:
        X = rng.standard_normal((n, d))
    theta = np.zeros(d)
    theta[:2] = [0.5, -0.5]
    y = X @ theta + noise * rng.standard_normal(n)
    return X, y, theta


def _soft(z, t):
    return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)


def _floored_inverse(S, r):
    lam, U = np.linalg.eigh((S + S.T) / 2)
    return U @ np.diag(1 / np.maximum(lam, r)) @ U.T


# ----------------------------------------------------------------------------- oracle 3
def test_noise_constants_closed_form():
    d, tau, eps, delta = 3, 1.0, 1.0, 1e-5
    X, y, _ = _data(50, d)
    m = LDPSparseLinearRegression(
        eps, delta, bounds_X=tau, bounds_y=tau, calibration="classic", random_state=0
    )
    m.fit(X, y)
    s1 = 4 * math.sqrt(2 * math.log(2.5 / delta)) * d * tau**2 / eps
    s2 = 4 * math.sqrt(2 * math.log(2.5 / delta)) * math.sqrt(d) * tau * tau / eps
    assert m.noise_scale_[0] == pytest.approx(s1, rel=1e-12)
    assert m.noise_scale_[1] == pytest.approx(s2, rel=1e-12)
    assert m._mech_xx.sensitivity == pytest.approx(2 * d * tau**2, rel=1e-15)
    assert m._mech_xy.sensitivity == pytest.approx(2 * math.sqrt(d) * tau * tau, rel=1e-15)
    P = _data(40, d, seed=9)[0]  # public covariates: other people than the users
    pub = LDPSparseLinearRegression(
        eps, delta, bounds_X=tau, bounds_y=2.0, public_X=P, calibration="classic"
    )
    pub.fit(X, y)
    s2_pub = math.sqrt(8 * d * tau**2 * 2.0**2 * math.log(1.25 / delta)) / eps
    assert pub.noise_scale_ == (0.0, pytest.approx(s2_pub, rel=1e-12))


# ----------------------------------------------------------------------------- oracle 1
def test_per_user_noise_law():
    d, tau1, tau2 = 3, 1.5, 2.0
    x = np.array([0.7, -2.5, 1.1])  # one coordinate is clipped
    n = 5000
    X, y = np.repeat(x[None], n, 0), np.full(n, 3.0)
    m = LDPSparseLinearRegression(1.0, 1e-5, bounds_X=tau1, bounds_y=tau2, random_state=3)
    reports = m.privatize(X, y, simulation=True)
    M, v = reports.M, reports.v
    assert M.shape == (n, d, d) and v.shape == (n, d)
    np.testing.assert_array_equal(M, np.swapaxes(M, 1, 2))  # exactly symmetric
    xt = np.clip(x, -tau1, tau1)
    E = M - np.outer(xt, xt)
    s1, s2 = m.noise_scale_
    iu, ju = np.triu_indices(d)
    entries = E[:, iu, ju]
    for j in range(entries.shape[1]):
        assert stats.kstest(entries[:, j], "norm", args=(0, s1)).pvalue > 1e-3
        assert np.var(entries[:, j]) == pytest.approx(s1**2, rel=0.05)
    r = np.corrcoef(entries.T)
    assert np.max(np.abs(r - np.eye(r.shape[0]))) < 0.05
    e_v = v - xt * tau2
    for j in range(d):
        assert stats.kstest(e_v[:, j], "norm", args=(0, s2)).pvalue > 1e-3
        assert np.var(e_v[:, j]) == pytest.approx(s2**2, rel=0.05)
    assert np.max(np.abs(np.corrcoef(e_v.T) - np.eye(d))) < 0.05
    # M and v noises are independent
    assert abs(np.corrcoef(entries[:, 0], e_v[:, 0])[0, 1]) < 0.05


# ----------------------------------------------------------------------------- oracle 2
def test_clipping_and_sensitivity_under_outliers():
    d, tau1, tau2 = 4, 2.0, 3.0
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, d))
    y = rng.standard_normal(300)
    X[::5] *= 1e6
    y[::3] *= 1e6
    X0, y0 = X.copy(), y.copy()
    m = LDPSparseLinearRegression(np.inf, bounds_X=tau1, bounds_y=tau2)
    reports = m.privatize(X, y)
    M, v = reports.M, reports.v
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    assert np.max(np.abs(M)) <= tau1**2 * (1 + 1e-12)
    assert np.max(np.abs(v)) <= tau1 * tau2 * (1 + 1e-12)
    # report-difference bounds: brute force over the vertices of the clipping box (the
    # extreme points) and the observed reports
    verts = np.array(list(itertools.product([-tau1, tau1], repeat=d)))
    outers = np.einsum("ni,nj->nij", verts, verts)
    diff_f = np.linalg.norm((outers[:, None] - outers[None]).reshape(-1, d * d), axis=1)
    assert diff_f.max() <= 2 * d * tau1**2
    obs = np.linalg.norm((M[:, None] - M[None, :60]).reshape(-1, d * d), axis=1)
    assert obs.max() <= 2 * d * tau1**2
    ys = np.array([-tau2, tau2])
    xy = (verts[:, None, :] * ys[None, :, None]).reshape(-1, d)
    assert np.linalg.norm(xy[:, None] - xy[None], axis=2).max() <= 2 * math.sqrt(d) * tau1 * tau2
    assert m._mech_xx.sensitivity == 2 * d * tau1**2
    assert m._mech_xy.sensitivity == pytest.approx(2 * math.sqrt(d) * tau1 * tau2)


# ----------------------------------------------------------------------------- oracle 4
def test_eps_inf_equals_noiseless_estimator():
    X, y, _ = _data(3000, 5, law="gaussian")
    tau1, tau2, alpha, r = 1.5, 2.0, 0.02, 0.05
    a = LDPSparseLinearRegression(
        np.inf, bounds_X=tau1, bounds_y=tau2, alpha=alpha, eig_floor=r, random_state=0
    ).fit(X, y)
    b = LDPSparseLinearRegression(
        np.inf, bounds_X=tau1, bounds_y=tau2, alpha=alpha, eig_floor=r, random_state=99
    ).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    xt, yt = np.clip(X, -tau1, tau1), np.clip(y, -tau2, tau2)
    S, bb = xt.T @ xt / len(y), xt.T @ yt / len(y)
    expected = _soft(_floored_inverse(S, r) @ bb, alpha)
    np.testing.assert_allclose(a.coef_, expected, atol=1e-10, rtol=0)
    assert a.noise_scale_ == (0.0, 0.0)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_eps_inf_no_threshold_large_bounds_is_ols(fit_intercept):
    X, y, _ = _data(500, 4, law="gaussian")
    y = y + (1.5 if fit_intercept else 0.0)
    m = LDPSparseLinearRegression(
        np.inf, bounds_X=1e3, bounds_y=1e3, alpha=0.0, eig_floor=1e-12, fit_intercept=fit_intercept
    ).fit(X, y)
    ols = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    np.testing.assert_allclose(m.coef_, ols.coef_, atol=1e-8)
    assert m.intercept_ == pytest.approx(ols.intercept_, abs=1e-8)
    np.testing.assert_allclose(m.predict(X), ols.predict(X), atol=1e-7)


def test_public_variant_with_eps_inf():
    X, y, _ = _data(2000, 4, law="uniform")
    P = _data(700, 4, seed=5, law="uniform")[0]
    m = LDPSparseLinearRegression(
        np.inf, bounds_X=0.8, bounds_y=1.0, alpha=0.01, eig_floor=1e-3, public_X=P
    ).fit(X, y)
    pt = np.clip(P, -0.8, 0.8)
    xt, yt = np.clip(X, -0.8, 0.8), np.clip(y, -1.0, 1.0)
    expected = _soft(_floored_inverse(pt.T @ pt / 700, 1e-3) @ (xt.T @ yt / 2000), 0.01)
    np.testing.assert_allclose(m.coef_, expected, atol=1e-10)
    reports = m.privatize(X[:3], y[:3], user_ids=[7000, 7001, 7002])
    assert reports.M is None and reports.v.shape == (3, 4)


# ----------------------------------------------------------------------------- oracle 6
def test_fit_partial_fit_merge_bit_for_bit():
    X, y, _ = _data(5000, 4, law="gaussian")
    params = {"epsilon": 0.8, "bounds_X": 2.0, "bounds_y": 2.0, "random_state": 11}
    full = LDPSparseLinearRegression(**params).fit(X, y)
    part = LDPSparseLinearRegression(**params)
    for a, b in [(0, 700), (700, 2100), (2100, 2101), (2101, 5000)]:
        part.partial_fit(X[a:b], y[a:b])
    h = 2345
    left = LDPSparseLinearRegression(**params).partial_fit(X[:h], y[:h])
    right = LDPSparseLinearRegression(**params).partial_fit(
        X[h:], y[h:], user_ids=np.arange(h, 5000)
    )
    merged = right.merge(left)  # merge order does not matter either
    client = LDPSparseLinearRegression(**params)
    reports = client.privatize(X, y, simulation=True)
    M = reports.M
    server = LDPSparseLinearRegression(**params).add_reports(reports, simulation=True)
    for other in (part, merged, server):
        np.testing.assert_array_equal(other.sum_xx_, full.sum_xx_)
        np.testing.assert_array_equal(other.sum_xy_, full.sum_xy_)
        np.testing.assert_array_equal(other.coef_, full.coef_)
        assert other.n_users_seen_ == 5000
    # the per-user reports are the ones the server summed
    np.testing.assert_allclose(M.sum(axis=0), full.sum_xx_, rtol=1e-9, atol=1e-6)
    # and the state is not trivially noiseless
    assert np.abs(full.sum_xx_ / 5000 - np.eye(4)).max() > 0.05


def test_simulate_aggregate_matches_per_user_in_distribution():
    X, y, _ = _data(60, 2, law="uniform")
    kw = {"epsilon": 1.0, "bounds_X": 1.0, "bounds_y": 1.0, "cv": 2}
    per_user = [
        LDPSparseLinearRegression(**kw, random_state=s).fit(X, y).sum_xx_ for s in range(200)
    ]
    simulated = [
        LDPSparseLinearRegression(**kw, simulate_aggregate=True, random_state=1000 + s)
        .fit(X, y)
        .sum_xx_
        for s in range(200)
    ]
    for i, j in [(0, 0), (0, 1), (1, 1)]:
        a = [S[i, j] for S in per_user]
        b = [S[i, j] for S in simulated]
        assert stats.ks_2samp(a, b).pvalue > 1e-3


def test_simulate_aggregate_refuses_per_user_reports_and_opendp():
    X, y, _ = _data(20, 2)
    m = LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, simulate_aggregate=True)
    with pytest.raises(ValueError, match="per-user"):
        m.privatize(X, y)
    with pytest.raises(ValueError, match="simulation"):
        LDPSparseLinearRegression(
            bounds_X=1.0, bounds_y=1.0, simulate_aggregate=True, noise_backend="opendp"
        ).fit(X, y)


# ----------------------------------------------------------------------------- oracle 5
def _rate_error(n, d, eps, seeds, public=False, delta=0.3):
    X, y, theta = _data(n, d)
    P = _data(2000, d, seed=1)[0] if public else None
    errs = []
    for s in range(seeds):
        m = LDPSparseLinearRegression(
            eps,
            delta,
            bounds_X=1.0,
            bounds_y=1.5,
            alpha=0.0,
            simulate_aggregate=True,
            public_X=P,
            calibration="classic",  # sigma proportional to 1 / epsilon
            random_state=s,
        )
        errs.append(np.linalg.norm(m.fit(X, y).coef_ - theta))
    return float(np.mean(errs))


@pytest.mark.filterwarnings("ignore:delta = 0.3 is not below")
def test_rates_in_eps_and_n():
    n = 40_000
    e1 = _rate_error(n, 2, 1.0, 30)
    assert 0.4 <= _rate_error(n, 2, 2.0, 30) / e1 <= 0.6
    assert 0.4 <= _rate_error(4 * n, 2, 1.0, 30) / e1 <= 0.6


@pytest.mark.slow
def test_public_variant_gains_with_d():
    ds = [2, 3, 4, 6]
    ratio = [
        _rate_error(400_000, d, 1.0, 30, public=True) / _rate_error(400_000, d, 1.0, 30) for d in ds
    ]
    slope = np.polyfit(np.log(ds), np.log(ratio), 1)[0]
    assert -0.8 <= slope <= -0.2


# ----------------------------------------------------------------------------- alpha
def test_cv_risk_equals_independent_computation():
    X, y, theta = _data(1200, 5, law="gaussian", noise=0.5)
    m = LDPSparseLinearRegression(
        np.inf, bounds_X=3.0, bounds_y=5.0, alpha="cv", cv=3, eig_floor=1e-6
    ).fit(X, y)
    xt, yt = np.clip(X, -3, 3), np.clip(y, -5, 5)
    folds = np.arange(1200) % 3
    scores = np.zeros(m.cv_alphas_.size)
    for j in range(3):
        tr, te = folds != j, folds == j
        bar = _floored_inverse(xt[tr].T @ xt[tr] / tr.sum(), 1e-6) @ (xt[tr].T @ yt[tr] / tr.sum())
        S_j, b_j = xt[te].T @ xt[te] / te.sum(), xt[te].T @ yt[te] / te.sum()
        for a, alpha in enumerate(m.cv_alphas_):
            t = _soft(bar, alpha)
            scores[a] += te.sum() * (t @ S_j @ t - 2 * t @ b_j) / 1200
    np.testing.assert_allclose(m.cv_scores_, scores, rtol=1e-8, atol=1e-12)
    assert m.alpha_ == m.cv_alphas_[np.argmin(scores)]


def test_theory_alpha_and_floor_formulas():
    X, y, _ = _data(3000, 3, law="uniform")
    m = LDPSparseLinearRegression(
        1.0, 1e-5, bounds_X=1.0, bounds_y=1.0, l1_radius=1.0, alpha="theory", random_state=0
    ).fit(X, y)
    s1, s2 = m.noise_scale_
    assert m.eig_floor_ == pytest.approx(2 * s1 * math.sqrt(3 / 3000))
    S = m.sum_xx_ / 3000
    inv = _floored_inverse(S, m.eig_floor_)
    norm = np.abs(inv).sum(axis=1).max()
    expected = norm * math.sqrt(2 * math.log(6) / 3000) * (s1 + s2 + 1.0 * (1.0 + 1.0))
    assert m.alpha_ == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(m.coef_, _soft(inv @ (m.sum_xy_ / 3000), expected), atol=1e-9)


# ----------------------------------------------------------------------------- security
def test_missing_bounds_warn_and_do_not_depend_on_data():
    X, y, _ = _data(1000, 3)
    with pytest.warns(UserWarning, match="theory defaults"):
        a = LDPSparseLinearRegression(np.inf).fit(X, y)
    with pytest.warns(UserWarning):
        b = LDPSparseLinearRegression(np.inf).fit(100 * X, 100 * y)
    assert a.bounds_X_ == b.bounds_X_ == pytest.approx(math.sqrt(2 * math.log(2 * 1000 * 3)))
    assert a.bounds_y_ == pytest.approx(math.sqrt(2 * math.log(2000)))


def test_repeated_users_are_refused():
    X, y, _ = _data(100, 3)
    m = LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, random_state=0)
    m.partial_fit(X[:50], y[:50])
    with pytest.raises(ValueError, match="already reported"):
        m.partial_fit(X[50:], y[50:], user_ids=np.arange(40, 90))
    with pytest.raises(ValueError, match="twice"):
        m.partial_fit(X[:2], y[:2], user_ids=[500, 500])
    other = LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, random_state=0)
    other.partial_fit(X[:10], y[:10], user_ids=np.arange(45, 55))
    with pytest.raises(ValueError, match="already reported"):
        m.merge(other)
    different = LDPSparseLinearRegression(bounds_X=2.0, bounds_y=1.0).fit(X, y)
    with pytest.raises(ValueError, match="public parameters"):
        m.merge(different)
    assert m.n_users_seen_ == 50  # nothing was added by the refused calls


def test_accountant_parallel_and_sequential_composition():
    X, y, _ = _data(200, 3)
    acc = BudgetAccountant(epsilon=1.0, delta=1e-5)
    m = LDPSparseLinearRegression(
        1.0, 1e-5, bounds_X=1.0, bounds_y=1.0, accountant=acc, random_state=0
    )
    m.partial_fit(X[:100], y[:100])
    m.partial_fit(X[100:], y[100:])  # new users: parallel composition
    assert acc.spent(0) == (1.0, 1e-5) and acc.spent(199) == (1.0, 1e-5)
    assert acc.spent(200) == (0.0, 0.0)
    with pytest.raises(BudgetError):  # the same users again: refused before any noise
        LDPSparseLinearRegression(0.5, 1e-6, bounds_X=1.0, bounds_y=1.0, accountant=acc).fit(X, y)
    assert acc.max_spent == (1.0, 1e-5)


def test_accountant_unit():
    acc = BudgetAccountant(epsilon=2.0, delta=1e-5)
    acc.spend(1.0, 0.0, users=range(10, 20))
    acc.spend(0.5, 0.0, users=np.array([12, 12, 30]))  # 12 twice: sequential
    assert acc.spent(12) == (2.0, 0.0)
    assert acc.spent(13) == (1.0, 0.0)
    assert acc.spent(30) == (0.5, 0.0)
    assert acc.remaining(9) == (2.0, 1e-5)
    with pytest.raises(BudgetError):
        acc.spend(0.1, 0.0, users=[12, 1000])
    assert acc.spent(1000) == (0.0, 0.0)  # refused charges change nothing
    acc.spend(1.0, 1e-5, users=range(15, 16))
    with pytest.raises(BudgetError):
        acc.check(0.0, 1e-6, users=[15])
    for bad in [(-1.0, 0.0), (1.0, 2.0), (float("nan"), 0.0)]:
        with pytest.raises(ValueError):
            acc.spend(*bad, users=[1])
    with pytest.raises(TypeError):
        acc.spend(1.0, 0.0, users=[1.5])
    inf_acc = BudgetAccountant()
    inf_acc.spend(math.inf, 0.0, users=range(3))
    assert inf_acc.spent(1)[0] == math.inf and inf_acc.spent(3)[0] == 0.0
    acc2 = BudgetAccountant(epsilon=1.0)
    with pytest.raises(BudgetError):
        acc2.spend(math.inf, 0.0, users=[0])


def test_parameter_errors_are_not_coerced():
    X, y, _ = _data(30, 2)
    with pytest.raises(ValueError, match=r"epsilon / 2 = 1.5.*split.*analytic"):
        LDPSparseLinearRegression(
            epsilon=3.0, bounds_X=1.0, bounds_y=1.0, calibration="classic"
        ).fit(X, y)
    m = LDPSparseLinearRegression(epsilon=3.0, bounds_X=1.0, bounds_y=1.0, random_state=0).fit(X, y)
    assert np.all(np.isfinite(m.coef_))
    with pytest.raises(ValueError, match="random_state"):
        LDPSparseLinearRegression(
            bounds_X=1.0, bounds_y=1.0, noise_backend="opendp", random_state=0
        ).fit(X, y)


def test_pickle_and_clone_round_trip_after_fit():
    X, y, _ = _data(300, 3)
    m = LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(again.predict(X), m.predict(X))
    again.partial_fit(X[:5], y[:5])  # the state survives pickling
    assert again.n_users_seen_ == 305
    assert clone(m).get_params() == m.get_params()


def test_opendp_backend_end_to_end():
    pytest.importorskip("opendp")
    X, y, _ = _data(15, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "the predicted error bound", UserWarning)
        m = LDPSparseLinearRegression(1.0, bounds_X=1.0, bounds_y=1.0, noise_backend="opendp").fit(
            X, y
        )
    assert m.n_users_seen_ == 15 and np.all(np.isfinite(m.coef_))
    assert m.formal_guarantee_  # exact sampler, fresh entropy
    # fresh entropy: two fits differ
    m2 = clone(m).fit(X, y)
    assert not np.array_equal(m.sum_xx_, m2.sum_xx_)


def test_public_parameters_are_frozen_after_the_first_report():
    X, y, _ = _data(100, 3)
    m = LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, random_state=0)
    m.partial_fit(X[:50], y[:50])
    m.set_params(alpha=0.3)  # post-processing: allowed
    m.partial_fit(X[50:60], y[50:60])
    assert m.alpha_ == 0.3
    m.set_params(epsilon=5.0, calibration="analytic")
    with pytest.raises(ValueError, match="changed since the first report"):
        m.partial_fit(X[60:], y[60:])
    with pytest.raises(ValueError, match="changed since the first report"):
        m.privatize(X[60:], y[60:])
    assert m.n_users_seen_ == 60


def test_failed_update_leaves_the_state_unchanged(monkeypatch):
    import sparsestat._solvers.private_sums as sums_module

    X, y, _ = _data(3000, 3)
    m = LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, random_state=0)
    m.partial_fit(X[:1000], y[:1000])
    before = (m.sum_xx_.copy(), m.sum_xy_.copy(), m.n_users_seen_)
    calls = []
    real = sums_module.keyed_gaussian_report_sums  # the fused path of contiguous user ids

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # the M sums are added, the v sums fail
            raise OverflowError("simulated failure mid-batch")
        return real(*args, **kwargs)

    monkeypatch.setattr(sums_module, "keyed_gaussian_report_sums", flaky)
    with pytest.raises(OverflowError):
        m.partial_fit(X[1000:], y[1000:])
    monkeypatch.setattr(sums_module, "keyed_gaussian_report_sums", real)
    m.partial_fit(X[1000:1001], y[1000:1001])
    assert m.n_users_seen_ == before[2] + 1
    ref = LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, random_state=0)
    ref.partial_fit(X[:1001], y[:1001])
    np.testing.assert_array_equal(m.sum_xx_, ref.sum_xx_)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_fused_aggregation_equals_the_mechanism_pipeline(fit_intercept):
    """fit's fused kernel gives the integers of clip -> GaussianMechanism -> round -> sum."""
    from sparsestat._kernels.ldp import (
        exact_accumulate,
        exact_to_float,
        grid_unit,
        mirror_upper,
        outer_upper,
    )
    from sparsestat.privacy import GaussianMechanism, UserStreams

    n, d, k, seed = 3000, 6, 4, 21
    X, y, _ = _data(n, d, law="gaussian")
    X[::11] *= 50.0  # clipped rows
    tau1, tau2, eps, delta = 1.2, 1.7, 0.9, 1e-6
    m = LDPSparseLinearRegression(
        eps,
        delta,
        bounds_X=tau1,
        bounds_y=tau2,
        cv=k,
        fit_intercept=fit_intercept,
        random_state=seed,
    ).fit(X, y)
    xt = np.clip(X, -tau1, tau1)
    if fit_intercept:
        xt = np.hstack([xt, np.full((n, 1), min(1.0, tau1))])
    yt = np.clip(y, -tau2, tau2)
    de = xt.shape[1]
    mech_xx = GaussianMechanism(eps / 2, delta / 2, de * tau1**2)
    mech_xy = GaussianMechanism(eps / 2, delta / 2, math.sqrt(de) * tau1 * tau2)
    assert m.noise_scale_ == (mech_xx.scale, mech_xy.scale)
    ids = np.arange(n)
    tri = mech_xx.randomise(outer_upper(xt), UserStreams(seed), ids, stream=0, simulation=True)
    v = mech_xy.randomise(xt * yt[:, None], UserStreams(seed), ids, stream=1, simulation=True)
    unit_xx = grid_unit(max(mech_xx.scale, de * tau1**2))
    unit_xy = grid_unit(max(mech_xy.scale, math.sqrt(de) * tau1 * tau2))
    sum_tri = np.zeros(de * (de + 1) // 2)
    sum_v = np.zeros(de)
    for f in range(k):
        sum_tri += exact_to_float(*exact_accumulate(tri[ids % k == f], unit_xx), unit_xx)
        sum_v += exact_to_float(*exact_accumulate(v[ids % k == f], unit_xy), unit_xy)
    np.testing.assert_array_equal(m.sum_xx_, mirror_upper(sum_tri, de))
    np.testing.assert_array_equal(m.sum_xy_, sum_v)


def test_fit_with_a_generator_draws_the_mechanism_noise_in_order():
    X, y, _ = _data(1500, 3)
    params = {"epsilon": 1.0, "bounds_X": 1.0, "bounds_y": 1.0}
    a = LDPSparseLinearRegression(**params, random_state=np.random.RandomState(4)).fit(X, y)
    b = LDPSparseLinearRegression(**params, random_state=np.random.RandomState(4)).fit(X, y)
    np.testing.assert_array_equal(a.sum_xx_, b.sum_xx_)
    fresh = [LDPSparseLinearRegression(**params).fit(X, y).sum_xx_ for _ in range(2)]
    assert not np.array_equal(*fresh)
    # the noise is there and has the per-user scale: the sum of n reports has sd s1 sqrt(n)
    xt = np.clip(X, -1, 1)
    resid = (fresh[0] - xt.T @ xt)[np.triu_indices(3)] / (a.noise_scale_[0] * math.sqrt(1500))
    assert 0.1 < np.std(resid) < 3.0


def test_user_reports_depend_on_the_user_id_only_not_on_chunks_or_threads(monkeypatch):
    """fit's kernel draws each user's keyed noise itself: threads and chunks change nothing."""
    import numba

    import sparsestat._kernels.ldp as ldp_module
    import sparsestat._solvers.private_sums as sums_module

    n, d = 2500, 5
    X, y, _ = _data(n, d, law="gaussian")
    params = {"epsilon": 0.7, "bounds_X": 1.5, "bounds_y": 2.0, "cv": 3, "random_state": 5}
    client = LDPSparseLinearRegression(**params)
    reports = client.privatize(X, y, simulation=True)  # NumPy's own generators, user by user
    M, v = reports.M, reports.v
    threads = numba.get_num_threads()
    try:
        # a small problem: the generic path (NumPy's generators block by block)
        generic = LDPSparseLinearRegression(**params).fit(X, y)
        monkeypatch.setattr(ldp_module, "_COMPILED_MIN_DRAWS", 0)  # the compiled kernel
        numba.set_num_threads(1)
        one = LDPSparseLinearRegression(**params).fit(X, y)
        numba.set_num_threads(threads)
        many = LDPSparseLinearRegression(**params).fit(X, y)
        monkeypatch.setattr(sums_module, "CHUNK_ENTRIES", 1)  # one noise block per chunk
        small = LDPSparseLinearRegression(**params)
        for a, b in [(0, 1), (1, 999), (999, 1030), (1030, n)]:  # batches start mid-block
            small.partial_fit(X[a:b], y[a:b])
        # a non-contiguous X is copied chunk by chunk (here one noise block per chunk)
        strided = LDPSparseLinearRegression(**params).fit(np.asfortranarray(X), y)
    finally:
        numba.set_num_threads(threads)
    server = LDPSparseLinearRegression(**params).add_reports(reports, simulation=True)
    for other in (generic, many, small, strided, server):
        np.testing.assert_array_equal(other.sum_xx_, one.sum_xx_)
        np.testing.assert_array_equal(other.sum_xy_, one.sum_xy_)
    # the public-X variant (users send v only) sums the same v reports
    pub = {**params, "public_X": X[:50]}
    client = LDPSparseLinearRegression(**pub)
    pub_reports = client.privatize(X, y, simulation=True)
    assert pub_reports.M is None
    fitted = LDPSparseLinearRegression(**pub).fit(X, y)
    server = LDPSparseLinearRegression(**pub).add_reports(pub_reports, simulation=True)
    np.testing.assert_array_equal(server.sum_xy_, fitted.sum_xy_)
    # a single user's fit is exactly that user's own report, wherever the user sits
    for u in (0, 700, 1023, 1024, n - 1):
        alone = LDPSparseLinearRegression(**params).partial_fit(
            X[u : u + 1], y[u : u + 1], user_ids=[u]
        )
        np.testing.assert_array_equal(alone.sum_xx_, M[u])
        np.testing.assert_array_equal(alone.sum_xy_, v[u])


def test_noise_of_the_fused_kernel_has_the_per_user_law():
    """Users with x = 0: the summed reports are pure noise, N(0, n s^2) for every entry."""
    n, d = 3000, 20
    m = LDPSparseLinearRegression(1.0, 1e-5, bounds_X=1.0, bounds_y=1.0, cv=2, random_state=17).fit(
        np.zeros((n, d)), np.zeros(n)
    )
    s1, s2 = m.noise_scale_
    tri = m.sum_xx_[np.triu_indices(d)] / (s1 * math.sqrt(n))  # 210 independent entries
    assert stats.kstest(tri, "norm").pvalue > 1e-3
    assert np.var(tri) == pytest.approx(1.0, abs=0.3)
    both = np.concatenate([tri, m.sum_xy_ / (s2 * math.sqrt(n))])
    assert stats.kstest(both, "norm").pvalue > 1e-3


# ----------------------------------------------------------------------------- smaller points
def test_refits_are_recorded_in_one_accountant_and_warned():
    X, y, _ = _data(200, 3)
    m = LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, random_state=0)
    m.fit(X, y)
    first = m.accountant_
    with pytest.warns(UserWarning, match="refitting charges users 0..199 again"):
        m.fit(X, y)
    assert m.accountant_ is first  # not a new unlimited accountant on every fit
    assert m.accountant_.max_spent == (2.0, 2e-5)
    capped = BudgetAccountant(epsilon=1.0, delta=1e-5)
    m = LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, accountant=capped).fit(X, y)
    with pytest.raises(BudgetError), pytest.warns(UserWarning, match="refitting"):
        m.fit(X, y)


def test_delta_not_below_one_over_n_warns():
    X, y, _ = _data(2000, 3)
    with pytest.warns(UserWarning, match=r"delta = 0.001 is not below 1 / n_users = 0.0005"):
        LDPSparseLinearRegression(delta=1e-3, bounds_X=1.0, bounds_y=1.0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "the predicted error bound", UserWarning)
        LDPSparseLinearRegression(delta=1e-5, bounds_X=1.0, bounds_y=1.0).fit(X, y)


@pytest.mark.parametrize("epsilon", [709.0, 710.0, 1e4])
def test_huge_epsilon_runs_without_overflow(epsilon):
    X, y, _ = _data(300, 3)
    m = LDPSparseLinearRegression(epsilon=epsilon, bounds_X=1.0, bounds_y=1.0).fit(X, y)
    assert np.all(np.isfinite(m.coef_)) and 0 < m.noise_scale_[0] < 1.0


def test_predict_keeps_float32():
    X, y, _ = _data(300, 3)
    m = LDPSparseLinearRegression(np.inf, bounds_X=1.0, bounds_y=1.0).fit(X.astype(np.float32), y)
    pred = m.predict(X.astype(np.float32))
    assert pred.dtype == np.float32
    np.testing.assert_allclose(pred, m.predict(X), rtol=1e-5, atol=1e-6)


def test_merge_into_an_unfitted_model_starts_from_the_other_sums():
    X, y, _ = _data(500, 3)
    params = {"bounds_X": 1.0, "bounds_y": 1.0, "random_state": 3}
    fitted = LDPSparseLinearRegression(**params).fit(X, y)
    empty = LDPSparseLinearRegression(**params).merge(fitted)
    np.testing.assert_array_equal(empty.sum_xx_, fitted.sum_xx_)
    np.testing.assert_array_equal(empty.coef_, fitted.coef_)
