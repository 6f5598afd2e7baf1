"""Geometric median by Weiszfeld's iteration (array API: NumPy, CuPy, torch)."""

from __future__ import annotations

from typing import Any

from sparsestat._kernels._dispatch import get_namespace, register

__all__ = ["geometric_median"]


@register("geometric_median", "generic")
def geometric_median(
    X: Any,
    max_iter: int = 100,
    tol: float = 1e-7,
    eps: float = 1e-12,
    weights: Any = None,
) -> Any:
    """Point minimising the (weighted) sum of Euclidean distances to the rows of ``X``.

    Parameters
    ----------
    X : array of shape (n, d)
        Points (rows), any array-API library; the result has the same library and dtype.
    max_iter : int, default=100
        Maximum number of Weiszfeld steps.
    tol : float, default=1e-7
        Stop when the step is below ``tol`` times the scale of the data.
    eps : float, default=1e-12
        Floor on distances (a point equal to the iterate would divide by 0).
    weights : array of shape (n,), default=None
        Non-negative row weights (None: all 1); integer weights act as repeated rows.

    Returns
    -------
    median : array of shape (d,)
        The (approximate) geometric median.

    Notes
    -----
    Weiszfeld's iteration ``m <- sum_i (w_i / ||x_i - m||) x_i / sum_i (w_i / ||x_i - m||)``
    from the (weighted) mean. Each step costs O(n d). Used as the pre-bias initialisation of
    sparse autoencoders (Gao et al. 2024).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [100.0, 100.0]])
    >>> bool(np.linalg.norm(geometric_median(X)) < 1.0)
    True
    >>> w = np.array([1.0, 3.0, 1.0, 1.0])
    >>> np.allclose(geometric_median(X, weights=w), geometric_median(X[[0, 1, 1, 1, 2, 3]]))
    True
    """
    xp = get_namespace(X)
    if weights is None:
        m = xp.mean(X, axis=0)
    else:
        weights = xp.asarray(weights, dtype=X.dtype, device=X.device)
        m = xp.sum(weights[:, None] * X, axis=0) / xp.sum(weights)
    scale = float(xp.max(xp.abs(X))) if X.shape[0] else 0.0
    for _ in range(int(max_iter)):
        dist = xp.sqrt(xp.sum((X - m) ** 2, axis=1))
        w = 1.0 / xp.clip(dist, eps, None)
        if weights is not None:
            w = w * weights
        new = xp.sum(w[:, None] * X, axis=0) / xp.sum(w)
        step = float(xp.sqrt(xp.sum((new - m) ** 2)))
        m = new
        if step <= tol * max(scale, 1.0):
            break
    return m
