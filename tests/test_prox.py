"""Prox operators against an independent brute-force minimiser, closed-form thresholds,
and every Numba kernel against its generic array-API twin (also on torch CPU tensors)."""

from __future__ import annotations

import numpy as np
import pytest

from sparsestat._kernels import prox as P
from sparsestat._kernels._dispatch import force_backend, registered

N_POINTS = 10_000


# --------------------------------------------------------------------------- brute force
def _b(p, x):
    """Broadcast a per-point parameter of shape (n,) against x of shape (n,) or (n, m)."""
    p = np.asarray(p, dtype=float)
    return p if p.ndim == 0 else p.reshape(p.shape + (1,) * (x.ndim - 1))


def _penalty_and_derivative(name, t=None, q=None, alpha=None, gamma=None, a=None):
    """h(x) and h'(x) for x >= 0 (all penalties are even), written from their definitions."""
    if name == "l1":
        return (lambda x: _b(t, x) * x), (lambda x: _b(t, x) + 0 * x)
    if name == "l0":
        return (lambda x: _b(t, x) * (x != 0)), (lambda x: 0 * x)
    if name in ("l1/2", "lq"):
        qq = 0.5 if name == "l1/2" else q
        return (lambda x: _b(t, x) * x**qq), (lambda x: _b(t, x) * qq * x ** (qq - 1))
    if name == "cel0":

        def h(x):
            al, ga, aa = _b(alpha, x), _b(gamma, x), _b(a, x)
            r = np.sqrt(2 * al)
            return ga * np.where(aa * x <= r, al - 0.5 * aa**2 * (x - r / aa) ** 2, al)

        def dh(x):
            al, ga, aa = _b(alpha, x), _b(gamma, x), _b(a, x)
            r = np.sqrt(2 * al)
            return ga * np.where(aa * x <= r, -(aa**2) * (x - r / aa), 0.0)

        return h, dh
    raise ValueError(name)


def brute_prox(z, name, **kw):
    """Global minimiser of 1/2 (x - |z|)^2 + h(x) over x in [0, |z|], then sign restored.

    Vectorised over the entries of ``z`` (parameters broadcast against it). Stationary points
    on (0, |z|] are located on a 4001-point grid of the derivative and refined by 80 steps of
    bisection; each is compared with x = 0 and x = |z| by objective value. Returns the
    minimiser and a mask of near-ties between two distinct candidates (left unchecked).
    """
    h, dh = _penalty_and_derivative(name, **kw)
    az = np.abs(z)[:, None]
    grid = az * np.linspace(1e-9, 1.0, 4001)[None, :]
    d = grid - az + dh(grid)
    cross = (d[:, :-1] < 0) & (d[:, 1:] >= 0)
    has = cross.any(axis=1)
    i = np.argmax(cross, axis=1)
    rows = np.arange(len(z))
    lo, hi = grid[rows, i], grid[rows, np.minimum(i + 1, grid.shape[1] - 1)]
    a1 = az[:, 0]

    def dF(x):
        return x - a1 + dh(x)

    for _ in range(80):
        mid = 0.5 * (lo + hi)
        neg = dF(mid) < 0
        lo = np.where(neg, mid, lo)
        hi = np.where(neg, hi, mid)
    root = np.where(has, 0.5 * (lo + hi), a1)
    cands = np.stack([np.zeros_like(a1), root, a1], axis=1)
    vals = 0.5 * (cands - a1[:, None]) ** 2 + h(cands)
    order = np.argsort(vals, axis=1)
    best = cands[rows, order[:, 0]]
    second = cands[rows, order[:, 1]]
    gap = vals[rows, order[:, 1]] - vals[rows, order[:, 0]]
    ambiguous = (gap < 1e-9) & (np.abs(second - best) > 1e-6)
    return np.copysign(best, z), ambiguous


def _random_problem(rng, name):
    z = rng.standard_normal(N_POINTS) * rng.choice([0.3, 1.0, 4.0], N_POINTS)
    if name == "cel0":
        alpha = rng.uniform(0.01, 2.0, N_POINTS)
        gamma = rng.uniform(0.05, 2.0, N_POINTS)
        a = rng.uniform(0.2, 1.5, N_POINTS)
        return z, {"alpha": alpha, "gamma": gamma, "a": a}
    t = rng.uniform(0.01, 2.0, N_POINTS)
    kw = {"t": t}
    if name == "lq":
        kw["q"] = rng.choice([0.2, 0.5, 2 / 3, 0.9])
    return z, kw


