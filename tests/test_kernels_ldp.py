"""Tests of the LDP kernels against brute force, in NumPy and (generic path) torch CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sparsestat._kernels.ldp as ldp_module
from sparsestat._kernels._dispatch import force_backend, registered
from sparsestat._kernels.ldp import (
    LIMB_BITS,
    coordinate_rr_core,
    duchi_core,
    exact_accumulate,
    exact_to_float,
    floored_solve,
    gaussian_report_sums,
    gaussian_reports,
    grid_unit,
    keyed_gaussian_report_sums,
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


def test_exact_accumulate_compiled_matches_generic():
    # the one-pass compiled version gives the generic limbs: ties to even, negative values,
    # rows far above the report scale (pre-aggregated sums), non-contiguous input
    assert "numba" in registered()["exact_accumulate"]
    rng = np.random.default_rng(4)
    unit = grid_unit(10.0)
    V = rng.standard_normal((2500, 7)) * 10.0
    V[:6, 0] = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5]) * unit  # halves: round to even
    V[6, 1] = 3.0e12  # about 2**88 grid units: below the 2**90 overflow bound
    V[7, 2] = -7.0e11
    for values in (V, V[::3, ::2], V[:0]):
        hi, lo = exact_accumulate(values, unit)
        with force_backend("generic"):
            hi_g, lo_g = exact_accumulate(values, unit)
        assert hi.dtype == lo.dtype == np.int64
        np.testing.assert_array_equal(hi, hi_g)
        np.testing.assert_array_equal(lo, lo_g)
        exact = [sum(int(q) for q in np.round(values[:, j] / unit)) for j in range(values.shape[1])]
        assert _limbs_to_int(hi, lo) == exact
    for backend in (None, "generic"):
        with force_backend(backend), pytest.raises(OverflowError):
            exact_accumulate(np.full((3, 2), 2.0**89), 1.0)  # 3 * 2**89 > 2**90


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


# ----------------------------------------------------------------------------- fused reports
def _report_inputs(seed, n, d, outer):
    """Rows inside the ball, on its boundary (one coordinate at +-tau) and far outside."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, size=(n, d))
    X[::7] = 0.0
    X[1::7, 1:] = 0.0
    X[1::7, 0] = 1.5  # the triangle's norm equals tau^2: the ball's boundary when d = 1
    X[2::7] *= 1e3  # unclipped rows: the ball clip is active
    m = d * (d + 1) // 2 if outer else d
    return X, rng.standard_normal((n, m))


def _bound(d, outer, tau=1.5):
    return d * tau**2 if outer else math.sqrt(d) * tau


@pytest.mark.parametrize("outer", [True, False])
@pytest.mark.parametrize("d", [1, 2, 7])
@pytest.mark.parametrize("scale", [0.0, 3.7])
def test_gaussian_reports_numba_equals_generic_and_brute_force(outer, d, scale):
    X, z = _report_inputs(d, 300, d, outer)
    bound, unit = _bound(d, outer), grid_unit(max(scale, 10.0))
    fast = gaussian_reports(X, z, bound, scale, unit, outer)
    with force_backend("generic"):
        slow = gaussian_reports(X, z, bound, scale, unit, outer)
    np.testing.assert_array_equal(fast, slow)
    # brute force, user by user: clip the statistic to the l2 ball, add noise, round
    for i in range(0, 300, 13):
        t = np.outer(X[i], X[i])[np.triu_indices(d)] if outer else X[i].copy()
        norm = math.sqrt(sum(float(e) ** 2 for e in t))
        t = t * (bound / max(norm, bound))
        expected = np.round((t + scale * z[i]) / unit) * unit
        np.testing.assert_allclose(fast[i], expected, rtol=1e-15, atol=unit)
    # the l2 ball is respected (up to the grid) whenever there is no noise
    if scale == 0.0:
        norms = np.linalg.norm(fast, axis=1)
        assert norms.max() <= bound * (1 + 1e-12)


