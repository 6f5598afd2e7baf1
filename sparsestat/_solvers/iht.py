"""Iterative hard thresholding fits: weights, centring, least-squares refits and the k-path.

Everything here runs on the array library of ``X`` (NumPy, CuPy, torch, array-api-strict):
the arithmetic is written against the array API and the iterations are those of
:func:`sparsestat._kernels.iht.iht_solve`. A SciPy sparse ``X`` is never densified: it is
wrapped in an implicitly centred, row-weighted ``LinearOperator`` (``A = B - u xbar^T``), and
the least-squares refit of a support ``S`` solves its ``|S| x |S|`` normal equations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from array_api_compat import device as array_device
from scipy.sparse.linalg import LinearOperator

from sparsestat._kernels._dispatch import backend_name, get_namespace, move_to_namespace
from sparsestat._kernels.iht import adjoint, iht_solve, spectral_norm_sq

__all__ = ["IHTProblem", "iht_fit", "iht_k_path", "make_iht_problem"]


class _CenteredSparse(LinearOperator):
    """``A = B - u xbar^T`` for a CSC matrix ``B`` (rows already scaled by ``u``)."""

    def __init__(self, B: Any, xbar: np.ndarray, u: np.ndarray) -> None:
        self.B, self.xbar, self.u = sp.csc_matrix(B), xbar, u
        super().__init__(dtype=np.float64, shape=B.shape)

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        v = np.ravel(v)
        return self.B @ v - self.u * float(self.xbar @ v)

    def _rmatvec(self, r: np.ndarray) -> np.ndarray:
        r = np.ravel(r)
        return self.B.T @ r - self.xbar * float(self.u @ r)

    def columns(self, idx: np.ndarray) -> np.ndarray:
        """The dense ``n x len(idx)`` block ``A[:, idx]``."""
        return self.B[:, idx].toarray() - np.outer(self.u, self.xbar[idx])

    def normal_equations(self, idx: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(A_S^T A_S, A_S^T y)`` from the sparse columns, in ``O(nnz_S + |S|^2)`` memory."""
        Bs = self.B[:, idx]
        xb = self.xbar[idx]
        cs = np.asarray(Bs.T @ self.u).ravel()
        G = (Bs.T @ Bs).toarray()
        G -= np.outer(xb, cs) + np.outer(cs, xb) - float(self.u @ self.u) * np.outer(xb, xb)
        return G, np.asarray(Bs.T @ y).ravel() - xb * float(self.u @ y)


class IHTProblem:
    """``1/2 ||y - A w||^2`` with ``A``, ``y`` weighted and centred, in the library of ``X``.

    Parameters
    ----------
    A : array or LinearOperator of shape (n_samples, n_features)
        Weighted, centred design.
    y : array of shape (n_samples,)
        Weighted, centred target.
    x_offset : array of shape (n_features,)
        Weighted column means (zeros without intercept).
    y_offset : float
        Weighted target mean.
    xp : namespace
        Array library of the computation.
    """

    def __init__(self, A: Any, y: Any, x_offset: Any, y_offset: float, xp: Any) -> None:
        self.A, self.y, self.x_offset, self.y_offset, self.xp = A, y, x_offset, y_offset, xp
        self.n_features = int(A.shape[1])
        self._lipschitz: float | None = None

    def lipschitz(self) -> float:
        """``||A||_2^2`` (computed once, only when a fixed step needs it)."""
        if self._lipschitz is None:
            self._lipschitz = spectral_norm_sq(self.A)
        return self._lipschitz

    def columns(self, idx: Any) -> Any:
        """Dense columns ``A[:, idx]`` (the support of a least-squares refit)."""
        if isinstance(self.A, _CenteredSparse):
            return self.A.columns(np.asarray(idx))
        return self.xp.take(self.A, idx, axis=1)

    def least_squares(self, idx: Any) -> Any:
        """Minimum-norm least-squares coefficients on the columns ``idx``."""
        xp = self.xp
        if isinstance(self.A, _CenteredSparse):
            # the support's normal equations: no dense n x |S| block (minimum-norm solution)
            G, b = self.A.normal_equations(np.asarray(idx), self.y)
            return scipy.linalg.lstsq(G, b, lapack_driver="gelsd")[0]
        As = self.columns(idx)
        if backend_name(xp) == "numpy":
            sol = np.linalg.lstsq(np.asarray(As), np.asarray(self.y), rcond=None)[0]
            return xp.asarray(sol, dtype=self.y.dtype, device=array_device(self.y))
        return xp.linalg.pinv(As) @ self.y

    def intercept(self, coef: Any) -> float:
        """``y_offset - x_offset @ coef``."""
        return float(self.y_offset - float(self.xp.sum(self.x_offset * coef)))