def _ours(name, z, kw):
    if name == "l1":
        return P.prox_l1(z, kw["t"])
    if name == "l0":
        return P.prox_l0(z, kw["t"])
    if name == "l1/2":
        return P.prox_l1_2(z, kw["t"])
    if name == "lq":
        return P.prox_lq(z, kw["t"], kw["q"])
    return P.prox_cel0(z, kw["alpha"], kw["gamma"], kw["a"])


@pytest.mark.parametrize("name", ["l1", "l0", "l1/2", "lq", "cel0"])
def test_prox_equals_brute_force_minimiser(name):
    rng = np.random.default_rng(["l1", "l0", "l1/2", "lq", "cel0"].index(name))
    z, kw = _random_problem(rng, name)
    ours = _ours(name, z, kw)
    ref, ambiguous = brute_prox(z, name, **kw)
    err = np.abs(ours - ref) / np.maximum(1.0, np.abs(z))
    assert ambiguous.mean() < 0.01
    worst = int(np.argmax(np.where(ambiguous, 0.0, err)))
    assert err[~ambiguous].max() <= 1e-8, (name, z[worst], ours[worst], ref[worst])


def test_half_threshold_closed_form():
    t = np.array([0.01, 0.3, 1.0, 5.0])
    thr = 1.5 * t ** (2 / 3)
    assert np.all(P.prox_l1_2(thr * (1 - 1e-9), t) == 0)
    assert np.all(P.prox_l1_2(thr * (1 + 1e-9), t) > 0)
    # Xu et al.'s printed constant for min (x - z)^2 + lam |x|^(1/2) with lam = 2t
    assert np.allclose(thr, (54 ** (1 / 3) / 4) * (2 * t) ** (2 / 3))


def test_lq_threshold_and_jump():
    for q in (0.2, 0.5, 0.8):
        t = 0.7
        tau, jump = P.lq_threshold(t, q)
        above = P.prox_lq(np.array([tau * (1 + 1e-9)]), t, q)[0]
        assert P.prox_lq(np.array([tau * (1 - 1e-9)]), t, q)[0] == 0
        assert above >= jump * (1 - 1e-6)
        assert above == pytest.approx(jump, rel=1e-3)
    # q = 2/3 threshold 2 (2t/3)^(3/4), as in skglm's prox_2_3
    tau, _ = P.lq_threshold(0.7, 2 / 3)
    assert tau == pytest.approx(2 * (2 * 0.7 / 3) ** 0.75, rel=1e-12)


def test_l0_threshold_ties_go_to_zero():
    t = np.array([0.5, 2.0])
    thr = np.sqrt(2 * t)
    assert np.all(P.prox_l0(thr, t) == 0)
    assert np.all(P.prox_l0(np.nextafter(thr, np.inf), t) > 0)


def test_cel0_hard_branch():
    rng = np.random.default_rng(1)
    z = rng.standard_normal(1000) * 3
    alpha, gamma, a = 0.4, 1.5, 1.0  # gamma a^2 >= 1
    assert np.array_equal(P.prox_cel0(z, alpha, gamma, a), P.prox_l0(z, alpha * gamma))


def test_cel0_with_zero_atom_norm_is_identity():
    z = np.array([-2.0, 0.3, 5.0])
    assert np.array_equal(P.prox_cel0(z, 1.0, 0.5, 0.0), z)


@pytest.mark.parametrize(
    "fn",
    [
        lambda z: P.prox_l1(z, 0.7),
        lambda z: P.prox_l0(z, 0.7),
        lambda z: P.prox_l1_2(z, 0.7),
        lambda z: P.prox_lq(z, 0.7, 0.3),
        lambda z: P.prox_cel0(z, 0.7, 0.5, 1.2),
    ],
)
def test_prox_odd_and_monotone(fn):
    z = np.linspace(-6, 6, 20001)
    x = fn(z)
    assert np.array_equal(fn(-z), -x)
    assert np.all(np.diff(x) >= -1e-15)
    assert np.all(np.abs(x) <= np.abs(z))


def test_lq_one_is_soft_and_half_is_half():
    z = np.random.default_rng(2).standard_normal(500) * 3
    assert np.allclose(P.prox_lq(z, 0.5, 1.0), P.prox_l1(z, 0.5))
    assert np.allclose(P.prox_lq(z, 0.5, 0.5), P.prox_l1_2(z, 0.5), atol=1e-13)


