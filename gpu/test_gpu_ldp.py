"""GPU: the generic (array-API) LDP aggregation on CuPy and CUDA torch equals the NumPy path.

The server side of the local-privacy family sums privatised reports exactly, in integer limbs;
the same integers must come out on the device. Float64 throughout (the sums are exact, so the
tolerance is zero for the limbs; 1e-10 relative for the floored solve, a LAPACK call).
"""

from __future__ import annotations

import numpy as np

from sparsestat._kernels.ldp import (
    exact_accumulate,
    floored_solve,
    gaussian_report_sums,
    gaussian_reports,
    grid_unit,
)


def _problem(seed=0, n=20_000, d=20):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d))
    z = rng.standard_normal((n, d * (d + 1) // 2))
    folds = np.arange(n) % 5
    return X, z, folds


def _check(xp_asarray, to_numpy):
    X, z, folds = _problem()
    args = (20.0, 3.7, grid_unit(20.0), True)
    ref = gaussian_report_sums(X, z, folds, 5, *args)
    got = gaussian_report_sums(xp_asarray(X), xp_asarray(z), xp_asarray(folds), 5, *args)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(to_numpy(a), b)
    reports = gaussian_reports(X[:500], z[:500], *args)
    np.testing.assert_array_equal(
        to_numpy(gaussian_reports(xp_asarray(X[:500]), xp_asarray(z[:500]), *args)), reports
    )
    h, lo = exact_accumulate(xp_asarray(reports), args[2])
    h_ref, lo_ref = exact_accumulate(reports, args[2])
    np.testing.assert_array_equal(to_numpy(h), h_ref)
    np.testing.assert_array_equal(to_numpy(lo), lo_ref)
    S = X.T @ X / X.shape[0]
    b = X.T @ X[:, 0] / X.shape[0]
    theta_ref, norm_ref = floored_solve(S, b, 0.05)
    theta, norm = floored_solve(xp_asarray(S), xp_asarray(b), 0.05)
    np.testing.assert_allclose(to_numpy(theta), theta_ref, rtol=1e-10, atol=1e-12)
    assert abs(norm - norm_ref) <= 1e-10 * norm_ref


def test_ldp_aggregation_on_cupy_equals_numpy(cp):
    _check(cp.asarray, cp.asnumpy)


def test_ldp_aggregation_on_torch_cuda_equals_numpy(torch_cuda):
    _check(
        lambda a: torch_cuda.asarray(a, device="cuda"),
        lambda t: t.detach().cpu().numpy(),
    )
