"""Oracles for LDPIHTRegressor (spec ldp_regression.md, oracles 8 and 9)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sparsestat.privacy._iht as iht_module
from sparsestat.privacy import BudgetAccountant, BudgetError, LDPIHTRegressor


def _d0(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    theta = np.zeros(d)
    support = rng.choice(d, k, replace=False)
    theta[support] = rng.choice([-1.0, 1.0], k) / k
    y = X @ theta + 0.1 * rng.standard_normal(n)
    return X, y, theta


def _top(z, k):
    out = np.zeros_like(z)
    idx = np.argsort(-np.abs(z), kind="stable")[:k]
    out[idx] = z[idx]
    return out


@pytest.mark.parametrize("mechanism", ["duchi_linf", "coordinate_rr"])
def test_interaction_discipline_each_user_queried_once(monkeypatch, mechanism):
    n, d, k = 1000, 8, 2
    X, y, _ = _d0(n, d, k)
    X[:, 0] = np.arange(n)  # a user tag the recorder can read back (clipping acts later)
    seen = []
    original = iht_module.client_gradient_report

    def recorder(Xg, yg, *args, **kwargs):
        seen.append(Xg[:, 0].astype(int).copy())
        return original(Xg, yg, *args, **kwargs)

    monkeypatch.setattr(iht_module, "client_gradient_report", recorder)
    acc = BudgetAccountant(epsilon=1.0, delta=0.0)
    m = LDPIHTRegressor(
        n_nonzero_coefs=k,
        epsilon=1.0,
        bounds_X=3.0,
        bounds_y=3.0,
        mechanism=mechanism,
        accountant=acc,
        random_state=0,
    ).fit(X, y)
    T = math.ceil(math.log2(n))
    assert m.n_iter_ == T and len(seen) == T
    queried = np.concatenate(seen)
    np.testing.assert_array_equal(np.sort(queried), np.arange(n))  # disjoint and covering
    for t, group in enumerate(seen):
        assert np.all(m.user_round_[group] == t)
    assert np.count_nonzero(m.coef_) <= 2 * k
    assert acc.max_spent == (1.0, 0.0) and acc.spent(n - 1) == (1.0, 0.0)
    with pytest.raises(BudgetError):  # a second pass over the same users is refused
        LDPIHTRegressor(n_nonzero_coefs=k, bounds_X=3.0, bounds_y=3.0, accountant=acc).fit(X, y)


def test_eps_inf_is_batch_iht_with_fresh_samples_and_recovers_support():
    d, k = 20, 3
    T_guess = 14
    n = int(50 * k * math.log(d) * T_guess)
    X, y, theta = _d0(n, d, k, seed=2)
    tau1, tau2, eta = 6.0, 6.0, 0.5
    m = LDPIHTRegressor(
        n_nonzero_coefs=k,
        epsilon=np.inf,
        step_size=eta,
        bounds_X=tau1,
        bounds_y=tau2,
        random_state=0,
    ).fit(X, y)
    # independent batch IHT over the same groups
    xt, yt = np.clip(X, -tau1, tau1), np.clip(y, -tau2, tau2)
    rg = tau1 * (tau1 * 1.0 + tau2)
    w = np.zeros(d)
    for t in range(m.n_iter_):
        g_idx = np.flatnonzero(m.user_round_ == t)
        grads = np.clip(xt[g_idx] * (xt[g_idx] @ w - yt[g_idx])[:, None], -rg, rg)
        w = _top(w - eta * grads.mean(axis=0), 2 * k)
    np.testing.assert_allclose(m.coef_, w, atol=1e-12)
    assert set(np.flatnonzero(theta)) <= set(np.flatnonzero(m.coef_))
    assert np.linalg.norm(m.coef_ - theta) < 0.1


def test_partial_fit_runs_one_round_on_new_users():
    X, y, _ = _d0(600, 6, 2)
    m = LDPIHTRegressor(
        n_nonzero_coefs=2, epsilon=np.inf, step_size=0.5, bounds_X=4.0, bounds_y=4.0
    )
    m.partial_fit(X[:200], y[:200])
    assert m.n_iter_ == 1 and m.n_users_seen_ == 200
    before = m.coef_.copy()
    m.partial_fit(X[200:400], y[200:400])
    xt, yt = np.clip(X[200:400], -4, 4), np.clip(y[200:400], -4, 4)
    grads = np.clip(xt * (xt @ before - yt)[:, None], -4 * (4 + 4), 4 * (4 + 4))
    np.testing.assert_allclose(m.coef_, _top(before - 0.5 * grads.mean(axis=0), 4), atol=1e-12)
    assert m.n_iter_ == 2 and m.accountant_.spent(399) == (math.inf, 0.0)


def test_private_iht_beats_zero_and_bad_params_raise():
    X, y, theta = _d0(60_000, 10, 2, seed=4)
    X = np.sign(X)  # bounded design: the gradient bound rg = tau1 (tau1 R + tau2) is small
    y = X @ theta
    for mechanism in ["duchi_linf", "coordinate_rr"]:
        m = LDPIHTRegressor(
            n_nonzero_coefs=2,
            epsilon=4.0,
            step_size=0.5,
            bounds_X=1.0,
            bounds_y=1.0,
            mechanism=mechanism,
            random_state=1,
        ).fit(X, y)
        assert np.linalg.norm(m.coef_ - theta) < 0.5 * np.linalg.norm(theta)
    assert np.count_nonzero(m.coef_) <= 4
    with pytest.raises(ValueError, match="rounds"):
        LDPIHTRegressor(n_iter=50, bounds_X=1.0, bounds_y=1.0).fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="random_state"):
        LDPIHTRegressor(bounds_X=1.0, bounds_y=1.0, noise_backend="opendp", random_state=0).fit(
            X[:10], y[:10]
        )
    with pytest.warns(UserWarning, match="theory defaults"):
        LDPIHTRegressor(random_state=0).fit(X[:100], y[:100])


def test_iht_public_parameters_are_frozen_after_the_first_round():
    X, y, _ = _d0(300, 4, 1)
    m = LDPIHTRegressor(n_nonzero_coefs=1, bounds_X=2.0, bounds_y=2.0, random_state=0)
    m.partial_fit(X[:100], y[:100])
    m.set_params(epsilon=10.0)
    with pytest.raises(ValueError, match="changed since the first round"):
        m.partial_fit(X[100:200], y[100:200])
    assert m.n_iter_ == 1


def test_iht_refits_warn_and_user_ids_are_charged():
    X, y, _ = _d0(200, 4, 1)
    acc = BudgetAccountant(epsilon=1.0)
    m = LDPIHTRegressor(n_nonzero_coefs=1, bounds_X=2.0, bounds_y=2.0, accountant=acc)
    m.partial_fit(X[:100], y[:100], user_ids=np.arange(500, 600))
    assert acc.spent(500) == (1.0, 0.0) and acc.spent(0) == (0.0, 0.0)
    with pytest.raises(ValueError, match="already reported"):
        m.partial_fit(X[100:], y[100:], user_ids=np.arange(590, 690))
    assert m.n_users_seen_ == 100 and not m.formal_guarantee_
    own = LDPIHTRegressor(n_nonzero_coefs=1, bounds_X=2.0, bounds_y=2.0, random_state=0)
    own.fit(X, y, user_ids=np.arange(1000, 1200))
    assert own.accountant_.spent(1100) == (1.0, 0.0)
    with pytest.warns(UserWarning, match="refitting charges the same users again"):
        own.fit(X, y, user_ids=np.arange(1000, 1200))
    assert own.accountant_.max_spent == (2.0, 0.0)


@pytest.mark.parametrize("mechanism", ["duchi_linf", "coordinate_rr"])
def test_iht_huge_epsilon_runs(mechanism):
    X, y, _ = _d0(300, 4, 1)
    m = LDPIHTRegressor(
        n_nonzero_coefs=1, epsilon=800.0, bounds_X=2.0, bounds_y=2.0, mechanism=mechanism
    ).fit(X, y)
    assert np.all(np.isfinite(m.coef_))
