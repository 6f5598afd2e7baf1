"""Coordinate descent with working sets for penalised least squares (Numba).

Solves, for a separable penalty ``P(w) = sum_j p_j(w_j)`` (l1, l0, l1/2, lq or CEL0),

    min_w  1/(2 n) ||y - X w||^2 + P(w),

the scaling of scikit-learn's ``Lasso``. Each coordinate update is the exact minimisation of
the objective along that coordinate, ``w_j <- prox_{p_j / L_j}(w_j + X_j^T r / (n L_j))`` with
``L_j = ||X_j||^2 / n``, using the scalar Numba prox functions of
:mod:`sparsestat._kernels.prox`. Outer iterations score every feature, grow a working set
(the current support plus the worst-scored features, at least ``p0`` and twice the support, as
in skglm's ``AndersonCD``) and run CD epochs on it. A working set of at most ``n / 2``
features is solved through its Gram matrix (one BLAS product, then ``O(|ws|)`` per coordinate
step instead of ``O(n)``, the residual brought up to date once); larger ones update the
residual. The scores use one BLAS matrix-vector product per outer iteration.

Certificates: for ``l1`` the duality gap divided by ``||y||^2 / n``; for the other
(non-convex) penalties the fixed-point residual ``max_j L_j |w_j - prox(w_j - g_j / L_j)|``
divided by ``max(||X^T y||_inf / n, tiny)``, which is zero exactly at the coordinate-wise
minimisers that CD converges to.

CD is sequential by nature and runs on the CPU only. The generic version registered beside
the Numba one is the same Python code run by the interpreter (``py_func``) on NumPy arrays;
the tests compare the two.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from sparsestat._kernels._dispatch import get_kernel, register, to_numpy
from sparsestat._kernels.prox import (
    _prox_cel0_scalar,
    _prox_half_scalar,
    _prox_l0_scalar,
    _prox_l1_scalar,
    _prox_lq_scalar,
)

__all__ = ["PENALTY_CODES", "cd_objective", "cd_solve", "penalty_spec"]

#: Integer codes of the penalties understood by the Numba kernel.
PENALTY_CODES: dict[str, int] = {"l1": 0, "l0": 1, "l1/2": 2, "lq": 3, "cel0": 4}


def penalty_spec(penalty: Any, alpha: float = 1.0, q: float = 0.5) -> tuple[str, float, float, Any]:
    """``(name, alpha, q, atom_norms or None)`` of a penalty name or object, for the CD kernels.

    Parameters
    ----------
    penalty : str or sparsestat.penalties object
        'l1', 'l0', 'l1/2', 'lq', 'cel0' or an ``L1``, ``L0``, ``L1_2``, ``Lq``, ``CEL0``.
    alpha : float, default=1.0
        Weight used when ``penalty`` is a name.
    q : float, default=0.5
        Exponent used for 'lq' given by name.

    Returns
    -------
    spec : tuple
        Name, weight, exponent and CEL0 atom norms (None when not given).
    """
    from sparsestat.penalties import CEL0, L0, L1, L1_2, Lq, make_penalty

    pen = make_penalty(penalty, alpha=alpha, q=q)
    if isinstance(pen, CEL0):
        a = None if pen.atom_norms is None else np.asarray(pen.atom_norms, dtype=np.float64)
        return "cel0", float(pen.alpha), 0.5, a
    if isinstance(pen, L1_2):
        return "l1/2", float(pen.alpha), 0.5, None
    if isinstance(pen, Lq):
        return "lq", float(pen.alpha), float(pen.q), None
    if isinstance(pen, L1):
        return "l1", float(pen.alpha), 1.0, None
    if isinstance(pen, L0):
        return "l0", float(pen.alpha), 0.5, None
    raise ValueError(
        f"LqRegression supports penalties {tuple(PENALTY_CODES)}; got {type(pen).__name__}"
    )


@njit(cache=True)
def _prox1(z: float, L: float, kind: int, alpha: float, q: float, a: float) -> float:
    """Prox of ``p / L`` at ``z`` for penalty ``kind`` (weight ``alpha``)."""
    t = alpha / L
    if kind == 0:
        return _prox_l1_scalar(z, t)
    if kind == 1:
        return _prox_l0_scalar(z, t)
    if kind == 2:
        return _prox_half_scalar(z, t)
    if kind == 3:
        return _prox_lq_scalar(z, t, q)
    gamma = 1.0 / L
    if gamma * a * a >= 1.0 - 1e-12:
        # hard-threshold branch, decided with a tolerance: in CD a = sqrt(L) and gamma = 1/L,
        # so gamma a^2 is 1 up to rounding (both branches give the same threshold there)
        return _prox_l0_scalar(z, alpha * gamma)
    return _prox_cel0_scalar(z, alpha, gamma, a)


@njit(cache=True)
def _pen1(x: float, kind: int, alpha: float, q: float, a: float) -> float:
    """Value of the penalty at one coefficient."""
    ax = abs(x)
    if kind == 0:
        return alpha * ax
    if kind == 1:
        return alpha if ax != 0.0 else 0.0
    if kind == 2:
        return alpha * math.sqrt(ax)
    if kind == 3:
        return alpha * ax**q if ax != 0.0 else 0.0
    if a == 0.0:
        return 0.0  # limit of phi for a zero column
    thr = math.sqrt(2.0 * alpha) / a
    if ax <= thr:
        return alpha - 0.5 * a * a * (ax - thr) ** 2
    return alpha


@njit(cache=True)
def _objective(r: Any, w: Any, kind: int, alpha: float, q: float, a: Any) -> float:
    n = r.shape[0]
    val = 0.0
    for i in range(n):
        val += r[i] * r[i]
    val /= 2.0 * n
    for j in range(w.shape[0]):
        if w[j] != 0.0 or kind == 4:
            val += _pen1(w[j], kind, alpha, q, a[j])
    return val


@njit(cache=True)
def _scores(XT: Any, r: Any, w: Any, L: Any, kind: int, alpha: float, q: float, a: Any) -> Any:
    """Fixed-point residual of every coordinate, and X^T r / n."""
    d, n = XT.shape
    score = np.zeros(d)
    corr = np.dot(XT, r) / n  # one BLAS gemv (vectorised; a plain loop is latency-bound)
    for j in range(d):
        c = corr[j]
        if L[j] == 0.0:
            continue
        z = w[j] + c / L[j]
        score[j] = L[j] * abs(w[j] - _prox1(z, L[j], kind, alpha, q, a[j]))
    return score, corr


@njit(cache=True)
def _dual_gap_l1(r: Any, w: Any, corr: Any, y_sq: float, alpha: float) -> float:
    """Lasso duality gap (scaled objective) from the residual and ``X^T r / n``."""
    n = r.shape[0]
    dual_norm = 0.0
    for j in range(corr.shape[0]):
        if abs(corr[j]) > dual_norm:
            dual_norm = abs(corr[j])
    s = 1.0 if dual_norm <= alpha else alpha / dual_norm
    r_sq = 0.0
    ry = 0.0  # not needed explicitly: ||y - s r||^2 = ||y||^2 - 2 s y.r + s^2 ||r||^2
    for i in range(n):
        r_sq += r[i] * r[i]
    l1 = 0.0
    for j in range(w.shape[0]):
        l1 += abs(w[j])
    # y.r = ||r||^2 + (Xw).r = ||r||^2 + n w.corr
    wc = 0.0
    for j in range(w.shape[0]):
        wc += w[j] * corr[j]
    ry = r_sq + n * wc
    primal = 0.5 * r_sq + n * alpha * l1
    dual = 0.5 * y_sq - 0.5 * (y_sq - 2.0 * s * ry + s * s * r_sq)
    return (primal - dual) / n


def _cd_gram_ws_impl(
    XT: Any,
    r: Any,
    w: Any,
    L: Any,
    ws: Any,
    corr: Any,
    kind: int,
    alpha: float,
    q: float,
    a: Any,
    stop: float,
    max_epochs: int,
) -> int:
    """CD epochs on a small working set through its Gram matrix (``|ws| <= n / 2``).

    ``G_ws = X_ws^T X_ws / n`` costs ``O(n |ws|^2)`` once; then a coordinate step costs
    ``O(|ws|)`` (the correlations ``X_ws^T r / n`` are updated instead of the residual), and
    the residual is brought up to date once at the end (``O(n |ws|)``). ``corr`` holds
    ``X^T r / n`` on entry. Updates ``w`` and ``r`` in place; returns the epochs run.
    """
    d, n = XT.shape
    m = ws.shape[0]
    Xw = np.empty((m, n))
    for ia in range(m):
        Xw[ia] = XT[ws[ia]]
    Gw = np.dot(Xw, Xw.T) / n  # BLAS
    cw = np.empty(m)
    w_old = np.empty(m)
    for ia in range(m):
        cw[ia] = corr[ws[ia]]
        w_old[ia] = w[ws[ia]]
    epochs = 0
    for epoch in range(max_epochs):
        epochs += 1
        for jj in range(m):
            j = ws[jj]
            if L[j] == 0.0:
                continue
            new = _prox1(w[j] + cw[jj] / L[j], L[j], kind, alpha, q, a[j])
            delta = new - w[j]
            if delta != 0.0:
                w[j] = new
                for ll in range(m):
                    cw[ll] -= delta * Gw[jj, ll]
        if epoch % 5 == 4:
            worst = 0.0
            for jj in range(m):
                j = ws[jj]
                if L[j] == 0.0:
                    continue
                z = w[j] + cw[jj] / L[j]
                sc = L[j] * abs(w[j] - _prox1(z, L[j], kind, alpha, q, a[j]))
                if sc > worst:
                    worst = sc
            if worst <= stop:
                break
    for jj in range(m):
        w_old[jj] = w[ws[jj]] - w_old[jj]
    r -= np.dot(w_old, Xw)  # the residual moves by -X_ws (w_new - w_old)
    return epochs


_cd_gram_ws = njit(cache=True)(_cd_gram_ws_impl)


def _cd_ws_impl(
    XT: Any,
    r: Any,
    w: Any,
    L: Any,
    kind: int,
    alpha: float,
    q: float,
    a: Any,
    y_sq: float,
    grad_scale: float,
    tol: float,
    max_iter: int,
    max_epochs: int,
    p0: int,
) -> tuple[int, int, float]:
    """Working-set CD; updates ``w`` and the residual ``r = y - X w`` in place.

    Returns (outer iterations, total epochs, final certificate).
    """
    d, n = XT.shape
    cert = np.inf
    n_epochs = 0
    it = 0
    for it in range(max_iter):
        score, corr = _scores(XT, r, w, L, kind, alpha, q, a)
        if kind == 0:
            cert = _dual_gap_l1(r, w, corr, y_sq, alpha) / max(y_sq / n, 1e-300)
        else:
            cert = np.max(score) / grad_scale if d > 0 else 0.0
        if cert <= tol:
            return it, n_epochs, cert
        n_supp = 0
        for j in range(d):
            if w[j] != 0.0:
                n_supp += 1
                score[j] = np.inf  # always keep the support
        ws_size = min(d, max(p0, 2 * n_supp))
        ws = np.argsort(-score)[:ws_size]
        inner_tol = 0.3 * np.max(score[np.isfinite(score)]) if n_supp < d else 0.0
        stop = max(inner_tol, 0.3 * tol * grad_scale)
        if 2 * ws_size <= n:
            n_epochs += _cd_gram_ws(XT, r, w, L, ws, corr, kind, alpha, q, a, stop, max_epochs)
            continue
        for epoch in range(max_epochs):
            n_epochs += 1
            for jj in range(ws_size):
                j = ws[jj]
                if L[j] == 0.0:
                    continue
                c = 0.0
                for i in range(n):
                    c += XT[j, i] * r[i]
                z = w[j] + c / (n * L[j])
                new = _prox1(z, L[j], kind, alpha, q, a[j])
                delta = new - w[j]
                if delta != 0.0:
                    w[j] = new
                    for i in range(n):
                        r[i] -= delta * XT[j, i]
            if epoch % 5 == 4:
                worst = 0.0
                for jj in range(ws_size):
                    j = ws[jj]
                    if L[j] == 0.0:
                        continue
                    c = 0.0
                    for i in range(n):
                        c += XT[j, i] * r[i]
                    z = w[j] + c / (n * L[j])
                    s = L[j] * abs(w[j] - _prox1(z, L[j], kind, alpha, q, a[j]))
                    if s > worst:
                        worst = s
                if worst <= stop:
                    break
    score, corr = _scores(XT, r, w, L, kind, alpha, q, a)
    if kind == 0:
        cert = _dual_gap_l1(r, w, corr, y_sq, alpha) / max(y_sq / n, 1e-300)
    else:
        cert = np.max(score) / grad_scale if d > 0 else 0.0
    return it + 1, n_epochs, cert


_cd_ws_numba = njit(cache=True)(_cd_ws_impl)


@register("cd_solve", "generic")
def _cd_generic(*args: Any) -> tuple[int, int, float]:
    # the interpreter runs the same code on NumPy arrays (scalar prox functions are compiled)
    return _cd_ws_impl(*args)


@register("cd_solve", "numba")
def _cd_numba(*args: Any) -> tuple[int, int, float]:
    return _cd_ws_numba(*args)


def cd_objective(
    X: Any, y: Any, w: Any, penalty: str, alpha: float, q: float = 0.5, atom_norms: Any = None
) -> float:
    """Objective ``1/(2n) ||y - X w||^2 + P(w)`` as minimised by :func:`cd_solve`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Design.
    y : ndarray of shape (n_samples,)
        Target.
    w : ndarray of shape (n_features,)
        Coefficients.
    penalty : {'l1', 'l0', 'l1/2', 'lq', 'cel0'}
        Penalty name.
    alpha : float
        Penalty weight.
    q : float, default=0.5
        Exponent of 'lq'.
    atom_norms : ndarray of shape (n_features,) or None, default=None
        CEL0 column norms; ``||X_j|| / sqrt(n)`` when None.

    Returns
    -------
    value : float
        The objective.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n = X.shape[0]
    if atom_norms is None:
        atom_norms = np.sqrt(np.sum(X**2, axis=0) / n)
    r = y - X @ w
    a = np.asarray(atom_norms, dtype=np.float64)
    return float(_objective(r, w, PENALTY_CODES[penalty], float(alpha), float(q), a))


