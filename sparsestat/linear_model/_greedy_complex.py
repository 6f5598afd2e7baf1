"""Baselines for complex and Kronecker-structured sparse recovery (functions)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from sparsestat._kernels.omp import kron_columns, kron_omp, omp_complex
from sparsestat.utils import check_complex_array
from sparsestat.utils._compat import Interval, validate_params

__all__ = ["complex_omp", "kronecker_omp", "oracle_least_squares"]


def _factors(factors):
    if hasattr(factors, "factors"):
        factors = factors.factors
    return [check_complex_array(f, input_name=f"factors[{i}]") for i, f in enumerate(factors)]


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def complex_omp(X, y, n_nonzero_coefs, tol=None):
    """Orthogonal matching pursuit that also accepts complex dictionaries and measurements.

    scikit-learn's ``orthogonal_mp`` is real only; this greedy baseline picks, at each step,
    the atom with the largest ``|x_j^H r| / ||x_j||`` and refits by least squares.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Dictionary (real or complex).
    y : array-like of shape (n_samples,)
        Measurements.
    n_nonzero_coefs : int
        Maximum number of atoms.
    tol : float or None, default=None
        Stop early once the squared residual norm is at most ``tol``.

    Returns
    -------
    coef : ndarray of shape (n_features,)
        Sparse coefficients.

    Notes
    -----
    ``O(k M N)`` for the correlations plus ``k`` least-squares solves of at most ``k``
    columns.

    References
    ----------
    .. [1] Y. C. Pati, R. Rezaiifar and P. S. Krishnaprasad, "Orthogonal matching pursuit",
       Asilomar 1993.
    .. [2] C. F. Caiafa and A. Cichocki, "Computing sparse representations of
       multidimensional signals using Kronecker bases", Neural Computation 25(1), 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.linear_model import complex_omp
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((20, 40)) + 1j * rng.standard_normal((20, 40))
    >>> w = np.zeros(40, complex); w[[2, 7]] = [1 + 1j, -2]
    >>> np.flatnonzero(complex_omp(X, X @ w, n_nonzero_coefs=2))
    array([2, 7])
    """
    X = check_complex_array(X, input_name="X")
    y = check_complex_array(y, input_name="y", ensure_2d=False)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must be 1-D with {X.shape[0]} entries; got shape {y.shape}")
    return omp_complex(X, y, n_nonzero_coefs, tol)[0]


@validate_params(
    {
        "factors": ["array-like", list, tuple, object],
        "y": ["array-like"],
        "max_atoms_per_mode": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def kronecker_omp(factors, y, max_atoms_per_mode=10, tol=1e-2):
    """Kronecker OMP (N-way OMP) for ``y = kron(A_1, ..., A_I) x`` with Kronecker support.

    Greedy selection of per-mode atoms: each step adds the mode indices of the largest
    normalised correlation ``|kron(A_i)^H r|`` to per-mode index sets ``S_i`` and refits
    ``x`` by least squares on ``S_1 x ... x S_I``, as in Caiafa & Cichocki (2013).

    Parameters
    ----------
    factors : list of 2-D arrays or KroneckerDesign
        Factor matrices (real or complex).
    y : array-like of shape (prod M_i,)
        Measurements.
    max_atoms_per_mode : int, default=10
        Cap on ``|S_i|`` (the authors' setting).
    tol : float, default=1e-2
        Stop when ``||r|| <= tol ||y||`` (the authors' setting).

    Returns
    -------
    coef : ndarray of shape (prod N_i,)
        Estimate on the full grid.

    Notes
    -----
    Correlations by mode products, ``O(N sum M_i)`` per step; the least-squares problem has
    ``prod |S_i|`` columns. The selection also stops before ``prod |S_i|`` exceeds half the
    number of measurements (a near-square refit only amplifies noise) [inferred].

    References
    ----------
    .. [1] Y. C. Pati, R. Rezaiifar and P. S. Krishnaprasad, "Orthogonal matching pursuit",
       Asilomar 1993.
    .. [2] C. F. Caiafa and A. Cichocki, "Computing sparse representations of
       multidimensional signals using Kronecker bases", Neural Computation 25(1), 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.datasets import make_kronecker_sparse_signal
    >>> from sparsestat.linear_model import kronecker_omp
    >>> factors, y, coef = make_kronecker_sparse_signal(
    ...     factor_shapes=((8, 12), (9, 12)), n_nonzero=2, snr_db=None, random_state=0)
    >>> est = kronecker_omp(factors, y)
    >>> bool(np.allclose(est, coef, atol=1e-8))
    True
    """
    facs = _factors(factors)
    y = check_complex_array(y, input_name="y", ensure_2d=False)
    if y.ndim != 1 or y.shape[0] != int(np.prod([f.shape[0] for f in facs])):
        raise ValueError("y must be 1-D with prod(M_i) entries")
    return kron_omp(facs, y, max_atoms_per_mode, tol)[0]


@validate_params(
    {"X": [object], "y": ["array-like"], "support": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def oracle_least_squares(X, y, support):
    """Least squares restricted to a known support (the oracle baseline).

    Parameters
    ----------
    X : array-like of shape (M, N), list of 2-D factor arrays, or KroneckerDesign
        Dictionary, explicit or as Kronecker factors (only the support's columns are built).
    y : array-like of shape (M,) or (M, n_targets)
        Measurements.
    support : array-like of int
        Flat indices of the nonzero coefficients.

    Returns
    -------
    coef : ndarray of shape (N,) or (n_targets, N)
        Least-squares coefficients on ``support``, zero elsewhere.

    Notes
    -----
    ``O(M |S|^2)``; for Kronecker factors the ``|S|`` columns are formed, never the whole
    dictionary.

    References
    ----------
    .. [1] Y. C. Pati, R. Rezaiifar and P. S. Krishnaprasad, "Orthogonal matching pursuit",
       Asilomar 1993.
    .. [2] C. F. Caiafa and A. Cichocki, "Computing sparse representations of
       multidimensional signals using Kronecker bases", Neural Computation 25(1), 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.linear_model import oracle_least_squares
    >>> X = np.eye(4)[:, :3]
    >>> oracle_least_squares(X, np.array([1.0, 2.0, 3.0, 4.0]), [0, 2])
    array([1., 0., 3.])
    """
    support = np.asarray(support, dtype=int).ravel()
    y = check_complex_array(y, input_name="y", ensure_2d=False)
    if isinstance(X, list | tuple) or hasattr(X, "factors"):
        facs = _factors(X)
        n = int(np.prod([f.shape[1] for f in facs]))
        a_s = kron_columns(facs, support)
    else:
        X = check_complex_array(X, input_name="X")
        n = X.shape[1]
        a_s = X[:, support]
    if y.shape[0] != a_s.shape[0]:
        raise ValueError(f"y has {y.shape[0]} rows; the dictionary has {a_s.shape[0]}")
    sol = np.linalg.lstsq(a_s, y, rcond=None)[0]
    coef = np.zeros((n,) + y.shape[1:], dtype=np.result_type(a_s, y, np.float64))
    coef[support] = sol
    return coef if y.ndim == 1 else coef.T