def make_iht_problem(
    X: Any, y: Any, *, sample_weight: Any = None, fit_intercept: bool = True
) -> IHTProblem:
    """Weight and centre ``(X, y)`` for IHT, in the array library and device of ``X``.

    Weights ``s`` are rescaled to sum to ``n`` and the rows multiplied by ``sqrt(s)`` after
    the weighted means are removed, so that the fit minimises
    ``1/2 sum_i s_i (y_i - x_i w - b)^2`` (integer weights equal repeated rows).

    Parameters
    ----------
    X : array or scipy sparse matrix of shape (n_samples, n_features)
        Design (never modified).
    y : array of shape (n_samples,)
        Target (converted to the library of ``X``).
    sample_weight : array of shape (n_samples,) or None, default=None
        Non-negative weights.
    fit_intercept : bool, default=True
        Remove the (weighted) means.

    Returns
    -------
    problem : IHTProblem
        The weighted, centred problem.
    """
    n, d = X.shape
    if sp.issparse(X):
        xp: Any = np
        dev = None
        y = np.asarray(y, dtype=np.float64)
        s = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    else:
        xp = get_namespace(X)
        dev = array_device(X)
        y = move_to_namespace(y, xp, dev)
        y = xp.astype(y, X.dtype)
        s = move_to_namespace(sample_weight, xp, dev)
        if s is not None:
            s = xp.astype(s, X.dtype)
    if s is not None:
        s = s * (n / float(xp.sum(s)))
    if sp.issparse(X):
        if fit_intercept:
            xbar = np.asarray(X.T @ (np.ones(n) if s is None else s)).ravel() / n
            ybar = float(np.mean(y) if s is None else s @ y / n)
        else:
            xbar, ybar = np.zeros(d), 0.0
        u = np.ones(n) if s is None else np.sqrt(s)
        B = (
            sp.csc_matrix(X, dtype=np.float64)
            if s is None
            else sp.csc_matrix(X.multiply(u[:, None]))
        )
        return IHTProblem(_CenteredSparse(B, xbar, u), u * (y - ybar), xbar, ybar, np)
    if fit_intercept:
        if s is None:
            xbar = xp.mean(X, axis=0)
            ybar = float(xp.mean(y))
        else:
            xbar = xp.sum(X * s[:, None], axis=0) / n
            ybar = float(xp.sum(s * y)) / n
        A, yc = X - xbar, y - ybar
    else:
        xbar, ybar = xp.zeros(d, dtype=X.dtype, device=dev), 0.0
        A, yc = X, y
    if s is not None:
        u = xp.sqrt(s)
        A, yc = A * u[:, None], yc * u
    return IHTProblem(A, yc, xbar, ybar, xp)


def scatter(values: Any, idx: Any, size: int, xp: Any) -> Any:
    """A length-``size`` zero vector with ``values`` at the integer positions ``idx``."""
    if backend_name(xp) == "numpy":
        out = np.zeros(size, dtype=values.dtype)
        out[idx] = values
        return out
    # the array API has no scatter: a (k, size) one-hot product, O(k size) for small k
    cols = xp.arange(size, device=array_device(values))
    onehot = xp.astype(idx[:, None] == cols[None, :], values.dtype)
    return xp.sum(onehot * values[:, None], axis=0)


