"""Planted-feature data for sparse autoencoders: flat, signed and hierarchical dictionaries."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from sparsestat.utils._compat import Interval, StrOptions, validate_params

__all__ = ["make_planted_features"]


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_atoms": [Interval(Integral, 1, None, closed="left")],
        "kind": [StrOptions({"flat", "signed", "hierarchical"})],
        "firing_prob": [Interval(Real, 0, 1, closed="both"), None],
        "magnitude": [tuple],
        "noise": [Interval(Real, 0, None, closed="left")],
        "n_children": [Interval(Integral, 1, None, closed="left")],
        "child_prob": [Interval(Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_planted_features(
    n_samples=50_000,
    n_features=64,
    n_atoms=128,
    *,
    kind="flat",
    firing_prob=None,
    magnitude=(0.5, 1.5),
    noise=0.01,
    n_children=4,
    child_prob=0.5,
    random_state=None,
):
    """Data ``X = codes @ atoms + noise`` with a planted dictionary of unit atoms.

    Parameters
    ----------
    n_samples : int, default=50_000
        Number of rows.
    n_features : int, default=64
        Dimension d of every row.
    n_atoms : int, default=128
        Number of true atoms for ``'flat'`` and ``'signed'``; number of *parent* atoms for
        ``'hierarchical'`` (which then has ``n_atoms * (1 + n_children)`` atoms).
    kind : {'flat', 'signed', 'hierarchical'}, default='flat'
        ``'flat'``: each atom fires independently with probability ``firing_prob`` and a
        magnitude drawn from ``U(magnitude)``. ``'signed'``: the same with random signs
        (bidirectional features). ``'hierarchical'``: parent atoms fire as in ``'flat'``;
        given an active parent, with probability ``child_prob`` exactly one of its children
        (chosen uniformly) fires too. Child directions are ``normalise(0.6 p + 0.8 u)``
        with ``u`` a random unit vector orthogonal to the parent ``p``.
    firing_prob : float, default=None
        Firing probability of each (parent) atom; None means ``4 / n_atoms``.
    magnitude : tuple of two floats, default=(0.5, 1.5)
        Range of the uniform magnitudes.
    noise : float, default=0.01
        Standard deviation of the additive Gaussian noise.
    n_children : int, default=4
        Children per parent (``'hierarchical'`` only).
    child_prob : float, default=0.5
        Probability that an active parent activates one child (``'hierarchical'`` only).
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The data.
    codes : ndarray of shape (n_samples, n_total_atoms)
        The true sparse codes.
    atoms : ndarray of shape (n_total_atoms, n_features)
        The true unit atoms. For ``'hierarchical'`` the first ``n_atoms`` rows are the
        parents and child ``c`` of parent ``p`` is row ``n_atoms + p * n_children + c``.

    Notes
    -----
    The planted-feature settings B1-B3 of the sparse-autoencoder benchmarks: d = 64, 128
    atoms firing with probability 4/128, magnitudes U(0.5, 1.5), noise 0.01. Atoms are random
    Gaussian directions, so they are only quasi-orthogonal when ``n_atoms > n_features``.
    Cost O(n_samples * n_atoms * d).

    References
    ----------
    .. [1] Costa et al., "From Flat to Hierarchical: Extracting Sparse Representations with
       Matching Pursuit", arXiv:2506.03093, 2025.
    .. [2] Zhu, Khalili, Zhu, "AbsTopK: Rethinking Sparse Autoencoders For Bidirectional
       Features", arXiv:2510.00404, 2025.

    Examples
    --------
    >>> from sparsestat.datasets import make_planted_features
    >>> X, codes, atoms = make_planted_features(100, 16, 32, random_state=0)
    >>> X.shape, codes.shape, atoms.shape
    ((100, 16), (100, 32), (32, 16))
    """
    if len(magnitude) != 2 or not 0 <= magnitude[0] <= magnitude[1]:
        raise ValueError(f"magnitude must be (low, high) with 0 <= low <= high; got {magnitude}")
    rng = check_random_state(random_state)
    n, d, A = int(n_samples), int(n_features), int(n_atoms)
    p = 4.0 / A if firing_prob is None else float(firing_prob)
    lo, hi = float(magnitude[0]), float(magnitude[1])

    atoms = rng.standard_normal((A, d))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = (rng.random((n, A)) < p) * rng.uniform(lo, hi, (n, A))
    if kind == "signed":
        codes *= rng.choice([-1.0, 1.0], size=(n, A))
    elif kind == "hierarchical":
        C = int(n_children)
        u = rng.standard_normal((A, C, d))
        u -= np.einsum("acd,ad->ac", u, atoms)[:, :, None] * atoms[:, None, :]
        u /= np.linalg.norm(u, axis=2, keepdims=True)
        children = 0.6 * atoms[:, None, :] + 0.8 * u
        children /= np.linalg.norm(children, axis=2, keepdims=True)
        atoms = np.vstack([atoms, children.reshape(A * C, d)])
        child_codes = np.zeros((n, A * C))
        rows, parents = np.nonzero(codes)
        fire = rng.random(rows.size) < child_prob
        which = rng.randint(0, C, size=rows.size)
        mags = rng.uniform(lo, hi, size=rows.size)
        child_codes[rows[fire], parents[fire] * C + which[fire]] = mags[fire]
        codes = np.hstack([codes, child_codes])
    X = codes @ atoms + noise * rng.standard_normal((n, d))
    return X, codes, atoms
