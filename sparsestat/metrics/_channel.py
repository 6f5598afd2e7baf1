"""Channel-estimation error metrics."""

from __future__ import annotations

import numpy as np

from sparsestat._kernels._dispatch import to_numpy
from sparsestat.utils._compat import validate_params

__all__ = ["channel_nmse"]


@validate_params(
    {"H_true": ["array-like"], "H_est": ["array-like"], "reduce": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def channel_nmse(H_true, H_est, reduce=True):
    """Normalised mean squared error of channel estimates, averaged over channel matrices.

    ``mean_p ||H_est[p] - H_true[p]||_F^2 / ||H_true[p]||_F^2`` (linear scale), the metric of
    He & Joseph (2024) for IRS-MIMO cascaded channels (one matrix per IRS configuration).

    Parameters
    ----------
    H_true : array-like of shape (n_channels, n_rx, n_tx) or (n_rx, n_tx)
        True channels (complex or real).
    H_est : array-like of the same shape
        Estimated channels.
    reduce : bool, default=True
        Return the mean over channels; when False, the NMSE of each channel.

    Returns
    -------
    nmse : float or ndarray of shape (n_channels,)
        Linear NMSE; ``10 * log10(nmse)`` is the value in dB.

    Notes
    -----
    A channel with zero norm is compared absolutely (its squared error is returned).
    Complexity ``O(n_channels n_rx n_tx)``.

    References
    ----------
    .. [1] Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector
       recovery with application to IRS-MIMO channel estimation", IEEE Trans. Signal
       Process., 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.metrics import channel_nmse
    >>> H = np.ones((2, 3, 3))
    >>> float(channel_nmse(H, 1.1 * H))
    0.01
    """
    h = np.asarray(to_numpy(H_true))
    e = np.asarray(to_numpy(H_est))
    if h.shape != e.shape:
        raise ValueError(f"H_true and H_est shapes differ: {h.shape} vs {e.shape}")
    if h.ndim == 2:
        h, e = h[None], e[None]
    if h.ndim != 3 or h.size == 0:
        raise ValueError(f"expected (n_channels, n_rx, n_tx) arrays; got shape {h.shape}")
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(e))):
        raise ValueError("channels contain NaN or infinity")
    err = np.sum(np.abs(e - h) ** 2, axis=(1, 2))
    ref = np.sum(np.abs(h) ** 2, axis=(1, 2))
    per = np.where(ref > 0, err / np.where(ref > 0, ref, 1.0), err)
    return float(per.mean()) if reduce else per