def iht_fit(
    problem: IHTProblem,
    k: int,
    *,
    step_size: Any = "normalized",
    w0: Any = None,
    max_iter: int = 500,
    tol: float = 1e-7,
    debias: bool = True,
) -> dict[str, Any]:
    """IHT at sparsity ``k`` (least squares directly when ``k >= n_features``).

    Parameters
    ----------
    problem : IHTProblem
        The weighted, centred problem.
    k : int
        Number of nonzero coefficients.
    step_size : float or "normalized", default="normalized"
        Fixed step as a fraction of ``1 / ||A||_2^2``, or the normalised-IHT step.
    w0 : array of shape (n_features,) or None, default=None
        Start (projected on ``k``-sparse vectors first).
    max_iter : int, default=500
        Maximum number of iterations.
    tol : float, default=1e-7
        Relative change of the iterates at which IHT stops.
    debias : bool, default=True
        Refit the support by least squares.

    Returns
    -------
    result : dict
        ``coef``, ``n_iter``, ``change`` (last relative change) and ``converged`` (the change
        is at most ``tol``, or, with ``debias``, the result is a fixed point of the IHT step:
        see :func:`is_fixed_point`).
    """
    xp, d = problem.xp, problem.n_features
    y = problem.y
    if k >= d:
        # the constraint is inactive: the fixed point of IHT is the least-squares solution
        coef = problem.least_squares(xp.arange(d, device=array_device(y)))
        return {"coef": coef, "n_iter": 0, "change": 0.0, "converged": True}
    if w0 is None:
        w0 = xp.zeros(d, dtype=y.dtype, device=array_device(y))
    if step_size == "normalized":
        step = None
    else:
        L = problem.lipschitz()
        step = float(step_size) / L if L > 0 else 0.0
    coef, n_iter, change = iht_solve(problem.A, y, k, step, w0, max_iter, tol)
    converged = bool(change <= tol)
    if debias:
        support = xp.nonzero(coef != 0)[0]
        if support.shape[0]:
            coef = scatter(problem.least_squares(support), support, d, xp)
            if not converged:
                converged = is_fixed_point(problem, coef, support, step)
    return {"coef": coef, "n_iter": int(n_iter), "change": float(change), "converged": converged}


def is_fixed_point(problem: IHTProblem, coef: Any, support: Any, step: float | None) -> bool:
    """Whether the debiased ``coef`` is a fixed point of an IHT step (L-stationarity).

    ``coef`` are least-squares coefficients on their support ``S`` (zero gradient there), so
    an IHT step of size ``mu`` from them returns them exactly when no coordinate off ``S``
    would enter: ``mu max_{j not in S} |g_j| <= min_{i in S} |w_i|`` with
    ``g = A^T (y - A w)``. ``mu`` is the fixed step, or ``1 / ||A||_2^2`` for the normalised
    rule: the coefficients are then L-stationary (Beck and Eldar 2013), the optimality
    condition that the limit points of classical IHT satisfy.
    """
    xp = problem.xp
    A = problem.A
    mu = step
    if mu is None:
        L = problem.lipschitz()
        if L <= 0:
            return True
        mu = 1.0 / L
    grad = adjoint(A) @ (problem.y - A @ coef)
    on = coef != 0
    off_max = float(xp.max(xp.where(on, xp.zeros_like(grad), xp.abs(grad))))
    on_min = float(xp.min(xp.abs(xp.take(coef, support, axis=0))))
    return mu * off_max <= on_min


def iht_k_path(
    problem: IHTProblem, ks: Any, **params: Any
) -> tuple[list[Any], list[dict[str, Any]]]:
    """IHT for increasing sparsities ``ks``, each warm-started from the previous iterate.

    Parameters
    ----------
    problem : IHTProblem
        The weighted, centred problem.
    ks : sequence of int
        Increasing sparsity levels.
    **params : dict
        ``step_size``, ``max_iter``, ``tol``, ``debias`` of :func:`iht_fit`.

    Returns
    -------
    coefs : list of arrays
        The coefficients at each ``k``.
    results : list of dict
        The results of :func:`iht_fit`.
    """
    coefs, results = [], []
    w = None
    for k in ks:
        res = iht_fit(problem, int(k), w0=w, **params)
        w = res["coef"]
        coefs.append(w)
        results.append(res)
    return coefs, results


def n_nonzero_default(n_features: int) -> int:
    """Default sparsity ``max(1, n_features // 10)``."""
    return max(1, math.floor(n_features / 10))
