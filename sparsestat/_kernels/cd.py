"""Coordinate-descent kernels for penalised least squares (Numba).

The problem, for a separable penalty ``P(w) = sum_j p_j(w_j)`` (l1, l0, l1/2, lq or CEL0), is

    min_w  1/(2 n) ||y - A w||^2 + P(w),

the scaling of scikit-learn's ``Lasso``. Each coordinate update is the exact minimisation of
the objective along that coordinate, ``w_j <- prox_{p_j / L_j}(w_j + A_j^T r / (n L_j))`` with
``L_j = ||A_j||^2 / n``, using the scalar Numba prox functions of
:mod:`sparsestat._kernels.prox`.

The kernels here are the numeric inner loops only; the working-set outer loop, the
regularisation path and ``alpha_max`` live in :mod:`sparsestat._solvers.cd`. A penalty is
handed down as an integer code (:data:`PENALTY_CODES`) and its parameters ``alpha``, ``q``
and the CEL0 atom norms ``a``; this module knows nothing of the penalty objects.

- :func:`fixpoint_scores`: ``L_j |w_j - prox(w_j + corr_j / L_j)|`` for every coordinate (zero
  exactly at a coordinate-wise minimiser);
- :func:`coordinate_alpha_max`: per coordinate, the smallest ``alpha`` for which ``w_j = 0``
  is left at zero by its coordinate step from ``w = 0``;
- ``cd_gram_epochs``: CD epochs on a working set through its Gram matrix (``O(|ws|)`` per
  coordinate step; used for dense and sparse designs alike);
- ``cd_dense_epochs`` and ``cd_sparse_epochs``: CD epochs that update the residual, on the
  columns of a dense design (``X.T`` C-contiguous) or of a CSC matrix with implicit
  centring (the design ``A = B - u xbar^T`` is never formed, so sparse input stays sparse).

CD is sequential by nature and runs on the CPU only. The generic version registered beside
each Numba one is the same Python code run by the interpreter (``py_func``) on NumPy arrays;
the tests compare the two.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from sparsestat._kernels._dispatch import register
from sparsestat._kernels.prox import (
    prox_cel0_scalar,
    prox_half_scalar,
    prox_l0_scalar,
    prox_l1_scalar,
    prox_lq_scalar,
)

__all__ = [
    "PENALTY_CODES",
    "coordinate_alpha_max",
    "dual_gap_l1",
    "fixpoint_scores",
    "objective",
    "penalty_spec",
    "prox_coordinate",
]

#: Integer codes of the penalties understood by the Numba kernels.
PENALTY_CODES: dict[str, int] = {"l1": 0, "l0": 1, "l1/2": 2, "lq": 3, "cel0": 4}

#: Spellings accepted for the names above (the penalty objects' class names, lower case).
PENALTY_ALIASES: dict[str, str] = {"l1_2": "l1/2"}

#: Relative margin put on ``alpha_max`` so that zero is a fixed point there by a margin far
#: above rounding (the threshold comparisons are then never exact ties).
ALPHA_MAX_MARGIN = 1e-10


def penalty_spec(penalty: Any, alpha: float = 1.0, q: float = 0.5) -> tuple[str, float, float, Any]:
    """``(name, alpha, q, atom_norms or None)`` of a penalty name or object, for the CD kernels.

    A penalty object hands its own code down through its ``kernel_spec()`` method, which
    returns ``(code, alpha, q, atom_norms)`` with ``code`` a value of :data:`PENALTY_CODES`
    (the penalties of :mod:`sparsestat.penalties` have one); a name is taken with ``alpha``
    and ``q`` as given.

    Parameters
    ----------
    penalty : str or penalty object
        'l1', 'l0', 'l1/2' (or 'l1_2'), 'lq', 'cel0', or an object with ``kernel_spec()``.
    alpha : float, default=1.0
        Weight used when ``penalty`` is a name.
    q : float, default=0.5
        Exponent used for 'lq' given by name.

    Returns
    -------
    parameters : tuple
        Name, weight, exponent and CEL0 atom norms (None when not given).

    Examples
    --------
    >>> from sparsestat._kernels.cd import penalty_spec
    >>> penalty_spec("l1_2", alpha=0.1)
    ('l1/2', 0.1, 0.5, None)
    """
    if isinstance(penalty, str):
        name = PENALTY_ALIASES.get(penalty, penalty)
        if name not in PENALTY_CODES:
            raise ValueError(
                f"penalty must be one of {sorted(PENALTY_CODES)} (or 'l1_2') or a penalty "
                f"object; got {penalty!r}"
            )
        q_ = float(q) if name == "lq" else (1.0 if name == "l1" else 0.5)
        return name, float(alpha), q_, None
    hand_down = getattr(penalty, "kernel_spec", None)
    if hand_down is None:
        raise ValueError(
            f"coordinate descent supports the penalties {tuple(PENALTY_CODES)}; "
            f"got {type(penalty).__name__}"
        )
    code, a_, q_, norms = hand_down()
    name = {v: k for k, v in PENALTY_CODES.items()}[int(code)]
    return name, float(a_), float(q_), norms


# ----------------------------------------------------------------------------- scalars
@njit(cache=True)
def _prox1(z: float, L: float, kind: int, alpha: float, q: float, a: float) -> float:
    """Prox of ``p / L`` at ``z`` for penalty ``kind`` (weight ``alpha``)."""
    t = alpha / L
    if kind == 0:
        return prox_l1_scalar(z, t)
    if kind == 1:
        return prox_l0_scalar(z, t)
    if kind == 2:
        return prox_half_scalar(z, t)
    if kind == 3:
        return prox_lq_scalar(z, t, q)
    gamma = 1.0 / L
    if gamma * a * a >= 1.0 - 1e-12:
        # hard-threshold branch, decided with a tolerance: in CD a = sqrt(L) and gamma = 1/L,
        # so gamma a^2 is 1 up to rounding (both branches give the same threshold there)
        return prox_l0_scalar(z, alpha * gamma)
    return prox_cel0_scalar(z, alpha, gamma, a)


#: Public name of the scalar coordinate prox (for other Numba kernels).
prox_coordinate = _prox1


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
def _alpha_max1(c: float, L: float, kind: int, q: float, a: float) -> float:
    """Smallest ``alpha`` for which ``prox1(c / L, L, kind, alpha)`` is zero (exact formula)."""
    z = abs(c) / L
    if kind == 0:
        return abs(c)
    if kind == 1:
        return 0.5 * L * z * z  # sqrt(2 alpha / L) = z
    if kind == 2:
        return L * (2.0 * z / 3.0) ** 1.5  # 1.5 (alpha / L)^(2/3) = z
    if kind == 3:
        if q >= 1.0:
            return abs(c)
        # tau = C (2 t (1 - q))^(1 / (2 - q)) = z with C = (2 - q) / (2 (1 - q))
        cq = (2.0 - q) / (2.0 * (1.0 - q))
        return L * (z / cq) ** (2.0 - q) / (2.0 * (1.0 - q))
    gamma = 1.0 / L
    if gamma * a * a >= 1.0 - 1e-12:
        return 0.5 * L * z * z
    # soft branch of CEL0: zero iff z <= sqrt(2 alpha) a gamma
    return 0.5 * (z / (a * gamma)) ** 2


@njit(cache=True)
def _coordinate_alpha_max(corr: Any, L: Any, kind: int, q: float, a: Any) -> Any:
    out = np.zeros(corr.shape[0])
    for j in range(corr.shape[0]):
        if L[j] > 0.0:
            out[j] = _alpha_max1(corr[j], L[j], kind, q, a[j])
    return out


def coordinate_alpha_max(corr: Any, L: Any, kind: int, q: float, a: Any) -> np.ndarray:
    """Per coordinate, the smallest ``alpha`` for which ``w_j = 0`` stays zero from ``w = 0``.

    The maximum over coordinates is ``alpha_max``, the smallest weight for which ``w = 0``
    is a fixed point of coordinate descent (and, for ``l1``, the solution).

    Parameters
    ----------
    corr : ndarray of shape (n_features,)
        ``A^T y / n``, the correlations at ``w = 0``.
    L : ndarray of shape (n_features,)
        ``||A_j||^2 / n``; coordinates with ``L_j = 0`` give 0.
    kind : int
        Penalty code (:data:`PENALTY_CODES`).
    q : float
        Exponent of 'lq'.
    a : ndarray of shape (n_features,)
        CEL0 atom norms.

    Returns
    -------
    alpha : ndarray of shape (n_features,)
        The per-coordinate thresholds.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.cd import coordinate_alpha_max
    >>> coordinate_alpha_max(np.array([2.0, -1.0]), np.ones(2), 1, 0.5, np.ones(2))
    array([2. , 0.5])
    """
    return _coordinate_alpha_max(
        np.ascontiguousarray(corr, dtype=np.float64),
        np.ascontiguousarray(L, dtype=np.float64),
        int(kind),
        float(q),
        np.ascontiguousarray(a, dtype=np.float64),
    )


@njit(cache=True)
def _zero_is_fixed(corr: Any, L: Any, kind: int, alpha: float, q: float, a: Any) -> bool:
    for j in range(corr.shape[0]):
        if L[j] > 0.0 and _prox1(corr[j] / L[j], L[j], kind, alpha, q, a[j]) != 0.0:
            return False
    return True


def zero_is_fixed(corr: Any, L: Any, kind: int, alpha: float, q: float, a: Any) -> bool:
    """Whether every coordinate step from ``w = 0`` leaves zero, with the solver's own prox.

    Parameters
    ----------
    corr, L, kind, q, a
        As in :func:`coordinate_alpha_max`.
    alpha : float
        Penalty weight.

    Returns
    -------
    fixed : bool
        True when zero is a fixed point of coordinate descent at ``alpha``.
    """
    return bool(_zero_is_fixed(corr, L, int(kind), float(alpha), float(q), a))


# ----------------------------------------------------------------------------- certificates
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


def objective(r: Any, w: Any, kind: int, alpha: float, q: float, a: Any) -> float:
    """``1/(2n) ||r||^2 + P(w)`` from the residual ``r = y - A w``.

    Parameters
    ----------
    r : ndarray of shape (n_samples,)
        Residual.
    w : ndarray of shape (n_features,)
        Coefficients.
    kind : int
        Penalty code.
    alpha, q : float
        Penalty weight and 'lq' exponent.
    a : ndarray of shape (n_features,)
        CEL0 atom norms.

    Returns
    -------
    value : float
        The objective.
    """
    return float(_objective(r, w, int(kind), float(alpha), float(q), a))


@njit(cache=True)
def _fixpoint_scores(corr: Any, w: Any, L: Any, kind: int, alpha: float, q: float, a: Any) -> Any:
    d = corr.shape[0]
    score = np.zeros(d)
    for j in range(d):
        if L[j] == 0.0:
            continue
        z = w[j] + corr[j] / L[j]
        score[j] = L[j] * abs(w[j] - _prox1(z, L[j], kind, alpha, q, a[j]))
    return score


def fixpoint_scores(corr: Any, w: Any, L: Any, kind: int, alpha: float, q: float, a: Any) -> Any:
    """Fixed-point residual ``L_j |w_j - prox(w_j + corr_j / L_j)|`` of every coordinate.

    Parameters
    ----------
    corr : ndarray of shape (n_features,)
        ``A^T r / n`` at the current residual.
    w, L, a : ndarray of shape (n_features,)
        Coefficients, ``||A_j||^2 / n`` and CEL0 atom norms.
    kind : int
        Penalty code.
    alpha, q : float
        Penalty weight and 'lq' exponent.

    Returns
    -------
    score : ndarray of shape (n_features,)
        Zero exactly at a coordinate-wise minimiser.
    """
    return _fixpoint_scores(corr, w, L, int(kind), float(alpha), float(q), a)


def dual_gap_l1(r: Any, w: Any, corr: Any, y_sq: float, alpha: float) -> float:
    """Lasso duality gap of ``1/(2n) ||y - A w||^2 + alpha ||w||_1`` (scikit-learn's scaling).

    The dual point is the residual rescaled into the dual feasible set,
    ``theta = r * min(1, alpha / ||A^T r / n||_inf)``.

    Parameters
    ----------
    r : ndarray of shape (n_samples,)
        Residual ``y - A w``.
    w : ndarray of shape (n_features,)
        Coefficients.
    corr : ndarray of shape (n_features,)
        ``A^T r / n``.
    y_sq : float
        ``||y||^2``.
    alpha : float
        Penalty weight.

    Returns
    -------
    gap : float
        Primal minus dual objective (non-negative up to rounding).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.cd import dual_gap_l1
    >>> y = np.array([1.0, -1.0]); w = np.zeros(1); corr = np.array([0.5])
    >>> dual_gap_l1(y, w, corr, float(y @ y), alpha=1.0)  # zero is optimal: no gap
    0.0
    """
    n = r.shape[0]
    dual_norm = float(np.max(np.abs(corr))) if corr.shape[0] else 0.0
    s = 1.0 if dual_norm <= alpha else alpha / dual_norm
    r_sq = float(r @ r)
    ry = r_sq + n * float(w @ corr)  # y.r = ||r||^2 + (A w).r
    primal = 0.5 * r_sq + n * alpha * float(np.sum(np.abs(w)))
    dual = 0.5 * y_sq - 0.5 * (y_sq - 2.0 * s * ry + s * s * r_sq)
    return (primal - dual) / n


# ----------------------------------------------------------------------------- epochs
#: Epochs between two Anderson extrapolations of the Gram epochs (skglm's default).
ANDERSON_K = 5


@njit(cache=True)
def _quad_pen(G: Any, b: Any, w: Any, kind: int, alpha: float, q: float, a: Any) -> float:
    """``w^T G w / 2 - b^T w + P(w)``: the objective on a working set up to a constant."""
    m = w.shape[0]
    val = 0.0
    for j in range(m):
        if w[j] == 0.0:
            if kind == 4:
                val += _pen1(0.0, kind, alpha, q, a[j])
            continue
        gw = 0.0
        for ll in range(m):
            gw += G[j, ll] * w[ll]
        val += 0.5 * w[j] * gw - b[j] * w[j] + _pen1(w[j], kind, alpha, q, a[j])
    return val


def _cd_gram_epochs_impl(
    G: Any,
    cw: Any,
    w: Any,
    L: Any,
    kind: int,
    alpha: float,
    q: float,
    a: Any,
    stop: float,
    max_epochs: int,
) -> int:
    """CD epochs on a working set through its Gram matrix ``G = A_ws^T A_ws / n``.

    ``cw`` holds ``A_ws^T r / n`` on entry; ``w``, ``L``, ``a`` are the working set's
    coefficients, ``||A_j||^2 / n`` and atom norms. A coordinate step costs ``O(|ws|)`` (the
    correlations are updated instead of the residual). Every ``ANDERSON_K`` epochs the last
    iterates are extrapolated (Anderson acceleration, as skglm's ``AndersonCD``) when they
    share one sign pattern; the extrapolated point is kept only if it keeps that pattern and
    lowers the objective, so the objective never increases, for the non-convex penalties
    too. Updates ``w`` and ``cw`` in place and returns the epochs run; it stops once the
    largest fixed-point score on the working set is at most ``stop`` (checked every
    ``ANDERSON_K`` epochs) or after ``max_epochs``.
    """
    m = w.shape[0]
    K = ANDERSON_K
    b = cw.copy()  # A_ws^T (y - A_rest w_rest) / n = cw + G w, constant during the epochs
    for j in range(m):
        for ll in range(m):
            b[j] += G[j, ll] * w[ll]
    hist = np.empty((K + 1, m))
    hist[0] = w
    n_hist = 1
    epochs = 0
    for _ in range(max_epochs):
        epochs += 1
        for j in range(m):
            if L[j] == 0.0:
                continue
            new = _prox1(w[j] + cw[j] / L[j], L[j], kind, alpha, q, a[j])
            delta = new - w[j]
            if delta != 0.0:
                w[j] = new
                for ll in range(m):
                    cw[ll] -= delta * G[j, ll]
        hist[n_hist] = w
        n_hist += 1
        if n_hist == K + 1:
            # Anderson: the affine combination of the last K iterates whose successive
            # differences combine to the smallest norm; tried only when the K + 1 iterates
            # share one sign pattern (CD is then a smooth fixed-point map locally, and the
            # extrapolation cannot jump to another local minimum of a non-convex penalty)
            same = True
            for i in range(K):
                for j in range(m):
                    if np.sign(hist[i, j]) != np.sign(hist[K, j]):
                        same = False
            U = np.empty((K, m))
            for i in range(K):
                U[i] = hist[i + 1] - hist[i]
            C = U @ U.T
            tr = 0.0
            for i in range(K):
                tr += C[i, i]
            if same and tr > 0.0:
                for i in range(K):
                    C[i, i] += 1e-10 * tr
                z = np.linalg.solve(C, np.ones(K))
                zs = z.sum()
                if zs != 0.0 and np.isfinite(zs):
                    w_acc = np.zeros(m)
                    for i in range(K):
                        w_acc += (z[i] / zs) * hist[i + 1]
                    for j in range(m):
                        if np.sign(w_acc[j]) != np.sign(w[j]):
                            same = False
                    if same and _quad_pen(G, b, w_acc, kind, alpha, q, a) < _quad_pen(
                        G, b, w, kind, alpha, q, a
                    ):
                        w[:] = w_acc
                        for j in range(m):
                            c = b[j]
                            for ll in range(m):
                                c -= G[j, ll] * w[ll]
                            cw[j] = c
            hist[0] = w
            n_hist = 1
            worst = 0.0
            for j in range(m):
                if L[j] == 0.0:
                    continue
                sc = L[j] * abs(w[j] - _prox1(w[j] + cw[j] / L[j], L[j], kind, alpha, q, a[j]))
                if sc > worst:
                    worst = sc
            if worst <= stop:
                break
    return epochs


def _cd_dense_epochs_impl(
    XT: Any,
    r: Any,
    w: Any,
    L: Any,
    ws: Any,
    kind: int,
    alpha: float,
    q: float,
    a: Any,
    stop: float,
    max_epochs: int,
) -> int:
    """CD epochs on the working set ``ws`` of a dense design, updating the residual ``r``.

    ``XT`` is the design transposed (C-contiguous rows are columns of ``A``); ``w``, ``L``,
    ``a`` are full-length. Returns the epochs run.
    """
    n = XT.shape[1]
    m = ws.shape[0]
    epochs = 0
    for epoch in range(max_epochs):
        epochs += 1
        for jj in range(m):
            j = ws[jj]
            if L[j] == 0.0:
                continue
            c = 0.0
            for i in range(n):
                c += XT[j, i] * r[i]
            new = _prox1(w[j] + c / (n * L[j]), L[j], kind, alpha, q, a[j])
            delta = new - w[j]
            if delta != 0.0:
                w[j] = new
                for i in range(n):
                    r[i] -= delta * XT[j, i]
        if epoch % 5 == 4:
            worst = 0.0
            for jj in range(m):
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
    return epochs


def _cd_sparse_epochs_impl(
    indptr: Any,
    indices: Any,
    data: Any,
    colsum: Any,
    xbar: Any,
    u_sq: float,
    rt: Any,
    state: Any,
    w: Any,
    L: Any,
    ws: Any,
    kind: int,
    alpha: float,
    q: float,
    a: Any,
    stop: float,
    max_epochs: int,
) -> int:
    """CD epochs on ``ws`` for the implicitly centred CSC design ``A = B - u xbar^T``.

    ``B`` is given by ``indptr, indices, data`` (CSC); ``colsum = B^T u``, ``u_sq = u^T u``.
    The true residual is ``r = rt + c u``; the kernel updates ``rt`` on the nonzeros of a
    column only (``O(nnz_j)`` per step) and the two scalars ``state = [c, u^T rt]``. Then
    ``A_j^T r = B_j^T rt + c colsum_j - xbar_j (u^T rt + c u_sq)``. Returns the epochs run.
    """
    n = rt.shape[0]
    m = ws.shape[0]
    epochs = 0
    for epoch in range(max_epochs):
        epochs += 1
        check = epoch % 5 == 4
        worst = 0.0
        for jj in range(m):
            j = ws[jj]
            if L[j] == 0.0:
                continue
            c = 0.0
            for p in range(indptr[j], indptr[j + 1]):
                c += data[p] * rt[indices[p]]
            c += state[0] * colsum[j] - xbar[j] * (state[1] + state[0] * u_sq)
            z = w[j] + c / (n * L[j])
            new = _prox1(z, L[j], kind, alpha, q, a[j])
            delta = new - w[j]
            if check:
                s = L[j] * abs(delta)
                if s > worst:
                    worst = s
            if delta != 0.0:
                w[j] = new
                for p in range(indptr[j], indptr[j + 1]):
                    rt[indices[p]] -= delta * data[p]
                state[0] += delta * xbar[j]
                state[1] -= delta * colsum[j]
        if check and worst <= stop:
            break
    return epochs


_cd_gram_epochs_numba = njit(cache=True)(_cd_gram_epochs_impl)
_cd_dense_epochs_numba = njit(cache=True)(_cd_dense_epochs_impl)
_cd_sparse_epochs_numba = njit(cache=True)(_cd_sparse_epochs_impl)

register("cd_gram_epochs", "generic")(_cd_gram_epochs_impl)
register("cd_gram_epochs", "numba")(_cd_gram_epochs_numba)
register("cd_dense_epochs", "generic")(_cd_dense_epochs_impl)
register("cd_dense_epochs", "numba")(_cd_dense_epochs_numba)
register("cd_sparse_epochs", "generic")(_cd_sparse_epochs_impl)
register("cd_sparse_epochs", "numba")(_cd_sparse_epochs_numba)


@njit(cache=True)
def _dense_corr_numba(XT: Any, r: Any) -> Any:
    return np.dot(XT, r) / XT.shape[1]


@register("cd_dense_corr", "generic")
def _dense_corr_generic(XT: Any, r: Any) -> Any:
    return XT @ r / XT.shape[1]


register("cd_dense_corr", "numba")(_dense_corr_numba)


@njit(cache=True)
def _csc_column_sq_sums(indptr: Any, data: Any) -> Any:
    d = indptr.shape[0] - 1
    out = np.zeros(d)
    for j in range(d):
        s = 0.0
        for p in range(indptr[j], indptr[j + 1]):
            s += data[p] * data[p]
        out[j] = s
    return out


def csc_column_sq_sums(indptr: Any, data: Any) -> np.ndarray:
    """``sum_i B_ij^2`` of every column of a CSC matrix, without a temporary of size nnz.

    Parameters
    ----------
    indptr : ndarray of int of shape (n_columns + 1,)
        Column pointers.
    data : ndarray of shape (nnz,)
        Values.

    Returns
    -------
    sq : ndarray of shape (n_columns,)
        Squared column norms.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from sparsestat._kernels.cd import csc_column_sq_sums
    >>> B = sp.csc_matrix(np.array([[1.0, 0.0], [2.0, 3.0]]))
    >>> csc_column_sq_sums(B.indptr, B.data)
    array([5., 9.])
    """
    return _csc_column_sq_sums(indptr, data)