def cd_solve(
    X: Any,
    y: Any,
    penalty: str,
    alpha: float,
    *,
    q: float = 0.5,
    atom_norms: Any = None,
    w0: Any = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    max_epochs: int = 1000,
    p0: int = 10,
) -> dict[str, Any]:
    """Minimise ``1/(2n) ||y - X w||^2 + P(w)`` by coordinate descent with working sets.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Design (real; converted to float64 NumPy).
    y : ndarray of shape (n_samples,)
        Target.
    penalty : {'l1', 'l0', 'l1/2', 'lq', 'cel0'}
        Penalty name.
    alpha : float
        Penalty weight (non-negative).
    q : float, default=0.5
        Exponent for 'lq', in (0, 1].
    atom_norms : ndarray of shape (n_features,) or None, default=None
        CEL0 column norms ``a_j``; ``||X_j|| / sqrt(n)`` (the norms of the scaled design,
        for which CEL0 is the exact continuous relaxation) when None.
    w0 : ndarray of shape (n_features,) or None, default=None
        Warm start (not modified); zeros when None.
    tol : float, default=1e-6
        Stop when the relative certificate is below ``tol``.
    max_iter : int, default=100
        Maximum number of outer (working-set) iterations.
    max_epochs : int, default=1000
        Maximum number of CD epochs per working set.
    p0 : int, default=10
        Minimum working-set size.

    Returns
    -------
    result : dict
        ``coef`` (ndarray), ``n_iter`` (outer iterations), ``n_epochs``, ``certificate``
        (float), ``certificate_kind`` ('duality_gap' or 'fixpoint_distance') and
        ``objective``.

    Notes
    -----
    One epoch costs ``O(n |WS|)``; scoring all features ``O(n p)``. For non-convex
    penalties the result is a coordinate-wise minimiser that depends on ``w0``.
    """
    X = np.asarray(to_numpy(X), dtype=np.float64)
    y = np.asarray(to_numpy(y), dtype=np.float64)
    n, d = X.shape
    kind = PENALTY_CODES[penalty]
    XT = np.ascontiguousarray(X.T)  # no copy for a Fortran-ordered X
    L = np.einsum("ji,ji->j", XT, XT) / n
    a = np.sqrt(L) if atom_norms is None else np.asarray(atom_norms, dtype=np.float64).copy()
    if a.shape != (d,):
        raise ValueError(f"atom_norms must have shape ({d},); got {a.shape}")
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=np.float64, copy=True)
    r = y - X @ w
    y_sq = float(y @ y)
    grad_scale = max(float(np.max(np.abs(XT @ y))) / n if d else 0.0, 1e-300)
    kernel = get_kernel("cd_solve", X)
    n_iter, n_epochs, cert = kernel(
        XT,
        r,
        w,
        L,
        kind,
        float(alpha),
        float(q),
        a,
        y_sq,
        grad_scale,
        float(tol),
        int(max_iter),
        int(max_epochs),
        int(p0),
    )
    return {
        "coef": w,
        "n_iter": int(n_iter),
        "n_epochs": int(n_epochs),
        "certificate": float(cert),
        "certificate_kind": "duality_gap" if kind == 0 else "fixpoint_distance",
        "objective": float(_objective(r, w, kind, float(alpha), float(q), a)),
    }
