"""Dictionary-learning and autoencoder metrics: FVU and mean max cosine similarity."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_array

__all__ = ["fvu", "mmcs"]


def fvu(X, X_hat):
    """Fraction of variance unexplained ``sum ||x - x_hat||^2 / sum ||x - mean(x)||^2``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data.
    X_hat : array-like of shape (n_samples, n_features)
        Reconstruction.

    Returns
    -------
    fvu : float
        0 for a perfect reconstruction, 1 for the mean of ``X``; sums in float64.

    Notes
    -----
    The mean is that of the evaluated set, as SAELens' ``explained_variance`` (= 1 - FVU);
    not the per-row average of normalised errors. Cost O(n_samples * n_features).

    References
    ----------
    .. [1] Gao et al., "Scaling and evaluating sparse autoencoders", arXiv:2406.04093, 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.metrics import fvu
    >>> X = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> fvu(X, X.mean(axis=0, keepdims=True).repeat(2, axis=0))
    1.0
    """
    X = check_array(X, dtype=np.float64, accept_sparse=False)
    X_hat = check_array(X_hat, dtype=np.float64, accept_sparse=False)
    if X.shape != X_hat.shape:
        raise ValueError(f"X and X_hat must have the same shape; got {X.shape} and {X_hat.shape}")
    total = float(np.square(X - X.mean(axis=0)).sum())
    err = float(np.square(X - X_hat).sum())
    if total == 0.0:
        return 0.0 if err == 0.0 else float("inf")
    return err / total


def mmcs(true_atoms, learned_atoms):
    """Mean over true atoms of the largest ``|cos|`` with any learned atom.

    Parameters
    ----------
    true_atoms : array-like of shape (n_true, n_features)
        Ground-truth dictionary (rows are atoms).
    learned_atoms : array-like of shape (n_learned, n_features)
        Learned dictionary, e.g. ``SparseAutoencoder.components_``.

    Returns
    -------
    mmcs : float
        In [0, 1]; 1 when every true atom is learned up to sign and scale.

    Notes
    -----
    Zero rows count as cosine 0. Cost O(n_true * n_learned * n_features). The one-to-one
    (Hungarian) variant is stricter; MMCS allows one learned atom to match several true ones.

    References
    ----------
    .. [1] Sharkey, Braun, Millidge, "Taking features out of superposition with sparse
       autoencoders", AI Alignment Forum, 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.metrics import mmcs
    >>> mmcs(np.eye(2), np.array([[0.0, -3.0], [1.0, 0.0], [1.0, 1.0]]))
    1.0
    """
    T = check_array(true_atoms, dtype=np.float64)
    L = check_array(learned_atoms, dtype=np.float64)
    if T.shape[1] != L.shape[1]:
        raise ValueError(f"atoms must have the same n_features; got {T.shape[1]} and {L.shape[1]}")

    def unit(A):
        norms = np.linalg.norm(A, axis=1, keepdims=True)
        return np.divide(A, norms, out=np.zeros_like(A), where=norms > 0)

    return float(np.abs(unit(T) @ unit(L).T).max(axis=1).mean())
