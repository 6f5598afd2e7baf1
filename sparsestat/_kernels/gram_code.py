"""Per-signal sparse coding from the Gram matrix: LARS-lasso, OMP and coordinate descent (Numba).

Every row ``x`` of ``X`` is coded against one dictionary ``D`` (atoms as rows) by minimising

    F(c) = 1/2 ||x - c D||^2 + P(c).

All signals share ``G = D D^T``; their correlations with the atoms ``B = X D^T`` come from one
GEMM. Each signal is then coded on its own, from its row ``b = B[i]`` and ``||x||^2`` only (no
residual is ever formed), in a Numba loop run in parallel over blocks of signals
(``prange``). Three per-signal methods, all keeping the correlation vector
``r = b - c G = D (x - c D)^T`` up to date (``O(k)`` per change of one coefficient):

``lars``
    The lasso homotopy (LARS with the lasso modification, Efron et al. 2004; Osborne, Presnell
    and Turlach 2000) from ``c = 0`` down to ``alpha``, with a Cholesky factor of the active
    Gram block updated by one row per added atom and downdated by Givens rotations per drop.
    The correlations' rates ``G[:, A] w`` are accumulated from a float32 copy of ``G`` (half
    the memory traffic: ``G`` of 256 atoms is 512 KB in float64, a whole L2 cache on many
    CPUs), so the kinks of the path are located to about 1e-7; the final active coefficients
    are re-solved in float64 from the factor (built from the float64 ``G``) and polished by
    float64 coordinate descent, which stops after one sweep when the support and signs are
    right and repairs them otherwise. ``l1`` only.
``omp``
    Orthogonal matching pursuit in its order-recursive form (ORMP, also called orthogonal
    least squares; Chen, Billings and Luo 1989; Cotter et al. 1999; the greedy rule of SPAMS's
    ``omp``): each step adds the atom whose addition, after re-projection, lowers the residual
    energy most, ``max_j r_j^2 / ||P_perp d_j||^2``, while that decrease exceeds ``2 alpha``
    (the l0 price of one more atom). The correlations with the orthonormalised selected atoms
    are kept (``O(k s)`` per step), which gives ``r``, the projected norms and the Cholesky
    factor of the selected Gram block by ``O(k)`` updates. Then l0 coordinate descent (each
    step an exact coordinate minimisation, so the objective only decreases). ``l0`` only; a
    greedy critical point, not the one iterative hard thresholding from zero reaches.
``cd``
    Coordinate descent with exact scalar prox steps for every penalty of
    :mod:`sparsestat._kernels.cd`: a full sweep (zero coordinates cost ``O(1)`` to check),
    then sweeps over the support only, which update only the support's correlations (the
    rest is recomputed, ``O(k |support|)``, before the next full sweep). A signal stops after
    a full sweep that moves no coefficient by more than ``tol * max(1, max|c|)``, or, for
    ``l1``, whose duality gap is at most ``tol^2 ||x||^2`` (the gap is computed from ``b``,
    ``r``, ``c`` and ``||x||^2``).

The generic version registered beside the Numba one runs the same driver in the interpreter
(a plain loop over the signals, calling the compiled per-signal routines); the tests compare
the two and check the methods against scikit-learn (``Lasso``, ``lars_path``,
``orthogonal_mp_gram``).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from sparsestat._kernels._dispatch import get_kernel, register, to_numpy
from sparsestat._kernels.cd import PENALTY_CODES, prox_coordinate

__all__ = ["METHODS", "gram_code"]

#: Integer codes of the per-signal methods.
METHODS: dict[str, int] = {"cd": 0, "lars": 1, "omp": 2}


# ------------------------------------------------------------------------ triangular solves
@njit(cache=True)
def _solve_lower(Lc: Any, s: int, rhs: Any, out: Any) -> None:
    """``out[:s] = L^{-1} rhs[:s]`` for the lower-triangular ``L = Lc[:s, :s]``."""
    for i in range(s):
        v = rhs[i]
        for j in range(i):
            v -= Lc[i, j] * out[j]
        out[i] = v / Lc[i, i]


@njit(cache=True)
def _solve_upper(Lc: Any, s: int, rhs: Any, out: Any) -> None:
    """``out[:s] = L^{-T} rhs[:s]`` (column-oriented: contiguous rows of ``L``, axpy form)."""
    for i in range(s):
        out[i] = rhs[i]
    for i in range(s - 1, -1, -1):
        xi = out[i] / Lc[i, i]
        out[i] = xi
        for j in range(i):
            out[j] -= Lc[i, j] * xi


@njit(cache=True)
def _chol_append(G: Any, A: Any, s: int, j: int, Lc: Any, w: Any) -> bool:
    """Append atom ``j`` to the factor of ``G[A[:s]][:, A[:s]]``; False if it is dependent."""
    for i in range(s):
        w[i] = G[A[i], j]
    _solve_lower(Lc, s, w, w)
    d = G[j, j]
    for i in range(s):
        d -= w[i] * w[i]
    if d <= 1e-10 * G[j, j]:
        return False
    for i in range(s):
        Lc[s, i] = w[i]
    Lc[s, s] = math.sqrt(d)
    return True


@njit(cache=True)
def _chol_delete(Lc: Any, s: int, p: int) -> None:
    """Remove atom ``p`` from the ``s x s`` factor in ``O(s^2)`` (Givens rotations).

    Dropping row ``p`` of ``L`` leaves rows with one entry above the diagonal; rotating
    columns ``(j, j + 1)`` (which keeps ``L L^T``) zeroes them one by one.
    """
    for i in range(p, s - 1):
        for j in range(i + 2):
            Lc[i, j] = Lc[i + 1, j]
    for j in range(p, s - 1):
        x0 = Lc[j, j]
        y0 = Lc[j, j + 1]
        rr = math.hypot(x0, y0)
        cs = x0 / rr
        sn = y0 / rr
        for i in range(j, s - 1):
            x = Lc[i, j]
            y = Lc[i, j + 1]
            Lc[i, j] = cs * x + sn * y
            Lc[i, j + 1] = -sn * x + cs * y


@njit(cache=True)
def _refresh_corr(b: Any, G: Any, c: Any, r: Any) -> None:
    """``r = b - c G`` (``O(k |support|)``)."""
    k = b.shape[0]
    for l in range(k):
        r[l] = b[l]
    for j in range(k):
        cj = c[j]
        if cj != 0.0:
            for l in range(k):
                r[l] -= cj * G[j, l]


@njit(cache=True)
def l1_duality_gap(b: Any, c: Any, r: Any, xx: float, alpha: float) -> float:
    """Lasso duality gap of one signal from ``b = D x``, ``c``, ``r = b - c G`` and ``||x||^2``.

    With the residual ``e = x - c D`` (``D e = r``): ``x.e = ||x||^2 - c.b`` and
    ``||e||^2 = ||x||^2 - c.b - c.r``; the dual point is ``s e`` with
    ``s = min(1, alpha / ||r||_inf)``.
    """
    cb = 0.0
    cr = 0.0
    l1 = 0.0
    rmax = 0.0
    for j in range(b.shape[0]):
        cb += c[j] * b[j]
        cr += c[j] * r[j]
        l1 += abs(c[j])
        if abs(r[j]) > rmax:
            rmax = abs(r[j])
    xe = xx - cb
    ee = max(xe - cr, 0.0)
    s = 1.0 if rmax <= alpha else alpha / rmax
    primal = 0.5 * ee + alpha * l1
    dual = s * xe - 0.5 * s * s * ee
    return primal - dual


# ------------------------------------------------------------------------ coordinate descent
@njit(cache=True)
def _full_sweep(
    G: Any,
    diag: Any,
    c: Any,
    r: Any,
    kind: int,
    alpha: float,
    q: float,
    a: Any,
    positive: bool,
) -> tuple[float, float, int]:
    """One exact coordinate-minimisation sweep over every atom, keeping ``r = b - c G``.

    Returns the largest move, the largest ``|c_j|`` and the number of support changes.
    """
    k = c.shape[0]
    max_delta = 0.0
    max_c = 0.0
    flips = 0
    for j in range(k):
        Ljj = diag[j]
        if Ljj <= 0.0:
            continue
        old = c[j]
        if old == 0.0 and kind <= 1:
            # a zero coefficient stays zero: O(1) test, no prox (l1: |r_j| <= alpha;
            # l0: r_j^2 <= 2 alpha G_jj; positive codes: r_j <= 0 as well)
            rj = r[j]
            if positive and rj <= 0.0:
                continue
            if kind == 0 and abs(rj) <= alpha:
                continue
            if kind == 1 and rj * rj <= 2.0 * alpha * Ljj:
                continue
        z = old + r[j] / Ljj
        if positive and z < 0.0:
            z = 0.0
        new = prox_coordinate(z, Ljj, kind, alpha, q, a[j])
        delta = new - old
        if delta != 0.0:
            c[j] = new
            for l in range(k):
                r[l] -= delta * G[j, l]
            if abs(delta) > max_delta:
                max_delta = abs(delta)
            if (old == 0.0) != (new == 0.0):
                flips += 1
        if abs(new) > max_c:
            max_c = abs(new)
    return max_delta, max_c, flips


@njit(cache=True)
def _cd_one(
    b: Any,
    G: Any,
    diag: Any,
    c: Any,
    r: Any,
    act: Any,
    kind: int,
    alpha: float,
    q: float,
    a: Any,
    tol: float,
    max_epochs: int,
    positive: bool,
    xx: float,
) -> int:
    """Coordinate descent for one signal, in place on ``c``; ``r = b - c G`` on entry."""
    k = b.shape[0]
    ep = 0
    while ep < max_epochs:
        # full sweep: every correlation stays exact
        ep += 1
        max_delta, max_c, _ = _full_sweep(G, diag, c, r, kind, alpha, q, a, positive)
        if max_delta <= tol * max(1.0, max_c):
            break
        if kind == 0 and l1_duality_gap(b, c, r, xx, alpha) <= tol * tol * xx:
            break
        # sweeps over the support; only its correlations are kept up to date
        n_act = 0
        for j in range(k):
            if c[j] != 0.0:
                act[n_act] = j
                n_act += 1
        while ep < max_epochs:
            ep += 1
            max_delta = 0.0
            max_c = 0.0
            for jj in range(n_act):
                j = act[jj]
                Ljj = G[j, j]
                old = c[j]
                z = old + r[j] / Ljj
                if positive and z < 0.0:
                    z = 0.0
                new = prox_coordinate(z, Ljj, kind, alpha, q, a[j])
                delta = new - old
                if delta != 0.0:
                    c[j] = new
                    for ll in range(n_act):
                        l = act[ll]
                        r[l] -= delta * G[j, l]
                    if abs(delta) > max_delta:
                        max_delta = abs(delta)
                if abs(new) > max_c:
                    max_c = abs(new)
            if max_delta <= tol * max(1.0, max_c):
                break
        _refresh_corr(b, G, c, r)
    return ep


# ------------------------------------------------------------------------ LARS-lasso homotopy
@njit(cache=True)
def _lars_one(
    b: Any,
    G: Any,
    c: Any,
    r: Any,
    alpha: float,
    positive: bool,
    inv_diag: Any,
    A: Any,
    pos: Any,
    Lc: Any,
    w: Any,
    v: Any,
    sgn: Any,
    u: Any,
    G32: Any,
    excl: Any,
) -> int:
    """Lasso homotopy for one signal from ``c = 0``; leaves ``c`` and ``r = b - c G``.

    Returns the number of homotopy steps.
    """
    k = b.shape[0]
    smax = Lc.shape[0]
    for j in range(k):
        c[j] = 0.0
        r[j] = b[j]
        pos[j] = -1
        excl[j] = False
    lam = 0.0
    j0 = -1
    for j in range(k):
        if inv_diag[j] <= 0.0:
            excl[j] = True
            continue
        val = r[j] if positive else abs(r[j])
        if val > lam:
            lam = val
            j0 = j
    if j0 < 0 or lam <= alpha:
        return 0
    s = 0
    A[0] = j0
    pos[j0] = 0
    sgn[0] = 1.0 if r[j0] > 0 else -1.0
    Lc[0, 0] = math.sqrt(G[j0, j0])
    s = 1
    steps = 0
    last_drop = -1
    while steps < 8 * smax + 16:
        steps += 1
        # direction of the active coefficients: G_AA w = sign
        _solve_lower(Lc, s, sgn, v)
        _solve_upper(Lc, s, v, w)
        # u = G[:, A] w (the rate at which the correlations fall)
        for l in range(k):
            u[l] = 0.0
        for i in range(s):
            wi = w[i]
            row = A[i]
            for l in range(k):
                u[l] += wi * G32[row, l]
        gamma = lam - alpha
        event = 0
        who = -1
        for l in range(k):
            if pos[l] >= 0 or excl[l] or l == last_drop:
                continue
            ul = u[l]
            rl = r[l]
            # g = (lam -+ r_l) / (1 -+ u_l); the division only when it can beat gamma
            num = lam - rl
            den = 1.0 - ul
            if den > 1e-12 and 0.0 < num < gamma * den:
                gamma = num / den
                event = 1
                who = l
            if not positive:
                num = lam + rl
                den = 1.0 + ul
                if den > 1e-12 and 0.0 < num < gamma * den:
                    gamma = num / den
                    event = 1
                    who = l
        for i in range(s):
            if w[i] != 0.0:
                g = -c[A[i]] / w[i]
                if 0.0 < g < gamma:
                    gamma = g
                    event = 2
                    who = i
        for i in range(s):
            c[A[i]] += gamma * w[i]
        for l in range(k):
            r[l] -= gamma * u[l]
        lam -= gamma
        last_drop = -1
        if event == 0:
            break
        if event == 1:
            if s >= smax or not _chol_append(G, A, s, who, Lc, v):
                excl[who] = True
                continue
            A[s] = who
            pos[who] = s
            sgn[s] = 1.0 if r[who] > 0 else -1.0
            s += 1
        else:
            j = A[who]
            c[j] = 0.0
            pos[j] = -1
            last_drop = j
            _chol_delete(Lc, s, who)
            for i in range(who, s - 1):
                A[i] = A[i + 1]
                sgn[i] = sgn[i + 1]
                pos[A[i]] = i
            s -= 1
            if s == 0:
                # every coefficient left: restart from the largest correlation
                lam_new = 0.0
                j0 = -1
                for l in range(k):
                    if excl[l]:
                        continue
                    val = r[l] if positive else abs(r[l])
                    if val > lam_new:
                        lam_new = val
                        j0 = l
                if j0 < 0 or lam_new <= alpha:
                    break
                A[0] = j0
                pos[j0] = 0
                sgn[0] = 1.0 if r[j0] > 0 else -1.0
                Lc[0, 0] = math.sqrt(G[j0, j0])
                s = 1
    # exact active coefficients for the signs found: G_AA c_A = b_A - alpha sign
    if s > 0 and lam <= alpha * (1.0 + 1e-12) + 1e-300:
        for i in range(s):
            v[i] = b[A[i]] - alpha * sgn[i]
        _solve_lower(Lc, s, v, v)
        _solve_upper(Lc, s, v, w)
        consistent = True
        for i in range(s):
            if w[i] * sgn[i] <= 0.0:
                consistent = False
        if consistent:
            for j in range(k):
                c[j] = 0.0
            for i in range(s):
                c[A[i]] = w[i]
    _refresh_corr(b, G, c, r)
    return steps


# ------------------------------------------------------------------------ OMP (Batch-OMP)
@njit(cache=True)
def _omp_one(
    b: Any,
    G: Any,
    c: Any,
    r: Any,
    alpha: float,
    inv_diag: Any,
    Z: Any,
    nrm: Any,
    A: Any,
    pos: Any,
    Lc: Any,
    w: Any,
    excl: Any,
) -> int:
    """Greedy l0 pursuit (ORMP) for one signal from ``c = 0``; leaves ``c`` and ``r = b - c G``.

    ``Z[t] = D q_t`` holds the correlations of the atoms with the ``t``-th orthonormalised
    selected atom ``q_t`` and ``nrm[j] = ||P_perp d_j||^2``; both, and ``r``, are updated in
    ``O(k)`` per selected atom after ``O(k t)`` to form ``Z[t]``. The Cholesky factor of the
    selected Gram block is ``Lc[t, u] = Z[u, A[t]]``, ``Lc[t, t] = sqrt(nrm[A[t]])``.
    Returns the number of atoms selected.
    """
    k = b.shape[0]
    smax = Lc.shape[0]
    for j in range(k):
        c[j] = 0.0
        r[j] = b[j]
        pos[j] = -1
        nrm[j] = G[j, j]
        excl[j] = inv_diag[j] <= 0.0
    s = 0
    while s < smax:
        # the atom whose projection lowers ||x - c D||^2 most: max r_j^2 / nrm_j
        best = -1
        num = 0.0
        den = 1.0
        for j in range(k):
            if pos[j] >= 0 or excl[j]:
                continue
            nj = nrm[j]
            if nj * inv_diag[j] <= 1e-10:
                excl[j] = True  # (numerically) in the span of the selected atoms
                continue
            rj2 = r[j] * r[j]
            if rj2 * den > num * nj:
                num = rj2
                den = nj
                best = j
        if best < 0 or num <= 2.0 * alpha * den:
            break  # the best atom does not pay its l0 price alpha
        d = math.sqrt(den)
        zs = Z[s]
        for l in range(k):
            zs[l] = G[best, l]
        for t in range(s):
            coef = Z[t, best]
            Lc[s, t] = coef
            zt = Z[t]
            for l in range(k):
                zs[l] -= coef * zt[l]
        Lc[s, s] = d
        inv_d = 1.0 / d
        rb = r[best] * inv_d
        for l in range(k):
            z = zs[l] * inv_d
            zs[l] = z
            r[l] -= rb * z
            nrm[l] -= z * z
        A[s] = best
        pos[best] = s
        s += 1
    if s > 0:
        for i in range(s):
            w[i] = b[A[i]]
        _solve_lower(Lc, s, w, w)
        _solve_upper(Lc, s, w, w)
        for i in range(s):
            c[A[i]] = w[i]  # r = b - c G was kept up to date by the rank-one steps
    return s


@njit(cache=True)
def _l0_refit_polish(
    b: Any,
    G: Any,
    diag: Any,
    c: Any,
    r: Any,
    alpha: float,
    a: Any,
    A: Any,
    Lc: Any,
    w: Any,
    max_rounds: int,
) -> int:
    """l0 descent after a greedy pursuit: exact coordinate sweeps, least squares on the support.

    Each round is one full sweep of exact l0 coordinate steps; when it moved something, the
    codes are replaced by the least-squares fit on the resulting support (which lowers the
    residual and keeps the number of atoms). Both steps only lower the objective; it stops
    after a sweep that changes no support entry (the codes entering it were the
    least-squares fit of their support, so it only moved them by rounding: a coordinate-wise
    minimum). Returns the rounds run.
    """
    k = c.shape[0]
    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        _, _, flips = _full_sweep(G, diag, c, r, 1, alpha, 0.5, a, False)
        if flips == 0:
            break  # same support: the codes were (and stay) its least-squares fit
        s = 0
        ok = True
        for j in range(k):
            if c[j] != 0.0:
                if s >= Lc.shape[0] or not _chol_append(G, A, s, j, Lc, w):
                    ok = False
                    break
                A[s] = j
                s += 1
        if not ok:
            break  # a dependent support: keep the coordinate-descent codes
        for i in range(s):
            w[i] = b[A[i]]
        _solve_lower(Lc, s, w, w)
        _solve_upper(Lc, s, w, w)
        for i in range(s):
            c[A[i]] = w[i]
        _refresh_corr(b, G, c, r)
    return rounds


# ------------------------------------------------------------------------ driver
def _gram_code_impl(
    B: Any,
    G: Any,
    xx: Any,
    C: Any,
    method: int,
    kind: int,
    alpha: float,
    q: float,
    a: Any,
    tol: float,
    max_epochs: int,
    positive: bool,
    polish: bool,
    warm: bool,
    n_blocks: int,
    smax: int,
    n_epochs: Any,
) -> None:
    """Code every row of ``B`` in place on ``C`` (blocks of rows in parallel)."""
    n, k = B.shape
    per = (n + n_blocks - 1) // n_blocks
    G32 = G.astype(np.float32)  # half the memory traffic for the homotopy's direction
    diag = np.zeros(k)
    inv_diag = np.zeros(k)
    for j in range(k):
        diag[j] = G[j, j]
        if G[j, j] > 0.0:
            inv_diag[j] = 1.0 / G[j, j]
    for blk in prange(n_blocks):
        r = np.empty(k)
        act = np.empty(k, dtype=np.int64)
        A = np.empty(smax, dtype=np.int64)
        pos = np.empty(k, dtype=np.int64)
        Lc = np.zeros((smax, smax))
        w = np.empty(smax)
        v = np.empty(smax)
        sgn = np.empty(smax)
        u = np.empty(k)
        excl = np.zeros(k, dtype=np.bool_)
        Z = np.empty((smax if method == 2 else 1, k))
        nrm = np.empty(k)
        for i in range(blk * per, min(n, (blk + 1) * per)):
            b = B[i]
            c = C[i]
            steps = 0
            if method == 1:
                steps = _lars_one(
                    b, G, c, r, alpha, positive, inv_diag, A, pos, Lc, w, v, sgn, u, G32, excl
                )
            elif method == 2:
                steps = _omp_one(b, G, c, r, alpha, inv_diag, Z, nrm, A, pos, Lc, w, excl)
            elif warm:
                _refresh_corr(b, G, c, r)
            else:
                for l in range(k):
                    r[l] = b[l]
            ep = 0
            if method == 2 and polish:
                _l0_refit_polish(b, G, diag, c, r, alpha, a, A, Lc, w, max_epochs)
            elif method == 0 or polish:
                ep = _cd_one(
                    b, G, diag, c, r, act, kind, alpha, q, a, tol, max_epochs, positive, xx[i]
                )
            n_epochs[i] = ep if method == 0 else steps


# the threaded variant compiles much more slowly; it is only built when threads are asked for
_gram_code_serial = njit(cache=True)(_gram_code_impl)
_gram_code_parallel = njit(cache=True, parallel=True)(_gram_code_impl)


@register("gram_code", "generic")
def _gram_code_generic(*args: Any) -> None:
    _gram_code_impl(*args)


@register("gram_code", "numba")
def _gram_code_nb(*args: Any) -> None:
    n_blocks = args[14]
    (_gram_code_parallel if n_blocks > 1 else _gram_code_serial)(*args)


def _n_threads(n_jobs: int | None) -> int:
    limit = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, limit + 1 + n_jobs)
    return max(1, min(int(n_jobs), limit))


def gram_code(
    X: Any,
    D: Any,
    penalty: str,
    alpha: float,
    *,
    method: str = "cd",
    q: float = 0.5,
    atom_norms: Any = None,
    init: Any = None,
    tol: float = 1e-6,
    max_iter: int = 1000,
    positive: bool = False,
    polish: bool = True,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Code every row of ``X`` against ``D`` from the Gram matrix, one signal at a time.

    Parameters
    ----------
    X : ndarray or SciPy sparse matrix of shape (n_samples, n_features)
        Signals (real). A sparse ``X`` enters only through ``X D^T`` and its row norms.
    D : ndarray of shape (n_components, n_features)
        Dictionary, atoms as rows (real).
    penalty : {'l1', 'l0', 'l1/2', 'lq', 'cel0'}
        Penalty name ('lars' needs 'l1', 'omp' needs 'l0').
    alpha : float
        Penalty weight.
    method : {'cd', 'lars', 'omp'}, default='cd'
        Per-signal method (see the module docstring).
    q : float, default=0.5
        Exponent of 'lq'.
    atom_norms : ndarray of shape (n_components,) or None, default=None
        CEL0 atom norms (``||d_j||`` when None).
    init : ndarray of shape (n_samples, n_components) or None, default=None
        Starting codes for 'cd' (not modified); ignored by 'lars' and 'omp', which start at 0.
    tol : float, default=1e-6
        Coordinate-descent stopping tolerance (see the module docstring).
    max_iter : int, default=1000
        Maximum coordinate-descent epochs per signal.
    positive : bool, default=False
        Non-negative codes ('cd' and 'lars').
    polish : bool, default=True
        Run coordinate descent after 'lars' / 'omp'.
    n_jobs : int or None, default=None
        Numba threads (None: 1; -1: all of ``NUMBA_NUM_THREADS``).

    Returns
    -------
    C : ndarray of shape (n_samples, n_components)
        Codes (float64).
    n_iter : ndarray of shape (n_samples,)
        Epochs ('cd'), homotopy steps ('lars') or selected atoms ('omp') of each signal.

    Notes
    -----
    One GEMM ``X D^T`` (``O(n k m)``) and ``G = D D^T``; then per signal ``O(k)`` per
    coordinate-descent check plus ``O(k)`` per coefficient change, ``O(k s + s^2)`` per
    LARS / OMP step with ``s`` active atoms. Memory ``O(n k + k^2)``.
    """
    D = np.asarray(to_numpy(D), dtype=np.float64)
    if sp.issparse(X):
        # only X D^T and the row norms are needed: one sparse product, X is never densified
        X = sp.csr_array(X, dtype=np.float64)
        B = np.ascontiguousarray(X @ D.T)
        xx = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).reshape(-1)
    else:
        X = np.asarray(to_numpy(X), dtype=np.float64)
        B = np.ascontiguousarray(X @ D.T)
        xx = np.einsum("ij,ij->i", X, X)
    m_code = METHODS[method]
    kind = PENALTY_CODES[penalty]
    if m_code == 1 and kind != 0:
        raise ValueError("method='lars' solves the l1 penalty only")
    if m_code == 2 and (kind != 1 or positive):
        raise ValueError("method='omp' solves the (signed) l0 penalty only")
    n, k = X.shape[0], D.shape[0]
    G = np.ascontiguousarray(D @ D.T)
    a = np.sqrt(np.diag(G)).copy() if atom_norms is None else np.asarray(atom_norms, float)
    warm = init is not None and m_code == 0
    C = np.array(init, dtype=np.float64, copy=True) if warm else np.zeros((n, k))
    n_iter = np.zeros(n, dtype=np.int64)
    if n == 0 or k == 0:
        return C, n_iter
    threads = _n_threads(n_jobs)
    n_blocks = min(n, 1 if threads == 1 else 8 * threads)
    smax = max(1, min(k, D.shape[1]))
    kernel = get_kernel("gram_code", B)
    args: tuple[Any, ...] = (B, G, xx, C, m_code, kind, float(alpha), float(q), a, float(tol))
    args += (int(max_iter), bool(positive), bool(polish), bool(warm), int(n_blocks), int(smax))
    args += (n_iter,)
    if threads == 1:
        # the serial kernel: Numba's thread pool is not touched (starting it, even to read
        # its size, slowed torch's own OpenMP threads in the same process many times over)
        kernel(*args)
        return C, n_iter
    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        kernel(*args)
    finally:
        numba.set_num_threads(old)
    return C, n_iter
