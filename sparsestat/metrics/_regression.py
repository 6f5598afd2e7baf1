"""Recovery metrics for sparse regression and signal estimation."""

from __future__ import annotations

import numpy as np

__all__ = ["nmse", "nmse_db", "prediction_error", "support_recovery"]


def _pair(x_true, x_hat, name_true="x_true", name_hat="x_hat"):
    a = np.asarray(x_true)
    b = np.asarray(x_hat)
    if a.shape != b.shape:
        raise ValueError(
            f"{name_true} and {name_hat} must have the same shape; got {a.shape} and {b.shape}"
        )
    if a.size == 0:
        raise ValueError(f"{name_true} is empty")
    for arr, nm in ((a, name_true), (b, name_hat)):
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"{nm} must be numeric; got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{nm} contains NaN or infinity")
    return a, b


def nmse(x_true, x_hat, *, axis=None):
    """Normalised mean squared error ``||x_hat - x_true||^2 / ||x_true||^2`` (linear scale).

    Parameters
    ----------
    x_true : array-like
        Reference signal (real or complex).
    x_hat : array-like of the same shape
        Estimate.
    axis : int or None, default=None
        Reduce over this axis only (e.g. one NMSE per column); None reduces over everything.

    Returns
    -------
    nmse : float or ndarray
        The NMSE; ``inf`` when ``x_true`` is zero and ``x_hat`` is not.

    Examples
    --------
    >>> from sparsestat.metrics import nmse
    >>> nmse([1.0, 0.0], [0.9, 0.0])
    0.01...
    """
    a, b = _pair(x_true, x_hat)
    num = np.sum(np.abs(b - a) ** 2, axis=axis)
    den = np.sum(np.abs(a) ** 2, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, 0.0))
    return float(out) if np.ndim(out) == 0 else out


def nmse_db(x_true, x_hat, *, axis=None):
    """NMSE in decibels, ``10 log10(nmse)``.

    Parameters
    ----------
    x_true : array-like
        Reference signal.
    x_hat : array-like of the same shape
        Estimate.
    axis : int or None, default=None
        Reduce over this axis only; None reduces over everything.

    Returns
    -------
    nmse_db : float or ndarray
        The NMSE in dB (``-inf`` for an exact estimate).

    Examples
    --------
    >>> from sparsestat.metrics import nmse_db
    >>> round(nmse_db([1.0, 0.0], [0.9, 0.0]), 6)
    -20.0
    """
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(nmse(x_true, x_hat, axis=axis))
    return float(out) if np.ndim(out) == 0 else out


def support_recovery(coef_true, coef_hat, *, tol=0.0):
    """Support recovery scores of an estimate against the true coefficients.

    The estimated support is ``{j : |coef_hat_j| > tol}``; the true support is
    ``{j : coef_true_j != 0}``.

    Parameters
    ----------
    coef_true : array-like of shape (n_features,)
        True coefficients.
    coef_hat : array-like of shape (n_features,)
        Estimated coefficients.
    tol : float, default=0.0
        Magnitude above which an estimated coefficient counts as selected.

    Returns
    -------
    scores : dict
        ``precision`` (``|S_hat & S| / |S_hat|``), ``recall`` (``|S_hat & S| / |S|``),
        ``f1`` and ``jaccard`` (``|S_hat & S| / |S_hat or S|``); an empty set scores 1.0
        against an empty set.

    Examples
    --------
    >>> from sparsestat.metrics import support_recovery
    >>> support_recovery([0, 1, 2, 0], [0, 1, 0, 3])
    {'precision': 0.5, 'recall': 0.5, 'f1': 0.5, 'jaccard': 0.3333333333333333}
    """
    a, b = _pair(coef_true, coef_hat, "coef_true", "coef_hat")
    if tol < 0:
        raise ValueError(f"tol must be non-negative; got {tol}")
    true = a.ravel() != 0
    est = np.abs(b.ravel()) > tol
    inter = int(np.sum(true & est))
    union = int(np.sum(true | est))
    n_true, n_est = int(true.sum()), int(est.sum())
    precision = inter / n_est if n_est else float(n_true == 0)
    recall = inter / n_true if n_true else float(n_est == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    jaccard = inter / union if union else 1.0
    return {"precision": precision, "recall": recall, "f1": f1, "jaccard": jaccard}


def prediction_error(X, coef_true, coef_hat):
    """In-sample prediction error ``||X (coef_hat - coef_true)||^2 / n_samples``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Design.
    coef_true : array-like of shape (n_features,)
        True coefficients.
    coef_hat : array-like of shape (n_features,)
        Estimated coefficients.

    Returns
    -------
    error : float
        The mean squared prediction error (the metric of sparse-regression theory).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.metrics import prediction_error
    >>> prediction_error(np.eye(2), [1.0, 0.0], [0.0, 0.0])
    0.5
    """
    a, b = _pair(coef_true, coef_hat, "coef_true", "coef_hat")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != a.shape[0]:
        raise ValueError(f"X must have shape (n_samples, {a.shape[0]}); got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity")
    r = X @ (b - a)
    return float(np.sum(np.abs(r) ** 2) / X.shape[0])
