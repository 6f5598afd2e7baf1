"""Tests of sparsestat.datasets.make_sparse_regression against each design's definition."""

from __future__ import annotations

import numpy as np
import pytest

from sparsestat.datasets import make_sparse_regression

DESIGNS = ["iid", "equicorrelated", "factor", "random_walk", "near_duplicate", "extreme"]


def _gram(X):
    return X.T @ X / X.shape[0]


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("values", ["signs", "gaussian", "worst_case"])
def test_shapes_norms_sparsity_and_signal_scale(design, values):
    n, d, k = 40, 60, 4
    X, y, w = make_sparse_regression(
        n, d, k, design=design, values=values, coef=True, random_state=1
    )
    assert X.shape == (n, d) and y.shape == (n,) and w.shape == (d,)
    assert X.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(X, axis=0), np.sqrt(n), rtol=1e-12)
    assert np.count_nonzero(w) == k
    # worst-case values on the extreme design cancel to 1e-12 relative: X @ w loses digits
    rtol = 1e-3 if (design, values) == ("extreme", "worst_case") else 1e-10
    np.testing.assert_allclose(np.linalg.norm(X @ w) ** 2 / n, 1.0, rtol=rtol)
    if values == "signs":
        nz = np.abs(w[w != 0])
        np.testing.assert_allclose(nz, nz[0], rtol=1e-12)


def test_return_without_coef_and_noise_level():
    X, y = make_sparse_regression(2000, 10, 3, noise=0.0, random_state=0)
    X2, y2, w = make_sparse_regression(2000, 10, 3, noise=0.5, coef=True, random_state=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_allclose(y, X @ w, rtol=0, atol=1e-12)
    assert abs(np.std(y2 - X2 @ w) - 0.5) < 0.05


@pytest.mark.parametrize("design", DESIGNS)
def test_reproducible(design):
    a = make_sparse_regression(30, 20, 3, design=design, coef=True, random_state=7)
    b = make_sparse_regression(
        30, 20, 3, design=design, coef=True, random_state=np.random.RandomState(7)
    )
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = make_sparse_regression(30, 20, 3, design=design, coef=True, random_state=8)
    assert not np.array_equal(a[0], c[0])


def test_support_is_uniform():
    d, k, reps = 10, 2, 3000
    counts = np.zeros(d)
    for seed in range(reps):
        _, _, w = make_sparse_regression(3, d, k, coef=True, random_state=seed)
        counts += w != 0
    expected = reps * k / d
    # chi-square with 9 dof; 0.999 quantile is 27.9
    assert np.sum((counts - expected) ** 2 / expected) < 27.9


def test_iid_is_uncorrelated():
    X, _ = make_sparse_regression(4000, 8, 1, design="iid", random_state=0)
    G = _gram(X)
    assert np.max(np.abs(G - np.eye(8))) < 0.08


@pytest.mark.parametrize("rho", [0.5, 0.9, 0.99])
def test_equicorrelated_correlation(rho):
    d = 6
    X, _ = make_sparse_regression(20000, d, 1, design="equicorrelated", rho=rho, random_state=0)
    G = _gram(X)
    off = G[~np.eye(d, dtype=bool)]
    np.testing.assert_allclose(off, rho, atol=0.03)
    # kappa(Sigma) = 1 + d rho / (1 - rho) in the population
    ev = np.linalg.eigvalsh(G)
    np.testing.assert_allclose(ev[-1] / ev[0], 1 + d * rho / (1 - rho), rtol=0.15)


def test_factor_design_matches_low_rank_plus_diagonal():
    n, d, r, s = 20000, 12, 2, 0.3
    X, _ = make_sparse_regression(
        n, d, 1, design="factor", n_factors=r, idiosyncratic_scale=s, random_state=3
    )
    # the population correlation is diag^-1/2 (B B^T + s^2 I) diag^-1/2: its d - r smallest
    # eigenvalues are about s^2 / (|b_j|^2 + s^2), far below the r leading ones.
    ev = np.linalg.eigvalsh(_gram(X))
    assert ev[-r] > 10 * ev[-r - 1]
    # the residual after removing the top-r eigenspace has the idiosyncratic scale
    assert np.all(ev[: d - r] < 4 * s**2)
    assert ev[-r] > 0.5


def test_random_walk_correlation():
    d = 5
    X, _ = make_sparse_regression(40000, d, 1, design="random_walk", random_state=0)
    G = _gram(X)
    i = np.arange(1, d + 1)
    expected = np.sqrt(np.minimum.outer(i, i) / np.maximum.outer(i, i))
    np.testing.assert_allclose(G, expected, atol=0.03)


@pytest.mark.parametrize(("block_size", "eta"), [(2, 0.5), (3, 1e-2), (5, 1e-4)])
def test_near_duplicate_blocks(block_size, eta):
    d = 11
    X, _ = make_sparse_regression(
        20000, d, 1, design="near_duplicate", block_size=block_size, eta=eta, random_state=0
    )
    G = _gram(X)
    block = np.arange(d) // block_size
    same = (block[:, None] == block[None, :]) & ~np.eye(d, dtype=bool)
    other = block[:, None] != block[None, :]
    np.testing.assert_allclose(G[same], 1 / (1 + eta**2), atol=0.02)
    assert np.max(np.abs(G[other])) < 0.05


def test_extreme_design_condition_number():
    n, d, r = 400, 30, 3
    X, y = make_sparse_regression(n, d, 3, design="extreme", n_factors=r, random_state=0)
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(y))
    s = np.linalg.svd(X, compute_uv=False)
    # kappa(X^T X) = (s_max / s_min)^2 >= 1e20, yet r directions carry all the energy
    assert (s[0] / s[-1]) ** 2 >= 1e20
    assert s[r] / s[0] < 1e-9 and s[r - 1] / s[0] > 1e-3
    # the idiosyncratic scale can be overridden
    X2, _ = make_sparse_regression(
        n, d, 3, design="extreme", idiosyncratic_scale=0.1, random_state=0
    )
    s2 = np.linalg.svd(X2, compute_uv=False)
    assert (s2[0] / s2[-1]) ** 2 < 1e8


