"""Geometric median by Weiszfeld's iteration (array API: NumPy, CuPy, torch)."""

from __future__ import annotations

from typing import Any

from sparsestat._kernels._dispatch import get_namespace, register

__all__ = ["geometric_median"]


@register("geometric_median", "generic")
def geometric_median(X: Any, max_iter: int = 100, tol: float = 1e-7, eps: float = 1e-12) -> Any:
    """Point minimising the sum of Euclidean distances to the rows of ``X`` (Weiszfeld).

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

    Returns
    -------
    median : array of shape (d,)
        The (approximate) geometric median.

    Notes
    -----
    Starts from the mean. Each step costs O(n d). Used as the pre-bias initialisation of
    sparse autoencoders (Gao et al. 2024).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [100.0, 100.0]])
    >>> bool(np.linalg.norm(geometric_median(X)) < 1.0)
    True
    """
    xp = get_namespace(X)
    m = xp.mean(X, axis=0)
    scale = float(xp.max(xp.abs(X))) if X.shape[0] else 0.0
    for _ in range(int(max_iter)):
        dist = xp.sqrt(xp.sum((X - m) ** 2, axis=1))
        w = 1.0 / xp.clip(dist, eps, None)
        new = xp.sum(w[:, None] * X, axis=0) / xp.sum(w)
        step = float(xp.sqrt(xp.sum((new - m) ** 2)))
        m = new
        if step <= tol * max(scale, 1.0):
            break
    return m
