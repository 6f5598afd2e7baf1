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

from sparsestat._kernels._dispatch import get_namespace, to_numpy

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
    """Eigenvalues (clipped at 0) and eigenvectors of ``A diag(g) A^H`` (entries with g > 0)."""
    nz = xp.nonzero(g > 0)[0]
    a, g = xp.take(a, nz, axis=1), xp.take(g, nz, axis=0)
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


def kron_eigen(
    factors: Sequence[Any], gammas: Sequence[Any], noise_var: float, Y: Any
) -> KronEigen:
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
    i: int,
) -> tuple[Any, Any]:
    """``lam`` and ``Q`` of every entry of factor ``i``, each against the model without it.

    Returns two real arrays of shape ``(N_i, K)``, ``K <= M / M_i`` the number of blocks
    where the other factors' eigenvalue product is positive (the others contribute
    nothing): with them
    ``L(g with g_i[j] = s) - L(g with g_i[j] = 0) = sum_m log(1 + s lam[j, m])
    - s Q[j, m] / (1 + s lam[j, m])`` exactly (see the module docstring). The values are
    first computed against the current model (``S`` and the projected data, Tipping and
    Faul's "in-model" factors), then, for entries in the model (``g_i[j] > 0``), the entry
    is taken out block by block by the Sherman-Morrison identity ``lam = S / (1 - g S)``,
    ``e = e_in / (1 - g S)``. Cost ``O(N_i M L)``.
    """
    xp = get_namespace(eig.s, *factors)
    a = factors[i]
    g = gammas[i]
    n_cols = int(eig.z.shape[-1])
    others = [p for k, p in enumerate(eig.ps) if k != i]
    p_rest = xp.reshape(_outer(xp, others), (-1,)) if others else xp.ones(1, dtype=eig.s.dtype)
    m_i = int(a.shape[0])
    d = xp.reshape(xp.moveaxis(1.0 / eig.s, i, 0), (m_i, -1))  # (M_i, M / M_i)
    z = xp.moveaxis(eig.z, i, 0)
    z = xp.reshape(z, (m_i, -1, n_cols))
    v = _ct(xp, eig.us[i]) @ a  # (M_i, N_i): columns in the eigenbasis of B_i
    v2 = _abs2(xp, v)
    s_in = (v2.T @ d) * p_rest[None, :]  # (N_i, M / M_i)
    dz = xp.astype(d, z.dtype)[:, :, None] * z
    e_in = _ct(xp, v) @ xp.reshape(dz, (m_i, -1))  # (N_i, M / M_i * L)
    e_in = xp.reshape(e_in, (int(a.shape[1]), -1, n_cols))
    e2 = xp.sum(_abs2(xp, e_in), axis=-1)
    # take each in-model entry out (Sherman-Morrison per block); 1 - g S = 1 / (1 + g lam) > 0
    den = 1.0 - g[:, None] * s_in
    den = xp.clip(den, min=1e-15)
    lam = s_in / den
    q = p_rest[None, :] * e2 / (den * den) / n_cols
    # blocks where the other factors have a zero eigenvalue contribute nothing: drop them
    nz = xp.nonzero(p_rest > 0)[0]
    return xp.take(lam, nz, axis=1), xp.take(q, nz, axis=1)


