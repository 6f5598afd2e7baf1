"""Synthetic implicit-feedback data (users x items) from a low-rank logistic model."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from sparsestat.utils._compat import Interval, validate_params

__all__ = ["make_implicit_feedback"]


@validate_params(
    {
        "n_users": [Interval(Integral, 1, None, closed="left")],
        "n_items": [Interval(Integral, 1, None, closed="left")],
        "rank": [Interval(Integral, 1, None, closed="left")],
        "density": [Interval(Real, 0, 1, closed="neither")],
        "scale": [Interval(Real, 0, None, closed="left")],
        "return_probabilities": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_implicit_feedback(
    n_users=200,
    n_items=100,
    rank=5,
    density=0.05,
    scale=3.0,
    return_probabilities=False,
    random_state=None,
):
    """Binary user x item interactions drawn from a low-rank logistic model.

    ``P[u, i] = sigmoid(scale * <a_u, b_i> / sqrt(rank) + c)`` with ``a_u, b_i ~ N(0, I)``
    and ``c`` set by bisection so that the mean probability equals ``density``; every
    interaction is an independent Bernoulli draw.

    Parameters
    ----------
    n_users : int, default=200
        Number of rows.
    n_items : int, default=100
        Number of columns.
    rank : int, default=5
        Latent dimension.
    density : float, default=0.05
        Expected fraction of observed interactions, in (0, 1).
    scale : float, default=3.0
        Strength of the low-rank signal (0 gives uniformly random interactions).
    return_probabilities : bool, default=False
        Also return the dense matrix of probabilities.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Interactions (1.0 where observed).
    probabilities : ndarray of shape (n_users, n_items)
        Only when ``return_probabilities`` is True.

    Notes
    -----
    A generic benchmark model for implicit-feedback recommenders [inferred], not taken from
    a paper. Cost: O(n_users n_items rank).

    References
    ----------
    Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI 2009.

    Examples
    --------
    >>> from sparsestat.datasets import make_implicit_feedback
    >>> X = make_implicit_feedback(50, 40, rank=3, density=0.1, random_state=0)
    >>> X.shape
    (50, 40)
    """
    rng = check_random_state(random_state)
    a = rng.standard_normal((n_users, rank))
    b = rng.standard_normal((n_items, rank))
    logits = scale * (a @ b.T) / np.sqrt(rank)
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if np.mean(1.0 / (1.0 + np.exp(-(logits + mid)))) > density:
            hi = mid
        else:
            lo = mid
    prob = 1.0 / (1.0 + np.exp(-(logits + 0.5 * (lo + hi))))
    X = sp.csr_matrix((rng.random(prob.shape) < prob).astype(np.float64))
    return (X, prob) if return_probabilities else X
