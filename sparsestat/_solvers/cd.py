"""Coordinate descent with working sets, regularisation paths and ``alpha_max``.

Solves, for a separable penalty handed down as a kernel code (l1, l0, l1/2, lq or CEL0),

    min_w  1/(2 n) ||y - A w||^2 + P(w),

the scaling of scikit-learn's ``Lasso``. ``A`` is the (weighted, centred) design of a
:class:`LeastSquaresProblem`: dense designs are centred and row-scaled once; sparse (CSC/CSR)
designs are never densified, their centring is implicit (``A = B - u xbar^T``, ``B`` the
row-scaled sparse matrix, ``u`` the square roots of the weights).

The outer loop scores every feature by its fixed-point residual, grows a working set (the
current support plus the worst-scored features, at least ``p0`` and twice the support, as in
skglm's ``AndersonCD``) and runs coordinate-descent epochs on it (Numba kernels of
:mod:`sparsestat._kernels.cd`). A working set of at most ``n / 2`` features is solved through
its Gram matrix (``O(|ws|)`` per coordinate step, with Anderson acceleration every few
epochs), larger ones by updating the residual. The inner tolerance is ``0.3`` times the
largest score and shrinks by at least ``0.3`` at every outer iteration that does not meet the
certificate, so badly conditioned problems converge instead of repeating inner solves that
stop too early.

Certificates: for ``l1`` the duality gap divided by ``||y||^2 / n`` (scikit-learn's relative
criterion); for the non-convex penalties the fixed-point residual
``max_j L_j |w_j - prox(w_j + A_j^T r / (n L_j))|`` divided by ``max(||A^T y||_inf / n, tiny)``,
zero exactly at the coordinate-wise minimisers that CD converges to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsestat._kernels._dispatch import get_kernel
from sparsestat._kernels.cd import (
    ALPHA_MAX_MARGIN,
    PENALTY_CODES,
    coordinate_alpha_max,
    csc_column_sq_sums,
    dual_gap_l1,
    fixpoint_scores,
    objective,
    zero_is_fixed,
)
from sparsestat.utils import progress_bar

__all__ = ["LeastSquaresProblem", "alpha_max", "cd_path", "cd_solve", "make_problem"]

_TINY = 1e-300


class _DenseDesign:
    """A dense design ``A`` stored transposed (``XT``, C-contiguous: columns are rows)."""

    def __init__(self, A: np.ndarray) -> None:
        self.XT = np.ascontiguousarray(A.T)  # no copy for a Fortran-ordered A
        self.n_samples = A.shape[0]
        self.sq_norms = np.einsum("ji,ji->j", self.XT, self.XT) / self.n_samples

    def corr(self, r: np.ndarray) -> np.ndarray:
        return get_kernel("cd_dense_corr", r)(self.XT, r)

    def gram(self, ws: np.ndarray) -> np.ndarray:
        Xw = self.XT[ws]
        return np.ascontiguousarray(Xw @ Xw.T / self.n_samples)

    def matvec_ws(self, ws: np.ndarray, dw: np.ndarray) -> np.ndarray:
        return dw @ self.XT[ws]

    def residual_epochs(self, r: np.ndarray, w: np.ndarray, ws: np.ndarray, *args: Any) -> int:
        return int(get_kernel("cd_dense_epochs", r)(self.XT, r, w, self.sq_norms, ws, *args))


class _SparseDesign:
    """``A = B - u xbar^T`` with ``B`` a CSC matrix; nothing dense of size ``n x p``."""

    def __init__(self, B: Any, xbar: np.ndarray, u: np.ndarray) -> None:
        # a CSC float64 matrix is used as it is (never copied, never modified)
        self.B = sp.csc_matrix(B, dtype=np.float64)
        self.xbar, self.u = xbar, u
        self.n_samples = self.B.shape[0]
        self.colsum = np.asarray(self.B.T @ u).ravel()
        self.u_sq = float(u @ u)
        col_sq = csc_column_sq_sums(self.B.indptr, self.B.data)
        sq = col_sq - 2.0 * xbar * self.colsum + self.u_sq * xbar**2
        self.sq_norms = np.maximum(sq, 0.0) / self.n_samples

    def corr(self, r: np.ndarray) -> np.ndarray:
        return (self.B.T @ r - self.xbar * float(self.u @ r)) / self.n_samples

    def gram(self, ws: np.ndarray) -> np.ndarray:
        Bw = self.B[:, ws]
        xb, cs = self.xbar[ws], self.colsum[ws]
        G = (Bw.T @ Bw).toarray()
        G -= np.outer(xb, cs) + np.outer(cs, xb) - self.u_sq * np.outer(xb, xb)
        return np.ascontiguousarray(G / self.n_samples)

    def matvec_ws(self, ws: np.ndarray, dw: np.ndarray) -> np.ndarray:
        return self.B[:, ws] @ dw - self.u * float(self.xbar[ws] @ dw)

    def residual_epochs(self, r: np.ndarray, w: np.ndarray, ws: np.ndarray, *args: Any) -> int:
        state = np.array([0.0, float(self.u @ r)])
        epochs = get_kernel("cd_sparse_epochs", r)(
            self.B.indptr,
            self.B.indices,
            self.B.data,
            self.colsum,
            self.xbar,
            self.u_sq,
            r,
            state,
            w,
            self.sq_norms,
            ws,
            *args,
        )
        r += state[0] * self.u  # r held B's residual; add the centring part back
        return int(epochs)


@dataclass
class LeastSquaresProblem:
    """``1/(2n) ||y - A w||^2`` with ``A`` and ``y`` weighted and centred as asked.

    Attributes
    ----------
    design : object
        The design ``A`` (dense or implicit sparse) with ``corr``, ``gram``, ``matvec_ws``.
    y : ndarray of shape (n_samples,)
        The weighted, centred target.
    x_offset : ndarray of shape (n_features,)
        Weighted column means removed (zeros without intercept).
    y_offset : float
        Weighted target mean removed (0 without intercept).
    """

    design: Any
    y: np.ndarray
    x_offset: np.ndarray
    y_offset: float

    @property
    def sq_norms(self) -> np.ndarray:
        """``||A_j||^2 / n`` of every column."""
        return self.design.sq_norms

    @property
    def n_features(self) -> int:
        """Number of columns of ``A``."""
        return int(self.design.sq_norms.shape[0])

    def intercept(self, coef: np.ndarray) -> float:
        """The intercept ``y_offset - x_offset @ coef`` that goes with ``coef``."""
        return float(self.y_offset - self.x_offset @ coef)


def make_problem(
    X: Any, y: np.ndarray, *, sample_weight: Any = None, fit_intercept: bool = True
) -> LeastSquaresProblem:
    """Weight and centre ``(X, y)`` into the scaled least-squares problem of the solvers.

    With weights ``s`` (rescaled to sum to ``n``, as scikit-learn's ``Lasso`` does) the
    problem is ``1/(2 sum s) sum_i s_i (y_i - x_i w - b)^2``: rows are multiplied by
    ``sqrt(s_i)`` after the weighted means are removed. Integer weights then equal repeated
    rows and zero weights equal removed rows.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix of shape (n_samples, n_features)
        Float64 design (never modified; sparse input stays sparse).
    y : ndarray of shape (n_samples,)
        Float64 target.
    sample_weight : ndarray of shape (n_samples,) or None, default=None
        Non-negative weights.
    fit_intercept : bool, default=True
        Remove the (weighted) means.

    Returns
    -------
    problem : LeastSquaresProblem
        The design, target and offsets.
    """
    n, d = X.shape
    if sample_weight is None:
        s = None
        # X.T @ ones: the sparse matrix's mean() would copy X to upcast it first
        xbar = np.asarray(X.T @ np.ones(n)).ravel() / n if fit_intercept else np.zeros(d)
        ybar = float(y.mean()) if fit_intercept else 0.0
    else:
        s = np.asarray(sample_weight, dtype=np.float64) * (n / float(np.sum(sample_weight)))
        xbar = np.asarray(X.T @ s).ravel() / n if fit_intercept else np.zeros(d)
        ybar = float(s @ y) / n if fit_intercept else 0.0
    yc = y - ybar
    if sp.issparse(X):
        u = np.ones(n) if s is None else np.sqrt(s)
        B = X if s is None else sp.csc_matrix(X.multiply(u[:, None]))
        design: Any = _SparseDesign(B, xbar, u)
        y_eff = yc if s is None else u * yc
    else:
        if fit_intercept or s is not None:
            A = np.array(X, dtype=np.float64, order="F", copy=True)  # never the caller's X
            A -= xbar
            if s is not None:
                u = np.sqrt(s)
                A *= u[:, None]
                yc = yc * u
        else:
            A = np.asfortranarray(X, dtype=np.float64)
        design = _DenseDesign(A)
        y_eff = yc
    return LeastSquaresProblem(design, np.ascontiguousarray(y_eff, dtype=np.float64), xbar, ybar)


def _atom_norms(problem: LeastSquaresProblem, atom_norms: Any) -> np.ndarray:
    d = problem.n_features
    if atom_norms is None:
        return np.sqrt(problem.sq_norms)
    a = np.asarray(atom_norms, dtype=np.float64).copy()
    if a.shape != (d,):
        raise ValueError(f"atom_norms must have shape ({d},); got {a.shape}")
    return a


def alpha_max(
    problem: LeastSquaresProblem, penalty: str, *, q: float = 0.5, atom_norms: Any = None
) -> float:
    """Smallest ``alpha`` (times ``1 + 1e-10``) for which ``w = 0`` is a fixed point of CD.

    Computed from the correlations and column norms the solver itself uses, then checked with
    the solver's own coordinate prox, so that the first solve of a path at ``alpha_max``
    returns zero on every CPU: the relative margin of ``1e-10`` keeps every threshold
    comparison there far from a tie decided by rounding.

    Parameters
    ----------
    problem : LeastSquaresProblem
        The problem.
    penalty : str
        Penalty name (a key of :data:`sparsestat._kernels.cd.PENALTY_CODES`).
    q : float, default=0.5
        Exponent of 'lq'.
    atom_norms : ndarray or None, default=None
        CEL0 atom norms (``sqrt(L)`` when None).

    Returns
    -------
    alpha_max : float
        The threshold (0 when ``A^T y = 0``).
    """
    kind = PENALTY_CODES[penalty]
    L = problem.sq_norms
    a = _atom_norms(problem, atom_norms)
    corr0 = problem.design.corr(problem.y)
    per = coordinate_alpha_max(corr0, L, kind, q, a)
    amax = float(per.max()) if per.size else 0.0
    if amax <= 0.0:
        return 0.0
    amax *= 1.0 + ALPHA_MAX_MARGIN
    for _ in range(100):  # never more than one pass in practice: the margin is far above ulps
        if zero_is_fixed(corr0, L, kind, amax, q, a):
            break
        amax *= 1.0 + ALPHA_MAX_MARGIN
    return amax


def cd_solve(
    problem: LeastSquaresProblem,
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
    verbose: int = 0,
) -> dict[str, Any]:
    """Minimise ``1/(2n) ||y - A w||^2 + P(w)`` by coordinate descent with working sets.

    Parameters
    ----------
    problem : LeastSquaresProblem
        Design and target (see :func:`make_problem`).
    penalty : str
        Penalty name (a key of :data:`sparsestat._kernels.cd.PENALTY_CODES`).
    alpha : float
        Penalty weight (non-negative).
    q : float, default=0.5
        Exponent of 'lq', in (0, 1].
    atom_norms : ndarray of shape (n_features,) or None, default=None
        CEL0 column norms ``a_j``; ``||A_j|| / sqrt(n)`` (the norms of the scaled design, for
        which CEL0 is the exact continuous relaxation) when None.
    w0 : ndarray of shape (n_features,) or None, default=None
        Warm start (not modified); zeros when None.
    tol : float, default=1e-6
        Stop when the relative certificate is at most ``tol``.
    max_iter : int, default=100
        Maximum number of outer (working-set) iterations.
    max_epochs : int, default=1000
        Maximum number of CD epochs per working set.
    p0 : int, default=10
        Minimum working-set size.
    verbose : int, default=0
        Progress bar over the outer iterations.

    Returns
    -------
    result : dict
        ``coef``, ``n_iter`` (outer iterations: scoring passes, at least 1 and at most
        ``max_iter``), ``n_epochs``, ``certificate``,
        ``certificate_kind`` ('duality_gap' or 'fixpoint_distance'), ``converged`` and
        ``objective``.

    Notes
    -----
    One epoch costs ``O(n |WS|)`` (``O(|WS|^2)`` through the Gram matrix); scoring all
    features one product ``A^T r``. For non-convex penalties the result is a coordinate-wise
    minimiser that depends on ``w0``.
    """
    design, y = problem.design, problem.y
    kind = PENALTY_CODES[penalty]
    n, d = y.shape[0], problem.n_features
    L = problem.sq_norms
    a = _atom_norms(problem, atom_norms)
    alpha, q = float(alpha), float(q)
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=np.float64, copy=True)
    support = np.flatnonzero(w)
    r = y.copy() if support.size == 0 else y - design.matvec_ws(support, w[support])
    y_sq = float(y @ y)
    grad_scale = max(float(np.max(np.abs(design.corr(y)))) if d else 0.0, _TINY)
    epochs_fn = get_kernel("cd_gram_epochs", y)

    def certify() -> tuple[float, np.ndarray, np.ndarray]:
        corr = design.corr(r)
        score = fixpoint_scores(corr, w, L, kind, alpha, q, a)
        if kind == 0:
            cert = dual_gap_l1(r, w, corr, y_sq, alpha) / max(y_sq / n, _TINY)
        else:
            cert = float(np.max(score)) / grad_scale if d else 0.0
        return cert, score, corr

    n_epochs = 0
    prev_stop = np.inf
    cert = np.inf
    it = 0
    bar = progress_bar(total=max_iter, verbose=verbose, desc=f"CD ({penalty})", unit="ws")
    try:
        for it in range(max_iter + 1):
            cert, score, corr = certify()
            bar.set_postfix(certificate=f"{cert:.2e}", refresh=False)
            if cert <= tol or it == max_iter:
                break
            max_score = float(np.max(score))
            on = w != 0
            ranked = np.where(on, np.inf, score)
            ws_size = min(d, max(p0, 2 * int(np.count_nonzero(on))))
            ws = np.argsort(-ranked, kind="stable")[:ws_size]
            stop = 0.3 * min(max_score, prev_stop)
            if kind != 0:
                stop = max(stop, 0.3 * tol * grad_scale)
            prev_stop = stop
            if 2 * ws_size <= n:
                G = design.gram(ws)
                cw = np.ascontiguousarray(corr[ws])
                w_ws = np.ascontiguousarray(w[ws])
                w_old = w_ws.copy()
                n_epochs += int(
                    epochs_fn(G, cw, w_ws, L[ws], kind, alpha, q, a[ws], stop, max_epochs)
                )
                w[ws] = w_ws
                moved = np.flatnonzero(w_ws != w_old)
                if moved.size:
                    r -= design.matvec_ws(ws[moved], (w_ws - w_old)[moved])
            else:
                n_epochs += design.residual_epochs(r, w, ws, kind, alpha, q, a, stop, max_epochs)
            bar.update(1)
    finally:
        bar.close()
    return {
        "coef": w,
        "n_iter": min(int(it) + 1, max_iter),  # scoring passes, the final check included
        "n_epochs": int(n_epochs),
        "certificate": float(cert),
        "certificate_kind": "duality_gap" if kind == 0 else "fixpoint_distance",
        "converged": bool(cert <= tol),
        "objective": objective(r, w, kind, alpha, q, a),
    }


def cd_path(
    problem: LeastSquaresProblem,
    penalty: str,
    alphas: np.ndarray,
    *,
    q: float = 0.5,
    atom_norms: Any = None,
    w0: Any = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    verbose: int = 0,
) -> dict[str, Any]:
    """Solve along a decreasing grid of ``alphas``, each solve warm-started by the previous.

    Parameters
    ----------
    problem : LeastSquaresProblem
        Design and target.
    penalty : str
        Penalty name.
    alphas : ndarray of shape (n_alphas,)
        The grid (visited in the given order).
    q, atom_norms, tol, max_iter
        As in :func:`cd_solve`.
    w0 : ndarray or None, default=None
        Start of the first solve.
    verbose : int, default=0
        Progress bar over the grid.

    Returns
    -------
    result : dict
        ``coefs`` (n_features, n_alphas), ``certificates``, ``converged`` (bool array),
        ``n_iter`` (outer iterations per alpha).
    """
    d = problem.n_features
    coefs = np.zeros((d, len(alphas)))
    certs = np.zeros(len(alphas))
    conv = np.zeros(len(alphas), dtype=bool)
    n_iter = np.zeros(len(alphas), dtype=np.int64)
    w = w0
    for i in progress_bar(range(len(alphas)), verbose=verbose, desc="path", unit="alpha"):
        res = cd_solve(
            problem,
            penalty,
            float(alphas[i]),
            q=q,
            atom_norms=atom_norms,
            w0=w,
            tol=tol,
            max_iter=max_iter,
        )
        w = res["coef"]
        coefs[:, i] = w
        certs[i] = res["certificate"]
        conv[i] = res["converged"]
        n_iter[i] = res["n_iter"]
    return {"coefs": coefs, "certificates": certs, "converged": conv, "n_iter": n_iter}
