"""The mixture-of-experts kernels: Numba versions against the generic array-API versions."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp

from sparsestat._kernels._dispatch import force_backend, get_kernel
from sparsestat._kernels.moe import (
    moe_estep,
    moe_expert_moments,
    moe_solve_experts,
    moe_weighted_sse,
)


def _problem(n=300, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n) * 3
    S = rng.standard_normal((n, k)) * 5
    coef = rng.standard_normal((k, d))
    intercept = rng.standard_normal(k)
    variances = rng.uniform(0.1, 2.0, k)
    R = rng.dirichlet(np.ones(k), size=n)
    return X, y, S, coef, intercept, variances, R


def test_numba_versions_are_registered_for_numpy():
    X, y, S, *_ = _problem()
    for name in ("moe_estep", "moe_expert_moments", "moe_weighted_sse"):
        assert get_kernel(name, X, y).__name__.endswith("numba")


def test_estep_matches_brute_force_and_generic():
    X, y, S, coef, intercept, variances, _ = _problem()
    R, ll = moe_estep(X, y, S, coef, intercept, variances)
    # brute force with scipy
    mu = X @ coef.T + intercept
    logpi = S - logsumexp(S, axis=1, keepdims=True)
    J = logpi - 0.5 * np.log(2 * np.pi * variances) - 0.5 * (y[:, None] - mu) ** 2 / variances
    assert_allclose(ll, logsumexp(J, axis=1), rtol=1e-12, atol=1e-12)
    assert_allclose(R, np.exp(J - logsumexp(J, axis=1, keepdims=True)), rtol=1e-11, atol=1e-14)
    with force_backend("generic"):
        Rg, llg = moe_estep(X, y, S, coef, intercept, variances)
    assert_allclose(Rg, R, rtol=1e-12, atol=1e-14)
    assert_allclose(llg, ll, rtol=1e-12)


def test_estep_is_stable_for_extreme_logits():
    X, y, S, coef, intercept, variances, _ = _problem(n=20)
    S = S * 1e3  # exp would overflow without log-sum-exp
    R, ll = moe_estep(X, y, S, coef, intercept, variances)
    assert np.all(np.isfinite(R)) and np.all(np.isfinite(ll))
    assert_allclose(R.sum(axis=1), 1.0)


def test_moments_and_sse_match_generic_and_dense_algebra():
    X, y, S, coef, intercept, variances, R = _problem()
    G, h, s = moe_expert_moments(X, y, R)
    with force_backend("generic"):
        Gg, hg, sg = moe_expert_moments(X, y, R)
        sse_g = moe_weighted_sse(X, y, R, coef, intercept)
    assert_allclose(G, Gg, rtol=1e-11, atol=1e-10)
    assert_allclose(h, hg, rtol=1e-11, atol=1e-10)
    assert_allclose(s, sg, rtol=1e-12)
    Xa = np.column_stack([X, np.ones(len(y))])
    assert_allclose(G[1], Xa.T @ (R[:, [1]] * Xa), rtol=1e-11)
    sse = moe_weighted_sse(X, y, R, coef, intercept)
    assert_allclose(sse, sse_g, rtol=1e-11)
    assert_allclose(sse[2], np.sum(R[:, 2] * (y - X @ coef[2] - intercept[2]) ** 2), rtol=1e-11)


def test_solve_experts_is_weighted_least_squares():
    X, y, S, coef, intercept, variances, R = _problem()
    G, h, _ = moe_expert_moments(X, y, R)
    c, b = moe_solve_experts(G, h)
    for i in range(R.shape[1]):
        w = np.sqrt(R[:, i])
        Xa = np.column_stack([X, np.ones(len(y))])
        theta = np.linalg.lstsq(Xa * w[:, None], y * w, rcond=None)[0]
        assert_allclose(c[i], theta[:-1], rtol=1e-8, atol=1e-10)
        assert_allclose(b[i], theta[-1], rtol=1e-8, atol=1e-10)


def test_solve_experts_minimum_norm_and_insensitive_to_summation_order():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 10))  # fewer points than parameters
    y = rng.standard_normal(6)
    w = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 1.0])
    G, h, _ = moe_expert_moments(X, y, w[:, None])
    c, b = moe_solve_experts(G, h)
    Xa = np.column_stack([X, np.ones(6)])
    sw = np.sqrt(w)
    theta = np.linalg.lstsq(Xa * sw[:, None], y * sw, rcond=None)[0]  # minimum norm
    assert_allclose(np.r_[c[0], b], theta, rtol=1e-8, atol=1e-10)
    # the same statistics summed from repeated rows (another rounding) give the same expert
    reps = w.astype(int)
    Gr, hr, _ = moe_expert_moments(np.repeat(X, reps, axis=0), np.repeat(y, reps), np.ones((12, 1)))
    cr, br = moe_solve_experts(Gr, hr)
    assert_allclose(cr, c, rtol=1e-10, atol=1e-12)
    assert_allclose(br, b, rtol=1e-10, atol=1e-12)
    # an expert without weight gets zeros
    c0, b0 = moe_solve_experts(np.zeros((1, 3, 3)), np.zeros((1, 3)))
    assert_allclose(c0, 0.0) and assert_allclose(b0, 0.0)


def test_generic_kernels_run_on_torch_tensors():
    torch = pytest.importorskip("torch")
    X, y, S, coef, intercept, variances, R = _problem(n=50)
    t = [torch.from_numpy(a) for a in (X, y, S, coef, intercept, variances, R)]
    Rt, llt = moe_estep(*t[:6])
    assert isinstance(Rt, torch.Tensor)
    Rn, lln = moe_estep(X, y, S, coef, intercept, variances)
    assert_allclose(Rt.numpy(), Rn, rtol=1e-11, atol=1e-14)
    assert_allclose(llt.numpy(), lln, rtol=1e-12)
    Gt, ht, st = moe_expert_moments(t[0], t[1], t[6])
    G, h, s = moe_expert_moments(X, y, R)
    assert_allclose(Gt.numpy(), G, rtol=1e-11, atol=1e-10)
    ct, bt = moe_solve_experts(Gt, ht)
    c, b = moe_solve_experts(G, h)
    assert_allclose(ct.numpy(), c, rtol=1e-9, atol=1e-12)
    sse_t = moe_weighted_sse(t[0], t[1], t[6], t[3], t[4])
    assert_allclose(sse_t.numpy(), moe_weighted_sse(X, y, R, coef, intercept), rtol=1e-11)


def test_generic_kernels_run_on_array_api_strict():
    xps = pytest.importorskip("array_api_strict")
    X, y, S, coef, intercept, variances, R = _problem(n=30)
    a = [xps.asarray(v) for v in (X, y, S, coef, intercept, variances, R)]
    Ra, lla = moe_estep(*a[:6])
    Rn, lln = moe_estep(X, y, S, coef, intercept, variances)
    assert_allclose(np.asarray(lla), lln, rtol=1e-12)
    G, h, s = moe_expert_moments(a[0], a[1], a[6])
    assert_allclose(np.asarray(G), moe_expert_moments(X, y, R)[0], rtol=1e-11, atol=1e-10)


@pytest.mark.parametrize("activation", [None, "tanh", "sigmoid", "gelu", "relu"])
@pytest.mark.parametrize("inner", [False, True])
def test_gate_objective_numba_matches_generic(activation, inner):
    from sparsestat._kernels.moe import gate_q_and_grad

    rng = np.random.default_rng(3)
    n, d, k = 200, 4, 3
    X = rng.standard_normal((n, d))
    R = rng.dirichlet(np.ones(k), size=n)
    B1 = rng.standard_normal((k, d))
    b0 = rng.standard_normal(k)
    gamma = rng.standard_normal(k) if inner else None
    Q, g = gate_q_and_grad(X, R, B1, b0, 0.7, activation, gamma)
    with force_backend("generic"):
        Qg, gg = gate_q_and_grad(X, R, B1, b0, 0.7, activation, gamma)
    assert_allclose(Q, Qg, rtol=1e-12)
    for key in ("gate_coef", "gate_intercept", "log_temperature"):
        assert_allclose(g[key], gg[key], rtol=1e-10, atol=1e-10)
    if inner:
        assert_allclose(g["inner_intercept"], gg["inner_intercept"], rtol=1e-10, atol=1e-10)
