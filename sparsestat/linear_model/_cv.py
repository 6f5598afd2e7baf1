"""Cross-validation along a warm-started path, shared by the ``*CV`` linear models.

As scikit-learn's ``LassoCV``: for every fold the whole path is computed on the training rows
(with the intercept refitted on them), its mean squared error (weighted by the test rows'
``sample_weight``) is recorded on the test rows, and the grid point with the smallest mean
error over the folds is chosen (the first one on ties, that is the sparsest model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import check_cv

__all__ = ["cv_path_mse"]

#: ``path(X_train, y_train, sw_train) -> (coefs (n_features, n_grid), intercepts, n_bad)``
PathFn = Callable[[Any, np.ndarray, Any], tuple[np.ndarray, np.ndarray, int]]


def _fold_mse(path: PathFn, X: Any, y: np.ndarray, sw: Any, train: Any, test: Any) -> Any:
    sw_train = None if sw is None else sw[train]
    coefs, intercepts, n_bad = path(X[train], y[train], sw_train)
    pred = np.asarray(X[test] @ coefs) + intercepts[None, :]
    resid2 = (pred - y[test][:, None]) ** 2
    if sw is None:
        return resid2.mean(axis=0), n_bad
    w = sw[test]
    if float(w.sum()) <= 0:
        return resid2.mean(axis=0), n_bad
    return (w @ resid2) / float(w.sum()), n_bad


def cv_path_mse(
    path: PathFn,
    X: Any,
    y: np.ndarray,
    sample_weight: Any,
    cv: Any,
    n_jobs: Any,
) -> tuple[np.ndarray, int, int]:
    """Mean squared test error of every grid point on every fold.

    Parameters
    ----------
    path : callable
        ``path(X_train, y_train, sw_train)`` returning the coefficients along the grid (one
        column per point), their intercepts and the number of unconverged solves.
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        Design.
    y : ndarray of shape (n_samples,)
        Target.
    sample_weight : ndarray of shape (n_samples,) or None
        Weights (used for training and to weight the test errors).
    cv : int, cross-validation generator or iterable
        As scikit-learn's ``cv``.
    n_jobs : int or None
        Folds run in parallel by joblib.

    Returns
    -------
    mse_path : ndarray of shape (n_grid, n_folds)
        The test errors.
    best : int
        Index of the grid point with the smallest mean error (the first on ties).
    n_bad : int
        Unconverged solves over all folds.
    """
    folds = list(check_cv(cv).split(X, y))
    out = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_fold_mse)(path, X, y, sample_weight, train, test) for train, test in folds
    )
    mse = np.stack([m for m, _ in out], axis=1)
    best = int(np.argmin(mse.mean(axis=1)))
    return mse, best, int(sum(b for _, b in out))