@pytest.mark.parametrize("outer", [True, False])
@pytest.mark.parametrize("scale", [0.0, 2.5])
def test_gaussian_report_sums_are_the_sums_of_the_reports(outer, scale):
    d, k = 5, 3
    X, z = _report_inputs(7, 2001, d, outer)
    bound, unit = _bound(d, outer), grid_unit(max(scale, 30.0))
    folds = np.random.default_rng(8).integers(0, k, size=2001)
    folds[:5] = 2  # fold 1 may be absent from a batch; here every fold is present
    hi, lo = gaussian_report_sums(X, z, folds, k, bound, scale, unit, outer)
    with force_backend("generic"):
        hi_g, lo_g = gaussian_report_sums(X, z, folds, k, bound, scale, unit, outer)
    np.testing.assert_array_equal(hi, hi_g)
    np.testing.assert_array_equal(lo, lo_g)
    reports = gaussian_reports(X, z, bound, scale, unit, outer)
    for f in range(k):
        exact = [sum(int(q) for q in np.round(reports[folds == f, j] / unit)) for j in range(3)]
        assert _limbs_to_int(hi[f, :3], lo[f, :3]) == exact
    # an empty fold has zero sums
    hi_e, lo_e = gaussian_report_sums(
        X[:4], z[:4], np.zeros(4, np.int64), 2, bound, scale, unit, outer
    )
    assert not hi_e[1].any() and not lo_e[1].any()


def test_gaussian_report_sums_fall_back_on_huge_entries():
    X = np.array([[1.0, 2.0], [0.5, -1.0], [1.0, 1.0]])
    z = np.array([[3e10, 0.0, 1.0], [2.0, -1.0, 0.0], [0.0, 0.0, 0.0]])  # q ~ 2**85
    unit = grid_unit(1.0)
    hi, lo = gaussian_report_sums(X, z, np.zeros(3, np.int64), 1, 10.0, 1.0, unit, True)
    with force_backend("generic"):
        hi_g, lo_g = gaussian_report_sums(X, z, np.zeros(3, np.int64), 1, 10.0, 1.0, unit, True)
    np.testing.assert_array_equal(hi, hi_g)
    np.testing.assert_array_equal(lo, lo_g)
    exact = [
        sum(int(q) for q in np.round(col / unit))
        for col in (gaussian_reports(X, z, 10.0, 1.0, unit, True)).T
    ]
    assert _limbs_to_int(hi[0], lo[0]) == exact
    z[0, 0] = 1e40  # beyond the accumulator: refused by both paths
    with pytest.raises(OverflowError):
        gaussian_report_sums(X, z, np.zeros(3, np.int64), 1, 10.0, 1.0, unit, True)
    with pytest.raises(ValueError, match="folds"):
        gaussian_report_sums(X, z, np.full(3, 4), 2, 10.0, 1.0, unit, True)


def test_gaussian_report_kernels_run_on_torch_cpu():
    torch = pytest.importorskip("torch")
    X, z = _report_inputs(3, 50, 4, True)
    args = (_bound(4, True), 1.3, grid_unit(10.0), True)
    ref = gaussian_reports(X, z, *args)
    np.testing.assert_array_equal(
        gaussian_reports(torch.asarray(X), torch.asarray(z), *args).numpy(), ref
    )
    folds = np.arange(50) % 3
    hi, lo = gaussian_report_sums(X, z, folds, 3, *args)
    ht, lt = gaussian_report_sums(
        torch.asarray(X), torch.asarray(z), torch.asarray(folds), 3, *args
    )
    np.testing.assert_array_equal(ht.numpy(), hi)
    np.testing.assert_array_equal(lt.numpy(), lo)


