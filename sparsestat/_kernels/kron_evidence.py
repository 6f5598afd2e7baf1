"""Marginal-likelihood (evidence) kernels for Kronecker-structured SBL: the cost of a prior and
the exact change of that cost when one factor entry's variance is changed.

The model is ``y = (A_1 kron ... kron A_I) x + n`` with ``x ~ N(0, kron g_i)``,
``n ~ N(0, sigma2 I)`` (circular complex Gaussian for complex data). The SBL cost (negative log
evidence up to constants) is ``L(g) = log|C| + tr(Y^H C^{-1} Y) / n_cols`` with
``C = sigma2 I + kron B_i``, ``B_i = A_i diag(g_i) A_i^H = U_i diag(p_i) U_i^H``.

Setting entry ``j`` of factor ``i`` to the variance ``s`` changes ``B_i`` by a rank-one term.
In the eigenbasis of the *other* factors, ``kron_{k != i} U_k``, the matrix ``C`` is block
diagonal with one ``M_i x M_i`` block per eigen-index ``m`` of the other factors, and the
change is rank one within each block (scaled by ``P_m = prod_{k != i} p_k[m_k]``). So::

    L(s) - L(0) = sum_m log(1 + s lam_m) - s Q_m / (1 + s lam_m)

with ``lam_m = P_m v^H D_m v`` and ``Q_m = P_m |v^H D_m z_m|^2 / n_cols`` (``v`` the column
in the basis of factor ``i`` without entry ``j``, ``D_m`` the inverse block eigenvalues, ``z_m``
the rotated data). This is the Kronecker form of Tipping and Faul's "sparsity" and
"quality" factors: every entry of every factor is scored in ``O(N_i M)`` operations, and no
``M x N`` or ``N x N`` array is formed.

References
----------
M. E. Tipping and A. C. Faul, "Fast marginal likelihood maximisation for sparse Bayesian
models", AISTATS 2003.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparsestat._kernels._dispatch import get_namespace

__all__ = [
    "KronEigen",
    "entry_gains",
    "kron_eigen",
    "minimise_slice_cost",
    "noise_variance_ml",
]

_TINY = 1e-300


def _ct(xp: Any, a: Any) -> Any:
    """Conjugate transpose of the last two axes (plain transpose for real arrays)."""
    at = xp.swapaxes(a, -1, -2) if a.ndim > 2 else a.T
    return xp.conj(at) if xp.isdtype(a.dtype, "complex floating") else at


def _abs2(xp: Any, a: Any) -> Any:
    if xp.isdtype(a.dtype, "complex floating"):
        return xp.real(a * xp.conj(a))
    return a * a


def _mode(xp: Any, mat: Any, t: Any, axis: int) -> Any:
    """Multiply tensor ``t`` by ``mat`` along ``axis`` (``mat`` is ``(m_new, m_old)``)."""
    t = xp.moveaxis(t, axis, 0)
    shape = t.shape
    out = mat @ xp.reshape(t, (int(shape[0]), -1))
    return xp.moveaxis(xp.reshape(out, (int(mat.shape[0]), *shape[1:])), 0, axis)


@dataclass
class KronEigen:
    """Eigen form of ``C = sigma2 I + kron B_i`` and the rotated data.

    ``us[i]`` are the eigenvectors of ``B_i`` (columns), ``ps[i]`` its eigenvalues (clipped
    at 0), ``s`` the eigenvalues of ``C`` as a tensor ``(M_1, ..., M_I)`` and ``z`` the rotated
    data ``(kron U_i^H) Y`` as a tensor ``(M_1, ..., M_I, L)``.
    """

    us: list[Any]
    ps: list[Any]
    s: Any
    z: Any
    noise_var: float

    @property
    def cost(self) -> float:
        """``log|C| + tr(Y^H C^{-1} Y) / L``."""
        xp = get_namespace(self.s)
        n_cols = int(self.z.shape[-1])
        quad = float(xp.sum(_abs2(xp, self.z) / self.s[..., None]))
        return float(xp.sum(xp.log(self.s))) + quad / n_cols


def _factor_eig(xp: Any, a: Any, g: Any) -> tuple[Any, Any]:
    gc = xp.astype(g, a.dtype)
    b = (a * gc[None, :]) @ _ct(xp, a)
    b = (b + _ct(xp, b)) / 2
    p, u = xp.linalg.eigh(b)
    return xp.clip(p, min=0.0), u


def _outer(xp: Any, vectors: Sequence[Any]) -> Any:
    """Outer product tensor of 1-D arrays."""
    out = vectors[0]
    for v in vectors[1:]:
        out = out[..., None] * v
    return out


def kron_eigen(factors: Sequence[Any], gammas: Sequence[Any], noise_var: float, Y: Any) -> KronEigen:
    """Per-factor Hermitian eigendecompositions, the eigenvalues of ``C`` and the rotated data.

    ``factors[i]`` is ``(M_i, N_i)``, ``gammas[i]`` ``(N_i,)`` real and non-negative (zeros are
    entries out of the model), ``Y`` is ``(M, L)``. Cost ``O(sum M_i^2 N_i + M L sum M_i)``.
    """
    xp = get_namespace(Y, *factors)
    us, ps = [], []
    for a, g in zip(factors, gammas):
        p, u = _factor_eig(xp, a, g)
        us.append(u)
        ps.append(p)
    s = noise_var + _outer(xp, ps)
    shape = tuple(int(a.shape[0]) for a in factors)
    z = xp.reshape(Y, (*shape, int(Y.shape[1])))
    for i, u in enumerate(us):
        z = _mode(xp, _ct(xp, u), z, i)
    return KronEigen(us=us, ps=ps, s=s, z=z, noise_var=float(noise_var))


def entry_gains(
    factors: Sequence[Any],
    gammas: Sequence[Any],
    eig: KronEigen,
    Y: Any,
    i: int,
) -> tuple[Any, Any]:
    """``lam`` and ``Q`` of every entry of factor ``i``, each against the model without it.

    Returns two real arrays of shape ``(N_i, M / M_i)``: with them
    ``L(g with g_i[j] = s) - L(g with g_i[j] = 0) = sum_m log(1 + s lam[j, m])
    - s Q[j, m] / (1 + s lam[j, m])`` exactly (see the module docstring). Entries out of the
    model (``g_i[j] = 0``) use the current eigen form; entries in it use the eigen form of
    ``B_i - g_i[j] a_j a_j^H`` (a batch of ``M_i x M_i`` Hermitian eigendecompositions).
    Cost ``O(N_i (M_i^3 + M L))``.
    """
    xp = get_namespace(Y, *factors)
    a = factors[i]
    g = gammas[i]
    m_i, n_i = int(a.shape[0]), int(a.shape[1])
    n_cols = int(Y.shape[1])
    shape = tuple(int(f.shape[0]) for f in factors)
    others = [p for k, p in enumerate(eig.ps) if k != i]
    p_rest = xp.reshape(_outer(xp, others), (-1,)) if others else xp.ones(1, dtype=eig.s.dtype)
    # data rotated on every axis except i, then axis i first: (M_i, M / M_i * L)
    t = xp.reshape(Y, (*shape, n_cols))
    for k, u in enumerate(eig.us):
        if k != i:
            t = _mode(xp, _ct(xp, u), t, k)
    t = xp.reshape(xp.moveaxis(t, i, 0), (m_i, -1))
    # per-entry "leave-one-out" factor matrices B_i^(-j) = B_i - g_j a_j a_j^H (batch)
    gc = xp.astype(g, a.dtype)
    b = (a * gc[None, :]) @ _ct(xp, a)
    b = (b + _ct(xp, b)) / 2
    outer_cols = a.T[:, :, None] * xp.conj(a.T)[:, None, :] if xp.isdtype(
        a.dtype, "complex floating"
    ) else a.T[:, :, None] * a.T[:, None, :]
    bj = b[None, :, :] - gc[:, None, None] * outer_cols  # (N_i, M_i, M_i)
    bj = (bj + _ct(xp, bj)) / 2
    pj, uj = xp.linalg.eigh(bj)
    pj = xp.clip(pj, min=0.0)  # (N_i, M_i)
    # v_j = U_j^H a_j : (N_i, M_i)
    v = xp.sum(xp.conj(uj) * a.T[:, :, None], axis=1) if xp.isdtype(
        a.dtype, "complex floating"
    ) else xp.sum(uj * a.T[:, :, None], axis=1)
    # z_j = U_j^H t : (N_i, M_i, M/M_i * L)
    zj = _ct(xp, uj) @ t[None, :, :]
    zj = xp.reshape(zj, (n_i, m_i, -1, n_cols))
    dj = 1.0 / (eig.noise_var + pj[:, :, None] * p_rest[None, None, :])  # (N_i, M_i, M/M_i)
    v2 = _abs2(xp, v)
    dtil = xp.sum(v2[:, :, None] * dj, axis=1)  # (N_i, M/M_i)
    wdz = xp.astype(dj, zj.dtype)[..., None] * zj
    e = xp.sum(xp.conj(v)[:, :, None, None] * wdz, axis=1)  # (N_i, M/M_i, L)
    lam = dtil * p_rest[None, :]
    q = p_rest[None, :] * xp.sum(_abs2(xp, e), axis=-1) / n_cols
    return lam, q


def _slice_cost(xp: Any, s: Any, lam: Any, q: Any) -> Any:
    """``sum_m log(1 + s lam) - s q / (1 + s lam)`` for ``s`` of shape (J, K), lam/q (J, Mr)."""
    x = s[:, :, None] * lam[:, None, :]
    return xp.sum(xp.log1p(x) - s[:, :, None] * q[:, None, :] / (1.0 + x), axis=-1)


def minimise_slice_cost(lam: Any, q: Any, n_grid: int = 33, n_newton: int = 12) -> tuple[Any, Any]:
    """Global minimiser over ``s >= 0`` of ``f(s) = sum_m log(1 + s lam_m) - s q_m / (1 + s lam_m)``.

    Rows are independent problems (``lam``, ``q`` of shape ``(J, Mr)``). ``f(0) = 0``; ``f``
    need not be convex, so a logarithmic grid from ``s = 1e-4 / max lam`` to ten times the
    largest single-term minimiser bound ``q / lam^2`` is searched, then refined by safeguarded
    Newton steps on ``log s`` inside the bracket of the grid neighbours. Returns
    ``(s_best, f_best)``; ``s_best = 0`` (with ``f_best = 0``) where no positive ``s``
    lowers ``f``.
    """
    xp = get_namespace(lam, q)
    lam_max = xp.max(lam, axis=1)
    ok = lam_max > 0
    lam_safe = xp.where(ok, lam_max, xp.ones_like(lam_max))
    # a single term is minimised at s = (q - lam) / lam^2 < q / lam^2: search s lam_max from
    # 1e-4 up to 10 lam_max max(q / lam^2) (terms with lam below 1e-12 lam_max are ignored)
    sig = lam > 1e-12 * lam_max[:, None]
    lam_sig = xp.where(sig, lam, xp.ones_like(lam))
    ratio = xp.max(xp.where(sig, q / lam_sig**2, xp.zeros_like(lam)), axis=1) * lam_safe
    hi = xp.log(xp.clip(ratio, min=1.0) * 10.0)
    lo = math.log(1e-4) * xp.ones_like(hi)
    steps = xp.asarray(np.linspace(0.0, 1.0, n_grid), dtype=lam.dtype)
    logx = lo[:, None] + (hi - lo)[:, None] * steps[None, :]  # log(s lam_max)
    s = xp.exp(logx) / lam_safe[:, None]
    f = _slice_cost(xp, s, lam, q)
    k = xp.argmin(f, axis=1)
    rows = xp.arange(int(lam.shape[0]))
    a_ = logx[rows, xp.clip(k - 1, min=0)]
    b_ = logx[rows, xp.clip(k + 1, max=n_grid - 1)]
    u = logx[rows, k]
    f_grid = f[rows, k]
    for _ in range(n_newton):
        # derivatives of f(exp(u) / lam_max) in u
        sv = xp.exp(u) / lam_safe
        x = sv[:, None] * lam
        den = 1.0 + x
        fs = xp.sum(lam / den - q / den**2, axis=1)
        fss = xp.sum(-(lam**2) / den**2 + 2.0 * q * lam / den**3, axis=1)
        g1 = sv * fs
        g2 = sv * fs + sv * sv * fss
        step = xp.where(g2 > 0, -g1 / xp.where(g2 > 0, g2, xp.ones_like(g2)), -xp.sign(g1))
        u_new = u + step
        inside = ((u_new > a_) & (u_new < b_)) | (xp.abs(step) < 1e-12)
        u_new = xp.where(inside, u_new, xp.where(g1 > 0, (a_ + u) / 2, (u + b_) / 2))
        b_ = xp.where(g1 > 0, u, b_)
        a_ = xp.where(g1 > 0, a_, u)
        u = u_new
    s_new = xp.exp(u) / lam_safe
    f_new = _slice_cost(xp, s_new[:, None], lam, q)[:, 0]
    use_grid = f_grid < f_new
    s_best = xp.where(use_grid, s[rows, k], s_new)
    f_best = xp.where(use_grid, f_grid, f_new)
    keep = (f_best < 0) & ok
    zero = xp.zeros_like(s_best)
    return xp.where(keep, s_best, zero), xp.where(keep, f_best, zero)


def slice_cost_at(lam: Any, q: Any, s: Any) -> Any:
    """``f(s)`` of :func:`minimise_slice_cost` at given ``s`` (one value per row)."""
    xp = get_namespace(lam, q)
    return _slice_cost(xp, s[:, None], lam, q)[:, 0]


def noise_variance_ml(eig: KronEigen, floor: float, n_iter: int = 60) -> float:
    """Noise variance maximising the evidence with the signal part of ``C`` fixed.

    ``C``'s eigenvectors do not depend on ``sigma2``, so the cost is
    ``sum_m log(sigma2 + P_m) + w_m / (sigma2 + P_m)`` with ``w_m = sum_l |z_ml|^2 / L``:
    one-dimensional, minimised by golden-section search on ``log sigma2``.
    """
    xp = get_namespace(eig.s)
    pr = xp.reshape(eig.s - eig.noise_var, (-1,))
    pr = xp.clip(pr, min=0.0)
    w = xp.reshape(xp.sum(_abs2(xp, eig.z), axis=-1), (-1,)) / int(eig.z.shape[-1])
    top = float(xp.max(w)) + float(xp.max(pr))
    lo, hi = math.log(max(floor, _TINY)), math.log(max(top, floor * 10, _TINY))

    def f(lv: float) -> float:
        v = pr + math.exp(lv)
        return float(xp.sum(xp.log(v) + w / v))

    invphi = (math.sqrt(5) - 1) / 2
    a_, b_ = lo, hi
    c_, d_ = b_ - invphi * (b_ - a_), a_ + invphi * (b_ - a_)
    fc, fd = f(c_), f(d_)
    for _ in range(n_iter):
        if fc < fd:
            b_, d_, fd = d_, c_, fc
            c_ = b_ - invphi * (b_ - a_)
            fc = f(c_)
        else:
            a_, c_, fc = c_, d_, fd
            d_ = a_ + invphi * (b_ - a_)
            fd = f(d_)
    return max(math.exp((a_ + b_) / 2), floor)