def test_group_prox_matches_brute_force():
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    groups = np.array([0, 0, 1, 1, 1, 2])
    for _ in range(20):
        z = rng.standard_normal(6) * 2
        t = rng.uniform(0.1, 2.0)
        ours = P.prox_group_l1(z, t, groups)

        def F(x, z=z, t=t):
            return 0.5 * np.sum((x - z) ** 2) + t * sum(
                np.linalg.norm(x[groups == g]) for g in range(3)
            )

        ref = minimize(F, z, method="Powell", options={"xtol": 1e-12, "ftol": 1e-15}).x
        assert F(ours) <= F(ref) + 1e-9


def test_topk_keeps_exactly_k():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((50, 20))
    z[0, :5] = 1.0  # ties
    for k in (0, 1, 5, 20, 25):
        for fn in (P.project_topk, P.project_abs_topk):
            out = fn(z, k)
            assert np.all((out != 0).sum(axis=1) == min(k, 20))
            assert np.all((out == z) | (out == 0))
    top = P.project_topk(z, 3)
    kept_min = np.where(top != 0, z, np.inf).min(axis=1)
    dropped_max = np.where(top == 0, z, -np.inf).max(axis=1)
    assert np.all(kept_min >= dropped_max)


def test_topk_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        P.project_topk(np.ones(3), -1)
    with pytest.raises(ValueError, match="k must be"):
        P.project_abs_topk(np.ones(3), 1.5)


def test_real_only_operators_reject_complex():
    with pytest.raises(TypeError, match="real input"):
        P.prox_l1_2(np.ones(2) * 1j, 1.0)


# --------------------------------------------------------------------------- Numba vs generic
_CASES = {
    "prox_l1": (lambda z, m: P.prox_l1(z, m.uniform(0.1, 1, z.shape)), True),
    "prox_l0": (lambda z, m: P.prox_l0(z, 0.4), True),
    "prox_l1_2": (lambda z, m: P.prox_l1_2(z, m.uniform(0.1, 1, z.shape[-1])), False),
    "prox_lq": (lambda z, m: P.prox_lq(z, 0.6, 0.3), False),
    "prox_cel0": (lambda z, m: P.prox_cel0(z, 0.5, 0.7, m.uniform(0.5, 1.5, z.shape[-1])), False),
    "prox_group_l1": (lambda z, m: P.prox_group_l1(z, 0.8, np.arange(z.shape[-1]) // 3), True),
    "project_topk": (lambda z, m: P.project_topk(z, 4), False),
    "project_abs_topk": (lambda z, m: P.project_abs_topk(z, 4), True),
}


def test_every_prox_kernel_has_numba_and_generic_versions():
    reg = registered()
    for name in _CASES:
        assert set(reg[name]) >= {"generic", "numba"}, name


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        (name, dtype)
        for name, (_, complex_ok) in sorted(_CASES.items())
        for dtype in (np.float64, np.float32) + ((np.complex128,) if complex_ok else ())
    ],
)
def test_numba_equals_generic(name, dtype):
    fn, _ = _CASES[name]
    rng = np.random.default_rng(5)
    z = (rng.standard_normal((30, 12)) * 2).astype(dtype)
    if np.dtype(dtype).kind == "c":
        z = z + 1j * rng.standard_normal(z.shape)
    z_before = z.copy()
    fast = fn(z, np.random.default_rng(6))
    with force_backend("generic"):
        slow = fn(z, np.random.default_rng(6))
    assert np.array_equal(z, z_before)  # inputs never modified
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fast, slow, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name", sorted(_CASES))
def test_generic_path_on_torch_tensors(name):
    torch = pytest.importorskip("torch")
    fn, _ = _CASES[name]
    rng = np.random.default_rng(7)
    z = rng.standard_normal((10, 9))
    expected = fn(z, np.random.default_rng(8))
    params_rng = np.random.default_rng(8)
    zt = torch.tensor(z)
    # parameters drawn as NumPy arrays are converted to torch for the torch call
    if name in ("prox_l1", "prox_l1_2", "prox_cel0"):
        draw = {
            "prox_l1": lambda: params_rng.uniform(0.1, 1, z.shape),
            "prox_l1_2": lambda: params_rng.uniform(0.1, 1, z.shape[-1]),
            "prox_cel0": lambda: params_rng.uniform(0.5, 1.5, z.shape[-1]),
        }[name]
        p = torch.tensor(draw())
        out = {
            "prox_l1": lambda: P.prox_l1(zt, p),
            "prox_l1_2": lambda: P.prox_l1_2(zt, p),
            "prox_cel0": lambda: P.prox_cel0(zt, 0.5, 0.7, p),
        }[name]()
    else:
        out = fn(zt, params_rng)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------ specialised Numba loops vs the generic code