def _slice_cost(s: np.ndarray, lam: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``sum_m log(1 + s lam) - s q / (1 + s lam)`` for ``s`` (J, K) and lam / q (J, Mr)."""
    x = s[:, :, None] * lam[:, None, :]
    return np.sum(np.log1p(x) - s[:, :, None] * q[:, None, :] / (1.0 + x), axis=-1)


def minimise_slice_cost(
    lam: Any, q: Any, n_grid: int = 25, n_newton: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Global minimiser over ``s >= 0`` of ``sum_m log(1 + s lam_m) - s q_m / (1 + s lam_m)``.

    Rows are independent problems (``lam``, ``q`` of shape ``(J, Mr)``; small, so the search
    runs on the host in NumPy). ``f(0) = 0``; ``f`` need not be convex, so a logarithmic grid
    from ``s = 1e-4 / max lam`` to ten times the largest single-term minimiser bound
    ``q / lam^2`` is searched, then refined by safeguarded Newton steps on ``log s`` inside the
    bracket of the grid neighbours. Returns NumPy arrays ``(s_best, f_best)``; ``s_best = 0``
    (with ``f_best = 0``) where no positive ``s`` lowers ``f``.
    """
    lam = np.asarray(to_numpy(lam), dtype=np.float64)
    q = np.asarray(to_numpy(q), dtype=np.float64)
    n_rows = lam.shape[0]
    if lam.shape[1] == 0:
        return np.zeros(n_rows), np.zeros(n_rows)
    lam_max = lam.max(axis=1)
    ok = lam_max > 0
    lam_safe = np.where(ok, lam_max, 1.0)
    # a single term is minimised at s = (q - lam) / lam^2 < q / lam^2: search s lam_max from
    # 1e-4 up to 10 lam_max max(q / lam^2) (terms with lam below 1e-12 lam_max are ignored)
    sig = lam > 1e-12 * lam_max[:, None]
    ratio = np.max(np.where(sig, q / np.where(sig, lam, 1.0) ** 2, 0.0), axis=1) * lam_safe
    hi = np.log(np.maximum(ratio, 1.0) * 10.0)
    lo = math.log(1e-4)
    logx = lo + (hi - lo)[:, None] * np.linspace(0.0, 1.0, n_grid)[None, :]  # log(s lam_max)
    s = np.exp(logx) / lam_safe[:, None]
    f = _slice_cost(s, lam, q)
    k = np.argmin(f, axis=1)
    rows = np.arange(n_rows)
    a_ = logx[rows, np.maximum(k - 1, 0)]
    b_ = logx[rows, np.minimum(k + 1, n_grid - 1)]
    u = logx[rows, k]
    s_best, f_best = s[rows, k], f[rows, k]
    if n_newton:
        for _ in range(n_newton):
            # first and second derivatives of f(exp(u) / lam_max) in u
            sv = np.exp(u) / lam_safe
            den = 1.0 + sv[:, None] * lam
            r = 1.0 / den
            fs = np.sum(lam * r - q * r * r, axis=1)
            fss = np.sum(r * r * (2.0 * q * lam * r - lam * lam), axis=1)
            g1 = sv * fs
            g2 = g1 + sv * sv * fss
            step = np.where(g2 > 0, -g1 / np.where(g2 > 0, g2, 1.0), -np.sign(g1))
            u_new = u + step
            inside = ((u_new > a_) & (u_new < b_)) | (np.abs(step) < 1e-12)
            u_new = np.where(inside, u_new, np.where(g1 > 0, (a_ + u) / 2, (u + b_) / 2))
            b_ = np.where(g1 > 0, u, b_)
            a_ = np.where(g1 > 0, a_, u)
            u = u_new
        s_new = np.exp(u) / lam_safe
        f_new = _slice_cost(s_new[:, None], lam, q)[:, 0]
        better = f_new < f_best
        s_best = np.where(better, s_new, s_best)
        f_best = np.where(better, f_new, f_best)
    keep = (f_best < 0) & ok
    return np.where(keep, s_best, 0.0), np.where(keep, f_best, 0.0)


def slice_cost_at(lam: Any, q: Any, s: Any) -> np.ndarray:
    """``f(s)`` of :func:`minimise_slice_cost` at given ``s`` (one value per row), on the host."""
    lam = np.asarray(to_numpy(lam), dtype=np.float64)
    q = np.asarray(to_numpy(q), dtype=np.float64)
    s = np.asarray(to_numpy(s), dtype=np.float64)
    return _slice_cost(s[:, None], lam, q)[:, 0]


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
