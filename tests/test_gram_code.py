"""Oracles for the per-signal Gram coders (LARS-lasso, OMP, coordinate descent)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Lasso

from sparsestat._kernels._dispatch import force_backend
from sparsestat._kernels.gram_code import gram_code, l1_duality_gap
from sparsestat.datasets import load_image_patches, make_dct_dictionary
from sparsestat.decomposition import LqSparseCoder, lq_sparse_encode


def _random(m=15, k=40, n=20, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((k, m))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return rng.standard_normal((n, m)), D


def _patches(n=60):
    # the benchmark's problem, small: natural patches and a coherent overcomplete DCT
    return load_image_patches(8, n_patches=n // 3, random_state=0)[:n], make_dct_dictionary(
        8, 16, drop_dc=False
    )


def _lasso_rows(X, D, alpha, positive=False):
    m = X.shape[1]
    out = []
    for x in X:
        las = Lasso(
            alpha=alpha / m, fit_intercept=False, tol=1e-14, max_iter=10**6, positive=positive
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append(las.fit(D.T, x).coef_)
    return np.array(out)


def _l0_objective(X, D, C, alpha):
    return 0.5 * np.sum((X - C @ D) ** 2, axis=1) + alpha * np.count_nonzero(C, axis=1)


@pytest.mark.parametrize("data", ["random", "dct"])
def test_lars_equals_sklearn_lasso_without_polish(data):
    X, D = _random() if data == "random" else _patches(12)
    alpha = 0.15 if data == "random" else 0.5
    ref = _lasso_rows(X, D, alpha)
    C, steps = gram_code(X, D, "l1", alpha, method="lars", polish=False)
    assert steps.max() >= 10  # many homotopy steps, drops included on the DCT
    np.testing.assert_allclose(C, ref, atol=1e-7)
    Cp, _ = gram_code(X, D, "l1", alpha, method="lars", polish=True)
    np.testing.assert_allclose(Cp, ref, atol=1e-7)


def test_lars_positive_and_zero_solution():
    X, D = _random(n=8)
    C, _ = gram_code(X, D, "l1", 0.1, method="lars", positive=True, polish=False)
    assert np.all(C >= 0)
    np.testing.assert_allclose(C, _lasso_rows(X, D, 0.1, positive=True), atol=1e-7)
    # alpha above ||D x||_inf: the zero code, no step
    big = float(np.max(np.abs(X @ D.T))) * 1.01
    C0, steps = gram_code(X, D, "l1", big, method="lars")
    assert not np.any(C0) and not np.any(steps)


def test_duality_gap_equals_residual_formula():
    X, D = _random(n=3)
    C = _lasso_rows(X, D, 0.2) + 0.01  # a feasible, non-optimal point
    for x, c in zip(X, C, strict=True):
        e = x - c @ D
        r = D @ e
        s = min(1.0, 0.2 / np.max(np.abs(r)))
        primal = 0.5 * e @ e + 0.2 * np.sum(np.abs(c))
        dual = 0.5 * x @ x - 0.5 * np.sum((x - s * e) ** 2)
        got = l1_duality_gap(D @ x, c, r, float(x @ x), 0.2)
        assert got > 0
        np.testing.assert_allclose(got, primal - dual, rtol=1e-10)


def test_cd_l1_stops_on_gap_and_matches_lasso():
    X, D = _patches(12)
    ref = _lasso_rows(X, D, 0.5)
    C, _ = gram_code(X, D, "l1", 0.5, method="cd", tol=1e-7, max_iter=10**6)
    obj = 0.5 * np.sum((X - C @ D) ** 2, axis=1) + 0.5 * np.abs(C).sum(axis=1)
    obj_ref = 0.5 * np.sum((X - ref @ D) ** 2, axis=1) + 0.5 * np.abs(ref).sum(axis=1)
    # stopped by the gap (<= tol^2 ||x||^2) or a tiny sweep: the objective is lasso's to
    # about 1e-13 relative although coherent atoms make CD take thousands of epochs here
    assert np.all(obj - obj_ref <= 1e-12 * np.sum(X**2, axis=1))
    assert np.max(np.abs(C - ref)) <= 1e-3


def _ormp_reference(x, D, alpha):
    """Greedy l0 pursuit in signal space: add the atom whose least-squares refit lowers the
    residual most (residuals from a QR of the selected atoms), while it pays ``alpha``."""
    support, k = [], D.shape[0]
    coef = np.zeros(k)
    while len(support) < D.shape[1]:
        if support:
            Q, _ = np.linalg.qr(D[support].T)
            e = x - Q @ (Q.T @ x)
            P = D.T - Q @ (Q.T @ D.T)  # projected atoms, as columns
        else:
            e, P = x, D.T
        nrm = np.sum(P**2, axis=0)
        gain = np.where(nrm > 1e-10, (D @ e) ** 2 / np.maximum(nrm, 1e-300), -1.0)
        gain[support] = -1.0
        j = int(np.argmax(gain))
        if gain[j] <= 2 * alpha:
            break
        support.append(j)
    if support:
        coef[support] = np.linalg.lstsq(D[support].T, x, rcond=None)[0]
    return coef


def test_omp_equals_greedy_least_squares_reference_and_polish_descends():
    X, D = _patches(30)
    alpha = 0.2
    C, n_atoms = gram_code(X, D, "l0", alpha, method="omp", polish=False)
    assert np.all(np.count_nonzero(C, axis=1) == n_atoms) and n_atoms.max() >= 10
    for i in range(X.shape[0]):
        np.testing.assert_allclose(C[i], _ormp_reference(X[i], D, alpha), atol=1e-8)
    # the polish only lowers the objective and ends at a coordinate-wise minimum
    Cp, _ = gram_code(X, D, "l0", alpha, method="omp")
    assert np.all(_l0_objective(X, D, Cp, alpha) <= _l0_objective(X, D, C, alpha) + 1e-12)
    L = np.sum(D**2, axis=1)
    z = Cp + (X - Cp @ D) @ D.T / L
    np.testing.assert_allclose(np.where(z**2 * L > 2 * alpha, z, 0.0), Cp, atol=1e-8)


@pytest.mark.parametrize("method,penalty", [("lars", "l1"), ("omp", "l0"), ("cd", "l1/2")])
def test_numba_matches_generic_and_threads(method, penalty):
    X, D = _patches(9)
    C, it = gram_code(X, D, penalty, 0.3, method=method)
    with force_backend("generic"):
        Cg, itg = gram_code(X, D, penalty, 0.3, method=method)
    np.testing.assert_allclose(C, Cg, atol=1e-12)
    np.testing.assert_array_equal(it, itg)
    Ct, _ = gram_code(X, D, penalty, 0.3, method=method, n_jobs=2)
    np.testing.assert_array_equal(C, Ct)


def test_solver_dispatch_and_errors():
    X, D = _random(n=5)
    auto = lq_sparse_encode(X, D, alpha=0.2)  # 'auto' is 'lars' for l1 on NumPy
    np.testing.assert_allclose(auto, lq_sparse_encode(X, D, alpha=0.2, solver="lars"))
    np.testing.assert_allclose(auto, _lasso_rows(X, D, 0.2), atol=1e-7)
    omp = LqSparseCoder(D, penalty="l0", alpha=0.05, solver="omp").transform(X)
    assert omp.shape == (5, D.shape[0])
    assert lq_sparse_encode(X.astype(np.float32), D, alpha=0.2).dtype == np.float32
    with pytest.raises(ValueError, match="'l1' only"):
        lq_sparse_encode(X, D, penalty="l0", solver="lars")
    with pytest.raises(ValueError, match="'l0'"):
        lq_sparse_encode(X, D, penalty="l1", solver="omp")
    with pytest.raises(ValueError, match="real NumPy"):
        lq_sparse_encode(X + 0j, D, penalty="l1", solver="lars")


def test_serial_coding_leaves_numba_thread_pool_alone():
    # Starting Numba's thread pool (even to read its size) next to torch's own OpenMP threads
    # slowed torch many times over in the same process; n_jobs=None must not start it.
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from numba.np.ufunc import parallel\n"
        "from sparsestat.decomposition import lq_sparse_encode\n"
        "rng = np.random.default_rng(0)\n"
        "D, X = rng.standard_normal((20, 10)), rng.standard_normal((50, 10))\n"
        "for solver in ('lars', 'cd'):\n"
        "    lq_sparse_encode(X, D, alpha=0.1, solver=solver)\n"
        "lq_sparse_encode(X, D, penalty='l0', alpha=0.1, solver='omp')\n"
        "print(parallel._is_initialized)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
