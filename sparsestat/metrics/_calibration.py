"""Calibration of predicted class probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["expected_calibration_error"]


def expected_calibration_error(
    y_true: Any, y_proba: Any, *, n_bins: int = 15, classes: Any = None
) -> float:
    """Expected calibration error (ECE) of the top-class confidence, equal-width bins.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels: column indices of ``y_proba``, or values of ``classes``.
    y_proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities.
    n_bins : int, default=15
        Number of equal-width confidence bins on (0, 1].
    classes : array-like of shape (n_classes,) or None, default=None
        Labels of the columns (e.g. an estimator's ``classes_``); None means column indices.

    Returns
    -------
    ece : float
        ``sum_b |B_b| / n * |accuracy(B_b) - confidence(B_b)|``, in [0, 1].

    Notes
    -----
    O(n_samples * n_classes).

    References
    ----------
    .. [1] C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On Calibration of Modern Neural
       Networks", ICML 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.metrics import expected_calibration_error
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    >>> round(expected_calibration_error([0, 1, 1], proba), 4)
    0.4
    """
    proba = np.asarray(y_proba, dtype=np.float64)
    y = np.asarray(y_true)
    if proba.ndim != 2 or proba.shape[0] != y.shape[0]:
        raise ValueError("y_proba must be (n_samples, n_classes) with one row per label")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1; got {n_bins}")
    if classes is not None:
        classes = np.asarray(classes)
        index = np.searchsorted(classes, y)
        if np.any(index >= classes.size) or np.any(
            classes[np.minimum(index, classes.size - 1)] != y
        ):
            raise ValueError("y_true contains labels not in classes")
        y = index
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)
