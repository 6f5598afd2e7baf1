"""Iterative hard thresholding (projected gradient onto k-sparse vectors), array-API generic.

The design ``X`` is an array of any array-API library (NumPy, CuPy, torch, array-api-strict)
or a SciPy ``LinearOperator`` (an implicitly centred sparse matrix): the kernels only use
``X @ v`` and ``X^T @ r``.
"""

from __future__ import annotations

from typing import Any

from scipy.sparse.linalg import LinearOperator

from sparsestat._kernels._dispatch import get_namespace
from sparsestat._kernels.prox import project_abs_topk

__all__ = ["adjoint", "iht_solve", "spectral_norm_sq"]


def adjoint(X: Any) -> Any:
    """``X^T`` of an array (any array-API library) or of a SciPy ``LinearOperator``.

    Parameters
    ----------
    X : array or LinearOperator of shape (n, p)
        Matrix.

    Returns
    -------
    XT : array or LinearOperator of shape (p, n)
        Its transpose (a view for arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.iht import adjoint
    >>> adjoint(np.ones((2, 3))).shape
    (3, 2)
    """
    if isinstance(X, LinearOperator):
        return X.T
    return get_namespace(X).permute_dims(X, (1, 0))


def spectral_norm_sq(X: Any, n_iter: int = 100, tol: float = 1e-10, seed: int = 0) -> float:
    """Squared largest singular value of ``X`` (exact for small X, power iteration otherwise).

    Parameters
    ----------
    X : array or LinearOperator of shape (n, p)
        Matrix.
    n_iter : int, default=100
        Maximum number of power iterations (used when ``min(n, p) > 500``).
    tol : float, default=1e-10
        Relative change at which the power iteration stops.
    seed : int, default=0
        Seed of the starting vector.

    Returns
    -------
    L : float
        ``||X||_2^2``, the Lipschitz constant of the gradient of ``1/2 ||y - X w||^2``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.iht import spectral_norm_sq
    >>> spectral_norm_sq(np.diag([3.0, 1.0]))
    9.0
    """
    import numpy as np

    n, p = X.shape
    XT = adjoint(X)
    if isinstance(X, LinearOperator):
        xp: Any = np
        v = np.random.default_rng(seed).standard_normal(p)
    else:
        xp = get_namespace(X)
        if min(n, p) <= 500:
            G = X @ XT if n <= p else XT @ X
            return float(xp.max(xp.linalg.eigvalsh(G)))
        v0 = np.random.default_rng(seed).standard_normal(p)
        v = xp.asarray(v0, dtype=X.dtype, device=getattr(X, "device", None))
    v = v / xp.linalg.vector_norm(v)
    lam = 0.0
    for _ in range(n_iter):
        w = XT @ (X @ v)
        new = float(xp.linalg.vector_norm(w))
        if new == 0.0:
            return 0.0
        v = w / new
        if abs(new - lam) <= tol * new:
            lam = new
            break
        lam = new
    return lam


def iht_solve(
    X: Any,
    y: Any,
    k: int,
    step: float | None,
    w0: Any,
    max_iter: int,
    tol: float,
) -> tuple[Any, int, float]:
    """Run IHT ``w <- H_k(w + mu X^T (y - X w))`` until the iterates stop moving.

    With a float ``step`` the step is fixed (classical IHT, Blumensath and Davies 2009). With
    ``step=None`` it is the normalised IHT step of Blumensath and Davies (2010):
    ``mu = ||g_S||^2 / ||X g_S||^2`` on the current support ``S``, halved while a support
    change would break ``mu <= 0.99 ||w_new - w||^2 / ||X (w_new - w)||^2`` (which keeps the
    residual non-increasing).

    Parameters
    ----------
    X : array or LinearOperator of shape (n, p)
        Design.
    y : array of shape (n,)
        Targets (their library is the one computed in).
    k : int
        Sparsity level (entries kept by the projection).
    step : float or None
        Fixed step (at most ``1 / ||X||_2^2`` for a monotone residual), or None for the
        normalised step.
    w0 : array of shape (p,)
        Starting point (projected first).
    max_iter : int
        Maximum number of iterations.
    tol : float
        Stop when ``max|w_new - w| <= tol * max(1, max|w|)``.

    Returns
    -------
    w : array of shape (p,)
        Final iterate (at most ``k`` nonzeros).
    n_iter : int
        Iterations run.
    change : float
        The last relative change (the stopping certificate).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.iht import iht_solve
    >>> X = np.eye(3)
    >>> w, n_iter, change = iht_solve(X, np.array([0.1, 2.0, -3.0]), 2, 1.0, np.zeros(3), 10, 1e-8)
    >>> w
    array([ 0.,  2., -3.])
    """
    xp = get_namespace(y)
    Xt = adjoint(X)
    w = project_abs_topk(w0, k)
    change = float("inf")
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is returned
        grad = Xt @ (y - X @ w)
        if step is None:
            w_new = _normalised_step(X, xp, w, grad, k)
        else:
            w_new = project_abs_topk(w + step * grad, k)
        scale = max(1.0, float(xp.max(xp.abs(w_new))))
        change = float(xp.max(xp.abs(w_new - w))) / scale
        w = w_new
        if change <= tol:
            break
    return w, n_iter, change


def _normalised_step(X: Any, xp: Any, w: Any, grad: Any, k: int) -> Any:
    """One normalised-IHT update (Blumensath and Davies 2010, Algorithm 2)."""
    on = w != 0
    if not bool(xp.any(on)):
        on = project_abs_topk(grad, k) != 0
    g_s = xp.where(on, grad, xp.zeros_like(grad))
    denom = float(xp.sum((X @ g_s) ** 2))
    if denom <= 0.0:
        return w
    mu = float(xp.sum(g_s**2)) / denom
    for _ in range(60):
        w_new = project_abs_topk(w + mu * grad, k)
        if bool(xp.all((w_new != 0) == on)):
            return w_new
        diff = w_new - w
        bound = 0.99 * float(xp.sum(diff**2)) / max(float(xp.sum((X @ diff) ** 2)), 1e-300)
        if mu <= bound:
            return w_new
        mu /= 2.0
    return w_new
