"""Sparse linear regression problems on easy and badly conditioned designs."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from sparsestat.utils._compat import Interval, StrOptions, validate_params

__all__ = ["make_sparse_regression"]

_DESIGNS = ("iid", "equicorrelated", "factor", "random_walk", "near_duplicate", "extreme")
_VALUES = ("signs", "gaussian", "worst_case")

#: Idiosyncratic scale of the ``'extreme'`` design (D4 of the spec): kappa(Sigma) >= 1e20.
_EXTREME_SCALE = 1e-12


def _design(design, n, d, rng, *, rho, n_factors, idiosyncratic_scale, block_size, eta):
    """Raw (unnormalised) rows x ~ N(0, Sigma) of the requested design."""
    if design == "iid":
        return rng.standard_normal((n, d))
    if design == "equicorrelated":
        f = rng.standard_normal((n, 1))
        return np.sqrt(rho) * f + np.sqrt(1.0 - rho) * rng.standard_normal((n, d))
    if design in ("factor", "extreme"):
        if idiosyncratic_scale is None:
            idiosyncratic_scale = _EXTREME_SCALE if design == "extreme" else 0.1
        loadings = rng.standard_normal((d, n_factors))
        factors = rng.standard_normal((n, n_factors))
        return factors @ loadings.T + idiosyncratic_scale * rng.standard_normal((n, d))
    if design == "random_walk":
        return np.cumsum(rng.standard_normal((n, d)), axis=1)
    # near_duplicate: consecutive blocks of ``block_size`` columns share one latent column
    n_blocks = -(-d // block_size)
    z = rng.standard_normal((n, n_blocks))
    return np.repeat(z, block_size, axis=1)[:, :d] + eta * rng.standard_normal((n, d))


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_nonzero_coefs": [Interval(Integral, 0, None, closed="left")],
        "design": [StrOptions(set(_DESIGNS))],
        "rho": [Interval(Real, 0, 1, closed="left")],
        "n_factors": [Interval(Integral, 1, None, closed="left")],
        "idiosyncratic_scale": [Interval(Real, 0, None, closed="left"), None],
        "block_size": [Interval(Integral, 1, None, closed="left")],
        "eta": [Interval(Real, 0, None, closed="left")],
        "values": [StrOptions(set(_VALUES))],
        "noise": [Interval(Real, 0, None, closed="left")],
        "coef": ["boolean"],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_sparse_regression(
    n_samples=100,
    n_features=200,
    n_nonzero_coefs=5,
    *,
    design="iid",
    rho=0.9,
    n_factors=3,
    idiosyncratic_scale=None,
    block_size=2,
    eta=1e-2,
    values="signs",
    noise=0.1,
    coef=False,
    random_state=None,
):
    """Generate a sparse linear regression problem ``y = X w* + noise`` on a chosen design.

    The rows of ``X`` are Gaussian, ``x ~ N(0, Sigma)``, with a covariance chosen by
    ``design`` (from well conditioned to condition numbers of ``1e20``); every column is then
    scaled to Euclidean norm ``sqrt(n_samples)``. The support of ``w*`` is a uniformly random
    ``n_nonzero_coefs``-subset ``T`` of the columns, its values follow ``values``, and ``w*`` is
    scaled so that the signal has unit power, ``||X w*||^2 / n_samples = 1``.

    Parameters
    ----------
    n_samples : int, default=100
        Number of samples ``N``.
    n_features : int, default=200
        Number of features ``d``.
    n_nonzero_coefs : int, default=5
        Size ``k`` of the support of ``w*`` (at most ``n_features``).
    design : {'iid', 'equicorrelated', 'factor', 'random_walk', 'near_duplicate', \
'extreme'}, default='iid'
        Distribution of the rows (designs D0-D4 of the random-support benchmarks):

        - ``'iid'`` (D0): ``x ~ N(0, I)``.
        - ``'equicorrelated'`` (D1): ``x = sqrt(rho) f 1 + sqrt(1 - rho) g`` with ``f ~ N(0, 1)``
          and ``g ~ N(0, I)``: every pair of columns has correlation ``rho``, and
          ``kappa(Sigma) = 1 + d rho / (1 - rho)``.
        - ``'factor'`` (D1r): ``x = B f + s g`` with loadings ``B ~ N(0, 1)`` of shape
          ``(d, n_factors)``, ``f ~ N(0, I_r)``, ``g ~ N(0, I)`` and
          ``s = idiosyncratic_scale``.
        - ``'random_walk'`` (D2): ``x_j = g_1 + ... + g_j``, so ``Cov(x_i, x_j) = min(i, j)``
          and ``kappa(Sigma)`` grows like ``d^2``.
        - ``'near_duplicate'`` (D3): consecutive blocks of ``block_size`` columns,
          ``x_{b,i} = z_b + eta xi_{b,i}``, so columns of one block have correlation
          ``1 / (1 + eta^2)`` and columns of different blocks are independent.
        - ``'extreme'`` (D4): the factor design with ``idiosyncratic_scale=1e-12`` unless given,
          so that ``kappa(Sigma) >= 1e20``; a numerical stress test.

    rho : float in [0, 1), default=0.9
        Pairwise correlation of the ``'equicorrelated'`` design.
    n_factors : int, default=3
        Number of common factors of the ``'factor'`` and ``'extreme'`` designs.
    idiosyncratic_scale : float or None, default=None
        Standard deviation ``s`` of the idiosyncratic part of the ``'factor'`` and
        ``'extreme'`` designs; ``None`` means 0.1 for ``'factor'`` and 1e-12 for ``'extreme'``.
    block_size : int, default=2
        Block size of the ``'near_duplicate'`` design (the last block may be shorter).
    eta : float, default=1e-2
        Perturbation scale of the ``'near_duplicate'`` design.
    values : {'signs', 'gaussian', 'worst_case'}, default='signs'
        Values of ``w*`` on its support ``T`` before scaling: independent random signs,
        independent standard normal values, or the worst case for ``T``, the bottom right
        singular vector of ``X[:, T]`` (the direction least visible in the data; a null
        direction, with ``X w* = 0``, when ``n_nonzero_coefs > n_samples``, and then ``w*`` is
        not rescaled).
    noise : float, default=0.1
        Standard deviation ``sigma`` of the Gaussian noise added to ``y``.
    coef : bool, default=False
        If True, also return ``w*``.
    random_state : int, RandomState instance or None, default=None
        Seed of the design, support, values and noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The design, every column of norm ``sqrt(n_samples)``.
    y : ndarray of shape (n_samples,)
        The targets ``X w* + sigma xi``.
    coef : ndarray of shape (n_features,)
        The true coefficients ``w*``; returned only when ``coef=True``.

    See Also
    --------
    sklearn.datasets.make_regression : Random regression problems on iid or low-rank designs.

    Notes
    -----
    The designs, the worst-case values and the scaling of the signal follow the library's
    specification of random-support sparse regression; they are [inferred] test problems, not
    taken from the paper, which has no experiments. The random support is the paper's
    assumption. Generation costs ``O(n_samples n_features)`` plus one SVD of an
    ``n_samples x n_nonzero_coefs`` block for ``values='worst_case'``. The random numbers are
    drawn in a fixed order (design, support, values, noise), so a seed fixes everything.

    References
    ----------
    .. [1] S. Chandrasekaran, R. Meka, K. Stavropoulos, "Sparse Linear Regression is Easy on
       Random Supports", arXiv:2511.06211, 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.datasets import make_sparse_regression
    >>> X, y, w = make_sparse_regression(50, 80, 3, design="equicorrelated", rho=0.99,
    ...                                  coef=True, random_state=0)
    >>> X.shape, y.shape, int(np.count_nonzero(w))
    ((50, 80), (50,), 3)
    >>> bool(np.allclose(np.linalg.norm(X, axis=0), np.sqrt(50)))
    True
    >>> round(float(np.linalg.norm(X @ w) ** 2 / 50), 6)
    1.0
    """
    if n_nonzero_coefs > n_features:
        raise ValueError(
            f"n_nonzero_coefs={n_nonzero_coefs} must be at most n_features={n_features}."
        )
    rng = check_random_state(random_state)
    n, d, k = n_samples, n_features, n_nonzero_coefs
    X = _design(
        design,
        n,
        d,
        rng,
        rho=rho,
        n_factors=n_factors,
        idiosyncratic_scale=idiosyncratic_scale,
        block_size=block_size,
        eta=eta,
    )
    norms = np.linalg.norm(X, axis=0)
    norms[norms == 0] = 1.0
    X *= np.sqrt(n) / norms

    support = np.sort(rng.choice(d, size=k, replace=False))
    w = np.zeros(d)
    if values == "signs":
        w[support] = rng.choice([-1.0, 1.0], size=k)
    elif values == "gaussian":
        w[support] = rng.standard_normal(k)
    elif k > 0:
        # with k > n the bottom right singular vector spans a null direction (X w = 0)
        _, _, vt = np.linalg.svd(X[:, support], full_matrices=k > n)
        w[support] = vt[-1] * rng.choice([-1.0, 1.0])
    power = np.linalg.norm(X @ w) ** 2 / n
    # a null direction (rounding-level signal) is left unscaled rather than blown up
    if power > (1e-14 * np.linalg.norm(w)) ** 2:
        w /= np.sqrt(power)
    y = X @ w + noise * rng.standard_normal(n)
    if coef:
        return X, y, w
    return X, y
