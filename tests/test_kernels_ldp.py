"""Tests of the LDP kernels against brute force, in NumPy and (generic path) torch CPU."""

from __future__ import annotations

import numpy as np
import pytest

from sparsestat._kernels.ldp import (
    LIMB_BITS,
    coordinate_rr_core,
    duchi_core,
    exact_accumulate,
    exact_to_float,
    floored_solve,
    grid_unit,
    mirror_upper,
    normalise_limbs,
    outer_upper,
)


def test_outer_upper_and_mirror_match_numpy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 4))
    T = outer_upper(X)
    full = mirror_upper(T, 4)
    np.testing.assert_array_equal(full, np.einsum("ni,nj->nij", X, X))
    iu, ju = np.triu_indices(4)
    np.testing.assert_array_equal(T, np.einsum("ni,nj->nij", X, X)[:, iu, ju])


def _limbs_to_int(hi, lo):
    return [int(h) * (1 << LIMB_BITS) + int(l) for h, l in zip(hi, lo)]


def test_exact_accumulate_is_exact_and_order_free():
    rng = np.random.default_rng(1)
    V = rng.standard_normal((3001, 5)) * np.array([1e-3, 1.0, 50.0, 1e3, 7.0])
    unit = grid_unit(1e3)
    hi, lo = exact_accumulate(V, unit)
    assert np.all((lo >= 0) & (lo < 2**LIMB_BITS))
    exact = [sum(int(q) for q in np.round(V[:, j] / unit)) for j in range(5)]
    assert _limbs_to_int(hi, lo) == exact
    # any partition and order gives the same limbs
    perm = rng.permutation(3001)
    parts = [exact_accumulate(V[perm[a:b]], unit) for a, b in [(0, 5), (5, 1999), (1999, 3001)]]
    h2 = sum(p[0] for p in parts)
    l2 = sum(p[1] for p in parts)
    h2, l2 = normalise_limbs(h2, l2)
    np.testing.assert_array_equal(h2, hi)
    np.testing.assert_array_equal(l2, lo)
    np.testing.assert_array_equal(exact_to_float(hi, lo, unit), exact_to_float(h2, l2, unit))
    np.testing.assert_allclose(exact_to_float(hi, lo, unit), V.sum(axis=0), rtol=1e-12, atol=1e-9)


def test_exact_accumulate_refuses_overflow():
    with pytest.raises(OverflowError):
        exact_accumulate(np.array([[2.0**95]]), 1.0)
    with pytest.raises(ValueError):
        grid_unit(0.0)


def test_floored_solve_matches_explicit_inverse():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((6, 6))
    S = A + A.T  # indefinite
    b = rng.standard_normal(6)
    theta, norm = floored_solve(S, b, 0.5)
    lam, U = np.linalg.eigh(S)
    inv = U @ np.diag(1 / np.maximum(lam, 0.5)) @ U.T
    np.testing.assert_allclose(theta, inv @ b, atol=1e-12)
    assert norm == pytest.approx(np.abs(inv).sum(axis=1).max())


def test_generic_kernels_run_on_torch_cpu():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 3))
    np.testing.assert_allclose(outer_upper(torch.asarray(X)).numpy(), outer_upper(X))
    T = outer_upper(X)
    np.testing.assert_allclose(mirror_upper(torch.asarray(T), 3).numpy(), mirror_upper(T, 3))
    V = rng.standard_normal((40, 3)) * 100
    unit = grid_unit(100.0)
    h, l = exact_accumulate(torch.asarray(V), unit)
    h0, l0 = exact_accumulate(V, unit)
    np.testing.assert_array_equal(h.numpy(), h0)
    np.testing.assert_array_equal(l.numpy(), l0)
    signs = np.where(rng.random((8, 5)) < 0.5, 1.0, -1.0)
    Vs = np.where(rng.random((8, 5)) < 0.5, 1.0, -1.0)
    keep = rng.random(8) < 0.7
    z_t = duchi_core(torch.asarray(Vs), torch.asarray(keep), torch.asarray(signs)).numpy()
    np.testing.assert_array_equal(z_t, duchi_core(Vs, keep, signs))
    coord = np.array([0, 2, 1])
    bit = np.array([1.0, -1.0, 1.0])
    kp = np.array([True, True, False])
    z_rr = coordinate_rr_core(torch.asarray(coord), torch.asarray(bit), torch.asarray(kp), 3)
    np.testing.assert_array_equal(z_rr.numpy(), coordinate_rr_core(coord, bit, kp, 3))


def test_duchi_core_lands_in_the_chosen_half_space():
    rng = np.random.default_rng(4)
    V = np.where(rng.random((200, 5)) < 0.5, 1.0, -1.0)
    S = np.where(rng.random((200, 5)) < 0.5, 1.0, -1.0)
    keep = rng.random(200) < 0.5
    z = duchi_core(V, keep, S)
    side = (z * V).sum(axis=1) > 0
    np.testing.assert_array_equal(side, keep)
    assert np.all((z == S).all(axis=1) | (z == -S).all(axis=1))
