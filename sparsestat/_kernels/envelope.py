"""Weighted group sparse envelope (WGSEF): value, conjugate and exact proximal operator.

The sparse envelope of Beck & Refael (2022) is the closed convex envelope of
``1/2 ||x||^2 + indicator(||x||_0 <= k)``, which equals half the squared k-support norm
(Argyriou, Foygel & Srebro 2012). The weighted group version acts on the weighted group norms
``v_g = w_g ||x_g||``. Everything here works on the vector of group norms ``a`` (float64), so
that callers (NumPy, torch) only scale each group by the returned factor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from sparsestat._kernels._dispatch import get_kernel, get_namespace, register

__all__ = [
    "group_norms",
    "wgsef_conjugate",
    "wgsef_prox",
    "wgsef_prox_factors",
    "wgsef_value",
]


_SNAP = 1e-12  # theta within this of 0 or 1 is rounding residue of a breakpoint


def _check_k(k: int) -> int:
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    return k


def wgsef_value(a: Any, w: Any, k: int) -> float:
    """Value ``Phi_w = 1/2 ||(w_g a_g)_g||_(k)^2`` (half the squared k-support norm).

    Parameters
    ----------
    a : array of shape (n_groups,)
        Group norms ``||x_g||`` (non-negative).
    w : array of shape (n_groups,)
        Positive group weights.
    k : int
        Number of groups of the envelope.

    Returns
    -------
    value : float
        ``1/2 (sum_{i < k-r} z_i^2 + T_r^2 / (r + 1))`` with ``z`` the sorted ``w a`` and the
        unique ``r`` of Argyriou et al.; ``1/2 ||w a||^2`` when ``k >= n_groups``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.envelope import wgsef_value
    >>> wgsef_value(np.array([3.0, 1.0]), np.ones(2), 1)  # 1/2 ||x||_1^2
    8.0
    """
    k = _check_k(k)
    z = np.sort(np.abs(np.asarray(a, dtype=np.float64) * np.asarray(w, dtype=np.float64)))[::-1]
    n = z.shape[0]
    if k >= n:
        return 0.5 * float(np.sum(z * z))
    tail = np.cumsum(z[::-1])[::-1]  # tail[i] = sum_{j >= i} z_j
    for r in range(k):
        start = k - r - 1  # 0-based index of the first summed entry
        t_r = tail[start]
        left = math.inf if start == 0 else z[start - 1]
        if left > t_r / (r + 1) >= z[start]:
            return 0.5 * float(np.sum(z[:start] ** 2) + t_r**2 / (r + 1))
    return 0.5 * float(tail[0] ** 2 / k)  # not reached for exact arithmetic (r = k - 1)


def wgsef_conjugate(b: Any, w: Any, k: int) -> float:
    """Convex conjugate ``Phi_w^*(y) = 1/2 sum of the k largest (||y_g|| / w_g)^2``.

    Parameters
    ----------
    b : array of shape (n_groups,)
        Group norms ``||y_g||``.
    w : array of shape (n_groups,)
        Positive group weights.
    k : int
        Number of groups.

    Returns
    -------
    value : float
        The conjugate at ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.envelope import wgsef_conjugate
    >>> wgsef_conjugate(np.array([3.0, 1.0, 2.0]), np.ones(3), 2)
    6.5
    """
    k = _check_k(k)
    r = np.sort((np.asarray(b, dtype=np.float64) / np.asarray(w, dtype=np.float64)) ** 2)[::-1]
    return 0.5 * float(np.sum(r[:k]))


@register("wgsef_prox_factors", "generic")
def _prox_factors_generic(a: Any, w: Any, k: int, lam: float) -> Any:
    xp = get_namespace(a, w)
    nz = a > 0
    n_nz = int(xp.sum(xp.astype(nz, xp.int64)))
    ridge = 1.0 / (1.0 + lam * w * w)
    if n_nz <= k:
        return xp.where(nz, ridge, xp.zeros_like(a))
    an, wn = a[nz], w[nz]
    b1 = lam * wn * an / (1.0 + lam * wn * wn)  # theta_g = 1 for s <= b1
    b0 = an / wn  # theta_g = 0 for s >= b0
    pos = xp.concat([b1, b0])
    m = an.shape[0]
    ones = xp.ones(m, dtype=a.dtype)
    d_t = xp.concat([-ones, xp.zeros(m, dtype=a.dtype)])
    d_sa = xp.concat([wn * an, -wn * an])
    d_sw = xp.concat([wn * wn, -wn * wn])
    order = xp.argsort(pos)
    pos = xp.take(pos, order)
    n_top = float(n_nz) + xp.cumulative_sum(xp.take(d_t, order))
    s_a = xp.cumulative_sum(xp.take(d_sa, order))
    s_w = xp.cumulative_sum(xp.take(d_sw, order))
    # sum_g theta_g(s) at each breakpoint (continuous, non-increasing in s)
    f = n_top + lam * s_a / pos - lam * s_w
    j = int(xp.argmax(xp.astype(f <= k, xp.int8)))  # first breakpoint with F <= k (j >= 1)
    j = max(j, 1)
    denom = k - float(n_top[j - 1]) + lam * float(s_w[j - 1])
    s = lam * float(s_a[j - 1]) / denom if denom > 0 else float(pos[j])
    s = min(max(s, float(pos[j - 1])), float(pos[j]))
    theta = xp.clip(lam * w * (a / s - w), 0.0, 1.0)
    # s may sit on a breakpoint (flat stretch): snap rounding residue to exact 0 / 1
    theta = xp.where(theta < _SNAP, xp.zeros_like(a), theta)
    theta = xp.where(theta > 1.0 - _SNAP, xp.ones_like(a), theta)
    theta = xp.where(nz, theta, xp.zeros_like(a))
    return theta / (theta + lam * w * w)


@njit(cache=True)
def _prox_factors_numba_impl(a: np.ndarray, w: np.ndarray, k: int, lam: float) -> np.ndarray:
    n = a.shape[0]
    out = np.zeros(n)
    n_nz = 0
    for g in range(n):
        if a[g] > 0:
            n_nz += 1
    if n_nz <= k:
        for g in range(n):
            if a[g] > 0:
                out[g] = 1.0 / (1.0 + lam * w[g] * w[g])
        return out
    m = 2 * n_nz
    pos = np.empty(m)
    grp = np.empty(m, dtype=np.int64)
    kind = np.empty(m, dtype=np.int64)  # 0: enters M (leaves T), 1: leaves M
    i = 0
    for g in range(n):
        if a[g] > 0:
            pos[i] = lam * w[g] * a[g] / (1.0 + lam * w[g] * w[g])
            grp[i] = g
            kind[i] = 0
            pos[i + 1] = a[g] / w[g]
            grp[i + 1] = g
            kind[i + 1] = 1
            i += 2
    order = np.argsort(pos)
    n_top = float(n_nz)
    s_a = 0.0
    s_w = 0.0
    s = pos[order[m - 1]]
    for idx in range(m):
        e = order[idx]
        g = grp[e]
        # state before this breakpoint applies on (previous breakpoint, pos[e])
        if idx > 0:
            f = n_top + lam * s_a / pos[e] - lam * s_w
            if f <= k:
                denom = k - n_top + lam * s_w
                s = lam * s_a / denom if denom > 0 else pos[e]
                lo = pos[order[idx - 1]]
                s = min(max(s, lo), pos[e])
                break
        wa = w[g] * a[g]
        ww = w[g] * w[g]
        if kind[e] == 0:
            n_top -= 1.0
            s_a += wa
            s_w += ww
        else:
            s_a -= wa
            s_w -= ww
    for g in range(n):
        if a[g] > 0:
            theta = lam * w[g] * (a[g] / s - w[g])
            theta = min(max(theta, 0.0), 1.0)
            if theta < _SNAP:
                theta = 0.0
            elif theta > 1.0 - _SNAP:
                theta = 1.0
            out[g] = theta / (theta + lam * w[g] * w[g])
    return out


@register("wgsef_prox_factors", "numba")
def _prox_factors_numba(a: Any, w: Any, k: int, lam: float) -> Any:
    a64 = np.ascontiguousarray(a, dtype=np.float64)
    w64 = np.ascontiguousarray(w, dtype=np.float64)
    return _prox_factors_numba_impl(a64, w64, int(k), float(lam))


def wgsef_prox_factors(a: Any, w: Any, k: int, lam: float) -> Any:
    """Per-group scale factors of the exact prox of ``lam * Phi_w``.

    ``prox(x)_g = factor_g * x_g``: 1/(1 + lam w_g^2) for kept groups, ``1 - w_g s / a_g``
    for groups on the boundary and 0 for removed groups, where ``s > 0`` solves
    ``sum_g clip(lam w_g (a_g / s - w_g), 0, 1) = k`` (or ``theta = 1`` when at most ``k``
    groups are nonzero).

    Parameters
    ----------
    a : array of shape (n_groups,)
        Group norms ``||x_g||`` (float64; NumPy uses the Numba kernel, other array libraries
        the generic array-API one).
    w : array of shape (n_groups,)
        Positive group weights.
    k : int
        Number of groups of the envelope.
    lam : float
        Prox parameter (regularisation times step size), > 0.

    Returns
    -------
    factors : array of shape (n_groups,)
        Values in [0, 1].

    Notes
    -----
    O(n log n): the 2n breakpoints ``a_g / w_g`` (theta hits 0) and
    ``lam w_g a_g / (1 + lam w_g^2)`` (theta hits 1) are sorted and scanned once with
    running sums; the derivation (variational form of the k-support norm, KKT conditions
    of the capped-simplex problem in theta) is the library's own (not from the paper),
    checked against brute-force minimisation in the tests.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.envelope import wgsef_prox_factors
    >>> wgsef_prox_factors(np.array([3.0, 1.0, 0.1]), np.ones(3), 1, 1.0).round(4)
    array([0.5, 0. , 0. ])
    """
    k = _check_k(k)
    if lam <= 0:
        raise ValueError(f"lam must be > 0; got {lam}")
    return get_kernel("wgsef_prox_factors", a, w)(a, w, k, float(lam))


def group_norms(x: Any, groups: Any, n_groups: int | None = None) -> np.ndarray:
    """Euclidean norms of the groups of a 1-D NumPy vector.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Vector.
    groups : ndarray of int of shape (n,)
        Group label ``0 .. n_groups - 1`` of each entry.
    n_groups : int or None, default=None
        Number of groups (``groups.max() + 1`` when None).

    Returns
    -------
    norms : ndarray of shape (n_groups,)
        ``||x_g||_2``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.envelope import group_norms
    >>> group_norms(np.array([3.0, 4.0, 1.0]), np.array([0, 0, 1]))
    array([5., 1.])
    """
    groups = np.asarray(groups, dtype=np.int64)
    n_groups = int(groups.max()) + 1 if n_groups is None else int(n_groups)
    sq = np.bincount(groups, weights=np.asarray(x, dtype=np.float64) ** 2, minlength=n_groups)
    return np.sqrt(sq)


def wgsef_prox(x: Any, groups: Any, w: Any, k: int, lam: float) -> np.ndarray:
    """Exact prox of ``lam * Phi_w`` for a 1-D NumPy vector with group labels.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Point.
    groups : ndarray of int of shape (n,)
        Group labels ``0 .. n_groups - 1``.
    w : ndarray of shape (n_groups,)
        Positive group weights.
    k : int
        Number of groups of the envelope.
    lam : float
        Prox parameter, > 0.

    Returns
    -------
    u : ndarray of shape (n,)
        ``argmin_u lam Phi_w(u) + 1/2 ||u - x||^2``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.envelope import wgsef_prox
    >>> wgsef_prox(np.array([3.0, 1.0]), np.array([0, 1]), np.ones(2), 1, 0.5)
    array([2., 0.])
    """
    x = np.asarray(x, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    w = np.asarray(w, dtype=np.float64)
    a = group_norms(x, groups, w.shape[0])
    return x * wgsef_prox_factors(a, w, k, lam)[groups]
