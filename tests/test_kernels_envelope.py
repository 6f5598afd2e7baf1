"""Weighted group sparse envelope kernels against brute force (specs/group_envelope.md 1-5)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize

from sparsestat._kernels._dispatch import force_backend
from sparsestat._kernels.envelope import (
    group_norms,
    wgsef_conjugate,
    wgsef_prox,
    wgsef_prox_factors,
    wgsef_value,
)


def _variational_value(v, k):
    """1/2 min { sum v_i^2 / theta_i : 0 < theta <= 1, sum theta <= k } by SLSQP."""
    n = v.size
    if k >= n:
        return 0.5 * np.sum(v**2)
    best = np.inf
    for start in (np.full(n, k / n), np.clip(np.abs(v) / np.abs(v).sum() * k, 1e-3, 1)):
        res = minimize(
            lambda t: np.sum(v**2 / t),
            start,
            jac=lambda t: -(v**2) / t**2,
            bounds=[(1e-9, 1.0)] * n,
            constraints=[
                {"type": "ineq", "fun": lambda t: k - t.sum(), "jac": lambda t: -np.ones(n)}
            ],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 500},
        )
        best = min(best, res.fun)
    return 0.5 * best


def _random_instance(rng):
    n = int(rng.integers(2, 7))
    sizes = rng.integers(1, 4, size=n)
    groups = np.repeat(np.arange(n), sizes)
    x = rng.normal(size=groups.size) * rng.uniform(0.1, 3, size=n)[groups]
    w = rng.uniform(0.5, 2.0, size=n)
    k = int(rng.integers(1, n))
    return x, groups, w, k


def _objective(u, x, groups, w, k, lam):
    return lam * wgsef_value(group_norms(u, groups, w.size), w, k) + 0.5 * np.sum((u - x) ** 2)


@pytest.mark.parametrize("lam", [0.05, 0.5, 2.0, 20.0])
def test_prox_equals_brute_force_minimum(lam):
    rng = np.random.default_rng(int(lam * 100))
    for _ in range(3):
        x, groups, w, k = _random_instance(rng)
        u = wgsef_prox(x, groups, w, k, lam)
        best = np.inf
        starts = [x, u + 0.1 * rng.normal(size=x.size)]
        for u0 in starts:
            res = minimize(
                _objective, u0, args=(x, groups, w, k, lam), method="Powell",
                options={"xtol": 1e-12, "ftol": 1e-14, "maxiter": 40000},
            )  # fmt: skip
            best = min(best, res.fun)
        got = _objective(u, x, groups, w, k, lam)
        assert got <= best + 1e-8 * max(1.0, abs(best))
        assert got >= best - 1e-6 * max(1.0, abs(best))  # the prox is the minimum, not below


def test_value_closed_form_equals_variational_and_biconjugate_bounds():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 7))
        a, w = np.abs(rng.normal(size=n)), rng.uniform(0.5, 2, size=n)
        k = int(rng.integers(1, n + 1))
        closed = wgsef_value(a, w, k)
        np.testing.assert_allclose(closed, _variational_value(w * a, k), rtol=1e-6)
        assert closed >= 0.5 * np.sum((w * a) ** 2) - 1e-12  # SEF >= 1/2 ||x||^2
        # biconjugate: <a, y> - Phi*(y) <= Phi(a) for any y, with equality at y = grad
        for _ in range(5):
            y = np.abs(rng.normal(size=n)) * 2
            assert a @ y - wgsef_conjugate(y, w, k) <= closed + 1e-9
    # <= k nonzero groups: the envelope equals 1/2 sum w^2 a^2
    a = np.array([2.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(wgsef_value(a, np.full(4, 2.0), 2), 0.5 * 4 * 5)


def test_fenchel_young_equality_at_the_prox():
    rng = np.random.default_rng(3)
    for lam in (0.05, 0.5, 2.0, 20.0):
        for _ in range(20):
            x, groups, w, k = _random_instance(rng)
            u = wgsef_prox(x, groups, w, k, lam)
            y = (x - u) / lam
            val = wgsef_value(group_norms(u, groups, w.size), w, k)
            conj = wgsef_conjugate(group_norms(y, groups, w.size), w, k)
            gap = val + conj - u @ y
            assert abs(gap) <= 1e-7 * max(1.0, val + conj)


def test_sparsity_level_and_zeroed_groups():
    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(2, 10))
        a = np.abs(rng.normal(size=n)) * rng.uniform(0.1, 5)
        k = int(rng.integers(1, n))
        lam = float(rng.choice([0.05, 0.5, 2.0, 20.0]))
        f = wgsef_prox_factors(a, np.ones(n), k, lam)
        nnz = int(np.sum(f > 0))
        assert nnz >= min(k, int(np.sum(a > 0)))
        z = np.sort(a)[::-1]
        exactly_k = z[k] <= lam / (1 + lam) * z[k - 1]
        assert (nnz == k) == exactly_k


def test_special_cases():
    rng = np.random.default_rng(7)
    # singleton groups, k = 1: u_i = sign(x_i) (|x_i| - lam ||u||_1)_+
    for lam in (0.1, 1.0, 5.0):
        x = rng.normal(size=6)
        u = wgsef_prox(x, np.arange(6), np.ones(6), 1, lam)
        np.testing.assert_allclose(
            u, np.sign(x) * np.maximum(np.abs(x) - lam * np.abs(u).sum(), 0), atol=1e-12
        )
        np.testing.assert_allclose(
            wgsef_value(np.abs(x), np.ones(6), 1), 0.5 * np.abs(x).sum() ** 2
        )
    # k >= n: ridge shrink
    x, groups = rng.normal(size=5), np.array([0, 0, 1, 2, 2])
    w = np.array([1.0, 2.0, 0.5])
    np.testing.assert_allclose(wgsef_prox(x, groups, w, 3, 0.7), x / (1 + 0.7 * w[groups] ** 2))
    # permutation equivariance and sign-flip invariance
    x, groups, w, k = _random_instance(rng)
    u = wgsef_prox(x, groups, w, k, 0.5)
    perm = rng.permutation(w.size)
    inv = np.argsort(perm)
    u_perm = wgsef_prox(x, inv[groups], w[perm], k, 0.5)
    np.testing.assert_allclose(u_perm, u, atol=1e-12)
    np.testing.assert_allclose(wgsef_prox(-x, groups, w, k, 0.5), -u, atol=1e-12)
    with pytest.raises(ValueError, match="k must be"):
        wgsef_prox_factors(np.ones(3), np.ones(3), 0, 1.0)


def test_numba_equals_generic_and_torch_generic():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    for _ in range(100):
        n = int(rng.integers(1, 40))
        a = np.abs(rng.normal(size=n)) * (rng.random(n) > 0.2)
        w = rng.uniform(0.3, 3, size=n)
        k, lam = int(rng.integers(1, n + 2)), float(rng.uniform(0.01, 10))
        fast = wgsef_prox_factors(a, w, k, lam)
        with force_backend("generic"):
            slow = wgsef_prox_factors(a, w, k, lam)
        np.testing.assert_allclose(fast, slow, atol=1e-12)
        on_torch = wgsef_prox_factors(torch.tensor(a), torch.tensor(w), k, lam)
        assert isinstance(on_torch, torch.Tensor)
        np.testing.assert_allclose(on_torch.numpy(), fast, atol=1e-12)


def test_brute_force_support_enumeration_small():
    """Independent route: for k-sparse candidates, exhaustive support search is a lower
    bound on the non-convex problem; the envelope prox objective must not exceed x's value."""
    rng = np.random.default_rng(13)
    for _ in range(30):
        x, groups, w, k = _random_instance(rng)
        n = w.size
        u = wgsef_prox(x, groups, w, k, 1.0)
        # any k-group-sparse point u' gives lam Phi(u') = lam/2 sum w^2 ||u'_g||^2: the prox
        # objective is at most the best such point (convex envelope lies below)
        best = np.inf
        for supp in itertools.combinations(range(n), k):
            keep = np.isin(groups, supp)
            cand = np.where(keep, x / (1 + w[groups] ** 2), 0.0)
            best = min(best, _objective(cand, x, groups, w, k, 1.0))
        assert _objective(u, x, groups, w, k, 1.0) <= best + 1e-10