_FAST_PATHS = {
    # one threshold for the whole array (hoisted, branch-free loops)
    "l1 scalar t": (lambda z, m: P.prox_l1(z, 0.5), True),
    "l0 scalar t": (lambda z, m: P.prox_l0(z, 0.5), True),
    "half scalar t": (lambda z, m: P.prox_l1_2(z, 0.5), False),
    "cel0 scalar, soft branch": (lambda z, m: P.prox_cel0(z, 0.5, 0.7, 1.1), False),
    "cel0 scalar, hard branch": (lambda z, m: P.prox_cel0(z, 0.5, 1.0, 1.2), False),
    "lq scalar t": (lambda z, m: P.prox_lq(z, 0.4, 0.7), False),
    # per-entry parameters (the general loops)
    "lq array t": (lambda z, m: P.prox_lq(z, m.uniform(0.1, 1, z.shape), 0.3), False),
    "l0 array t": (lambda z, m: P.prox_l0(z, m.uniform(0.1, 1, z.shape)), True),
    # groups that are not contiguous runs, and a large k (partition instead of a buffer)
    "group shuffled": (
        lambda z, m: P.prox_group_l1(z, 0.8, m.permutation(np.arange(z.shape[-1]) // 3)),
        True,
    ),
    "abs top-k large k": (lambda z, m: P.project_abs_topk(np.tile(z, (1, 8)), 70), True),
    "top-k large k": (lambda z, m: P.project_topk(np.tile(z, (1, 8)), 70), False),
}


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        (name, dtype)
        for name, (_, complex_ok) in sorted(_FAST_PATHS.items())
        for dtype in (np.float64, np.float32) + ((np.complex128,) if complex_ok else ())
    ],
)
def test_specialised_loops_equal_generic(name, dtype):
    fn, _ = _FAST_PATHS[name]
    rng = np.random.default_rng(9)
    z = (rng.standard_normal((30, 12)) * 2).astype(dtype)
    if np.dtype(dtype).kind == "c":
        z = z + 1j * rng.standard_normal(z.shape)
    z[0, :3] = [0.0, -0.0, np.sqrt(2 * 0.5)]  # zeros and an exact l0 tie
    fast = fn(z, np.random.default_rng(10))
    with force_backend("generic"):
        slow = fn(z, np.random.default_rng(10))
    assert fast.dtype == slow.dtype == z.dtype
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fast, slow, rtol=rtol, atol=rtol)


_STRICT_CALLS = {
    "prox_l1": lambda z: P.prox_l1(z, 0.5),
    "prox_l0": lambda z: P.prox_l0(z, 0.5),
    "prox_l1_2": lambda z: P.prox_l1_2(z, 0.5),
    "prox_lq": lambda z: P.prox_lq(z, 0.5, 0.3),
    "prox_cel0": lambda z: P.prox_cel0(z, 0.5, 0.7, 1.1),
    "prox_cel0 hard": lambda z: P.prox_cel0(z, 0.5, 1.0, 1.2),
    "prox_group_l1": lambda z: P.prox_group_l1(z, 0.8, np.arange(z.shape[-1]) // 3),
    "project_topk": lambda z: P.project_topk(z, 4),
    "project_abs_topk": lambda z: P.project_abs_topk(z, 4),
}


@pytest.mark.parametrize("name", sorted(_STRICT_CALLS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_generic_path_on_array_api_strict(name, dtype):
    """The GPU code path (generic array API) on array-api-strict equals the Numba path."""
    xp = pytest.importorskip("array_api_strict")
    z = (np.random.default_rng(11).standard_normal((10, 9)) * 2).astype(dtype)
    expected = _STRICT_CALLS[name](z)
    out = _STRICT_CALLS[name](xp.asarray(z))
    assert type(out) is type(xp.asarray(z)) and out.dtype == getattr(xp, dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(np.asarray(out), expected, rtol=tol, atol=tol)