# ----------------------------------------------------------------------------- keyed sums
def _numpy_keyed_noise(seed, stream, ids, m, block):
    """Row u: row u % block of NumPy's draw for block u // block (brute force, per user)."""
    z = np.empty((ids.size, m))
    for r, u in enumerate(ids):
        seq = np.random.SeedSequence(seed, spawn_key=(stream, int(u) // block))
        gen = np.random.Generator(np.random.SFC64(seq))
        z[r] = gen.standard_normal((int(u) % block + 1, m))[-1]
    return z


@pytest.mark.parametrize("outer", [True, False])
@pytest.mark.parametrize("first_id", [0, 5, 48])
def test_keyed_sums_equal_numpy_noise_whatever_the_threads(outer, first_id, monkeypatch):
    monkeypatch.setattr(ldp_module, "_COMPILED_MIN_DRAWS", 0)  # the compiled kernel
    monkeypatch.setattr(ldp_module, "_MIN_TASK_DRAWS", 1)  # many small tasks per thread
    d, k, block, seed = 4, 3, 16, 2024
    X, _ = _report_inputs(first_id, 203, d, outer)
    m = d * (d + 1) // 2 if outer else d
    bound, scale, unit = _bound(d, outer), 2.5, grid_unit(30.0)
    ids = np.arange(first_id, first_id + 203)
    # oracle: NumPy's own generators, user by user, then the generic sums
    z = _numpy_keyed_noise(seed, 1, ids, m, block)
    with force_backend("generic"):
        hi_ref, lo_ref = gaussian_report_sums(X, z, ids % k, k, bound, scale, unit, outer)
    args = (seed, 1, block, k, bound, scale, unit, outer)
    for threads in (1, 2, 3, 64):
        hi, lo = keyed_gaussian_report_sums(X, first_id, *args, n_threads=threads)
        np.testing.assert_array_equal(hi, hi_ref)
        np.testing.assert_array_equal(lo, lo_ref)
    with force_backend("generic"):
        hi_g, lo_g = keyed_gaussian_report_sums(X, first_id, *args)
    np.testing.assert_array_equal(hi_g, hi_ref)
    np.testing.assert_array_equal(lo_g, lo_ref)
    # any split of the users into consecutive batches adds up to the same integers
    parts = [(0, 1), (1, 40), (40, 41), (41, 203)]
    sums = [keyed_gaussian_report_sums(X[a:b], first_id + a, *args) for a, b in parts]
    hi_p, lo_p = normalise_limbs(sum(h for h, _ in sums), sum(l for _, l in sums))
    np.testing.assert_array_equal(hi_p, hi_ref)
    np.testing.assert_array_equal(lo_p, lo_ref)


@pytest.mark.parametrize("outer", [True, False])
@pytest.mark.parametrize("intercept", [None, 0.75])
def test_keyed_sums_prepare_rows_like_numpy(outer, intercept, monkeypatch):
    """Clipping X and y, the intercept column and the product by y happen in the kernel."""
    monkeypatch.setattr(ldp_module, "_COMPILED_MIN_DRAWS", 0)
    monkeypatch.setattr(ldp_module, "_MIN_TASK_DRAWS", 1)
    rng = np.random.default_rng(3)
    n, d, k, block, first_id = 150, 3, 2, 16, 7
    X = 2.0 * rng.standard_normal((n, d))
    y = 3.0 * rng.standard_normal(n)
    # oracle: the rows prepared with NumPy, then the kernel without any preparation
    xt = np.clip(X, -1.25, 1.25)
    if intercept is not None:
        xt = np.hstack([xt, np.full((n, 1), intercept)])
    if not outer:
        xt = xt * np.clip(y, -2.0, 2.0)[:, None]
    de = xt.shape[1]
    args = (11, 0, block, k, _bound(de, outer, tau=1.2), 0.9, grid_unit(10.0), outer)  # ball active
    ref = keyed_gaussian_report_sums(xt, first_id, *args)
    opts = {"clip_X": 1.25, "intercept": intercept}
    if not outer:
        opts.update(y=y, clip_y=2.0)
    for threads in (1, 2):
        got = keyed_gaussian_report_sums(X, first_id, *args, n_threads=threads, **opts)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
    with force_backend("generic"):
        gen = keyed_gaussian_report_sums(X, first_id, *args, **opts)
    np.testing.assert_array_equal(gen[0], ref[0])
    np.testing.assert_array_equal(gen[1], ref[1])


def test_keyed_sums_fall_back_and_refuse_like_the_generic_path(monkeypatch):
    monkeypatch.setattr(ldp_module, "_COMPILED_MIN_DRAWS", 0)
    X = np.array([[1.0, 2.0], [0.5, -1.0], [1.0, 1.0]]) * 1e30  # q ~ 2**150 with no clipping
    args = (0, 7, 0, 4, 1, 1e31, 1.0, grid_unit(1.0), False)
    with pytest.raises(OverflowError):
        keyed_gaussian_report_sums(X, *args)
    X_big = np.array([[1.0, 2.0], [0.5, -1.0], [1.0, 1.0]]) * 2.0**35  # q ~ 2**85: fallback
    fast = keyed_gaussian_report_sums(X_big, *args)
    with force_backend("generic"):
        slow = keyed_gaussian_report_sums(X_big, *args)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    hi, lo = keyed_gaussian_report_sums(np.zeros((0, 2)), *args)
    assert hi.shape == (1, 2) and not hi.any() and not lo.any()


def test_small_batches_take_the_generic_path(monkeypatch):
    """Below the threshold nothing is compiled; above it the compiled kernel gives the same."""
    calls = []
    monkeypatch.setattr(ldp_module, "_keyed_sums_impl", lambda *a: calls.append(a))
    X = np.random.default_rng(0).uniform(-1, 1, (40, 3))
    args = (0, 3, 0, 16, 2, 3.0, 1.0, grid_unit(1.0), True)
    small = keyed_gaussian_report_sums(X, *args)
    assert not calls
    with force_backend("generic"):
        ref = keyed_gaussian_report_sums(X, *args)
    np.testing.assert_array_equal(small[0], ref[0])
    np.testing.assert_array_equal(small[1], ref[1])
    monkeypatch.setattr(ldp_module, "_COMPILED_MIN_DRAWS", 40 * 6)
    keyed_gaussian_report_sums(X, *args)
    assert calls


def test_generic_aggregation_runs_on_array_api_strict():
    """The generic (array-API) path of the LDP aggregation, on array_api_strict, equals the
    NumPy / Numba path: reports, exact per-fold sums (the same integers), keyed sums, the
    floored solve and the discrete mechanisms' output kernels."""
    xp = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(7)
    X = rng.standard_normal((40, 4))
    y = rng.standard_normal(40)
    z = rng.standard_normal((40, 10))
    folds = np.arange(40) % 3
    args = (3.0, 0.7, grid_unit(3.0), True)
    ref = gaussian_reports(X, z, *args)
    got = gaussian_reports(xp.asarray(X), xp.asarray(z), *args)
    np.testing.assert_array_equal(np.asarray(got), ref)
    h_ref, l_ref = gaussian_report_sums(X, z, folds, 3, *args)
    h, l = gaussian_report_sums(xp.asarray(X), xp.asarray(z), xp.asarray(folds), 3, *args)
    np.testing.assert_array_equal(np.asarray(h), h_ref)
    np.testing.assert_array_equal(np.asarray(l), l_ref)
    unit = grid_unit(2.0)
    h_ref, l_ref = keyed_gaussian_report_sums(
        X, 5, 11, 1, 64, 3, 2.0, 0.5, unit, False, y=y, clip_X=1.0, clip_y=1.5, intercept=1.0
    )
    h, l = keyed_gaussian_report_sums(
        xp.asarray(X), 5, 11, 1, 64, 3, 2.0, 0.5, unit, False,
        y=xp.asarray(y), clip_X=1.0, clip_y=1.5, intercept=1.0,
    )  # fmt: skip
    np.testing.assert_array_equal(np.asarray(h), h_ref)
    np.testing.assert_array_equal(np.asarray(l), l_ref)
    np.testing.assert_array_equal(
        np.asarray(exact_to_float(h, l, unit)), exact_to_float(h_ref, l_ref, unit)
    )
    A = rng.standard_normal((5, 5))
    b = rng.standard_normal(5)
    theta_ref, norm_ref = floored_solve(A + A.T, b, 0.3)
    theta, norm = floored_solve(xp.asarray(A + A.T), xp.asarray(b), 0.3)
    np.testing.assert_allclose(np.asarray(theta), theta_ref, rtol=1e-12, atol=1e-12)
    assert norm == pytest.approx(norm_ref, rel=1e-12)
    V = np.where(rng.random((6, 5)) < 0.5, 1.0, -1.0)
    signs = np.where(rng.random((6, 5)) < 0.5, 1.0, -1.0)
    keep = rng.random(6) < 0.7
    np.testing.assert_array_equal(
        np.asarray(duchi_core(xp.asarray(V), xp.asarray(keep), xp.asarray(signs))),
        duchi_core(V, keep, signs),
    )