def test_worst_case_is_the_bottom_singular_vector():
    X, _, w = make_sparse_regression(
        50,
        30,
        4,
        design="equicorrelated",
        rho=0.99,
        values="worst_case",
        coef=True,
        random_state=2,
    )
    T = np.flatnonzero(w)
    smin = np.linalg.svd(X[:, T], compute_uv=False)[-1]
    # ||X w|| / ||w|| is the smallest singular value of X[:, T]
    np.testing.assert_allclose(np.linalg.norm(X @ w) / np.linalg.norm(w), smin, rtol=1e-10)
    _, _, ws = make_sparse_regression(
        50, 30, 4, design="equicorrelated", rho=0.99, values="signs", coef=True, random_state=2
    )
    assert np.linalg.norm(w) > 3 * np.linalg.norm(ws)


def test_worst_case_with_more_coefficients_than_samples_is_invisible():
    X, y, w = make_sparse_regression(
        5, 20, 8, values="worst_case", noise=0.0, coef=True, random_state=0
    )
    assert np.count_nonzero(w) == 8
    np.testing.assert_allclose(X @ w, 0.0, atol=1e-12)


def test_bad_parameters():
    with pytest.raises(ValueError, match="n_nonzero_coefs"):
        make_sparse_regression(10, 5, 6)
    with pytest.raises(ValueError, match="design"):
        make_sparse_regression(10, 5, 2, design="banded")
    with pytest.raises(ValueError, match="rho"):
        make_sparse_regression(10, 5, 2, design="equicorrelated", rho=1.0)
    with pytest.raises(ValueError, match="noise"):
        make_sparse_regression(10, 5, 2, noise=-1.0)
