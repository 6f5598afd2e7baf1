"""Penalised least squares with l1, l0, l1/2, lq or CEL0 penalties (``LqRegression``)."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning

from sparsestat._kernels.cd import cd_solve, penalty_spec
from sparsestat.penalties import CEL0, Penalty, make_penalty
from sparsestat.utils import progress_bar
from sparsestat.utils._compat import (
    Interval,
    StrOptions,
    fit_context,
    validate_data,
    validate_params,
)

__all__ = ["LqRegression", "lq_path"]

_NAMES = ("l1", "l0", "l1/2", "lq", "cel0")


def _center(X: np.ndarray, y: np.ndarray, fit_intercept: bool) -> tuple[Any, ...]:
    if not fit_intercept:
        return X, y, np.zeros(X.shape[1], dtype=X.dtype), 0.0
    X_mean = X.mean(axis=0)
    y_mean = float(y.mean())
    return X - X_mean, y - y_mean, X_mean, y_mean


def _alpha_max(X: np.ndarray, y: np.ndarray, name: str, q: float, atom_norms: Any) -> float:
    """Smallest alpha for which zero is a coordinate-wise fixed point of CD."""
    n = X.shape[0]
    g = X.T @ y / n
    L = np.sum(X**2, axis=0) / n
    if name == "l1":
        return float(np.max(np.abs(g)))
    out = 0.0
    for j in np.flatnonzero(L > 0):
        step = 1.0 / L[j]
        if name == "cel0":
            a = np.sqrt(L[j]) if atom_norms is None else atom_norms[j]
            pen: Penalty = CEL0(1.0, atom_norms=np.array([a]))
        else:
            pen = make_penalty(name, alpha=1.0, q=q)
        out = max(out, pen.alpha_max(np.array([g[j] * step]) / step, step=step))
    return float(out)


def _validate_Xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.utils import check_X_y

    X, y = check_X_y(X, y, dtype=np.float64, y_numeric=True)
    return X, y


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "penalty": [StrOptions(set(_NAMES)), Penalty],
        "q": [Interval(numbers.Real, 0, 1, closed="right")],
        "alphas": ["array-like", None],
        "n_alphas": [Interval(numbers.Integral, 1, None, closed="left")],
        "eps": [Interval(numbers.Real, 0, 1, closed="neither")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "coef_init": ["array-like", None],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def lq_path(
    X: Any,
    y: Any,
    *,
    penalty: Any = "l1",
    q: float = 0.5,
    alphas: Any = None,
    n_alphas: int = 30,
    eps: float = 1e-3,
    tol: float = 1e-6,
    max_iter: int = 100,
    coef_init: Any = None,
    verbose: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regularisation path of ``1/(2n) ||y - X w||^2 + alpha P(w)`` with warm starts.

    Like scikit-learn's ``lasso_path`` (no intercept: centre ``X`` and ``y`` first), for
    every penalty of :class:`LqRegression`. The alphas are visited in decreasing order and
    each solution starts from the previous one.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Design.
    y : array-like of shape (n_samples,)
        Target.
    penalty : {'l1', 'l0', 'l1/2', 'lq', 'cel0'} or Penalty, default='l1'
        Penalty (the ``alpha`` of a Penalty object is replaced by the grid).
    q : float, default=0.5
        Exponent of 'lq'.
    alphas : array-like or None, default=None
        The grid; when None, ``n_alphas`` values log-spaced from ``alpha_max`` (the smallest
        alpha whose solution is zero) down to ``eps * alpha_max``.
    n_alphas : int, default=30
        Length of the automatic grid.
    eps : float, default=1e-3
        Ratio ``alpha_min / alpha_max`` of the automatic grid.
    tol : float, default=1e-6
        Tolerance of each solve (see :class:`LqRegression`).
    max_iter : int, default=100
        Outer (working-set) iterations of each solve.
    coef_init : array-like of shape (n_features,) or None, default=None
        Start of the first solve.
    verbose : int, default=0
        Progress bar over the grid.

    Returns
    -------
    alphas : ndarray of shape (n_alphas,)
        The grid, decreasing.
    coefs : ndarray of shape (n_features, n_alphas)
        Solutions along the path.
    certificates : ndarray of shape (n_alphas,)
        Final certificate of every solve (relative duality gap for 'l1', relative
        fixed-point distance otherwise).

    Notes
    -----
    For non-convex penalties each point is a coordinate-wise minimiser reached from the
    previous one; the path is the usual continuation heuristic, not a global solution.

    References
    ----------
    .. [1] J. Friedman, T. Hastie, R. Tibshirani, "Regularization paths for generalized
       linear models via coordinate descent", J. Statistical Software 33(1), 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.linear_model import lq_path
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 10)); y = X[:, 0] * 3.0
    >>> alphas, coefs, _ = lq_path(X, y, penalty="l0", n_alphas=5)
    >>> coefs.shape
    (10, 5)
    """
    X, y = _validate_Xy(X, y)
    name, _, q_, atom_norms = penalty_spec(penalty, 1.0, q)
    if alphas is None:
        a_max = _alpha_max(X, y, name, q_, atom_norms)
        alphas = np.geomspace(a_max, a_max * eps, n_alphas) if a_max > 0 else np.zeros(1)
    else:
        alphas = np.sort(np.asarray(alphas, dtype=np.float64).ravel())[::-1]
        if np.any(alphas < 0) or not np.all(np.isfinite(alphas)):
            raise ValueError("alphas must be finite and non-negative")
    w = None if coef_init is None else np.asarray(coef_init, dtype=np.float64)
    coefs = np.zeros((X.shape[1], len(alphas)))
    certs = np.zeros(len(alphas))
    for i in progress_bar(range(len(alphas)), verbose=verbose, desc="lq_path"):
        res = cd_solve(
            X,
            y,
            name,
            float(alphas[i]),
            q=q_,
            atom_norms=atom_norms,
            w0=w,
            tol=tol,
            max_iter=max_iter,
        )
        w = res["coef"]
        coefs[:, i] = w
        certs[i] = res["certificate"]
    return alphas, coefs, certs


class LqRegression(RegressorMixin, BaseEstimator):
    """Least squares with an l1, l0, l1/2, lq or CEL0 penalty, by working-set CD.

    Minimises ``1/(2 n) ||y - X w - b||^2 + alpha P(w)`` (scikit-learn's ``Lasso`` scaling)
    by coordinate descent with working sets in Numba. Each coordinate step is the exact
    minimiser along that coordinate (a scalar prox), so every step decreases the objective
    for the non-convex penalties too.

    Parameters
    ----------
    penalty : {'l1', 'l0', 'l1/2', 'lq', 'cel0'} or Penalty, default='l1'
        The penalty, or a :mod:`sparsestat.penalties` object (tunable as ``penalty__alpha``;
        ``alpha`` and ``q`` are then ignored).
    alpha : float, default=1.0
        Penalty weight.
    q : float, default=0.5
        Exponent of 'lq', in (0, 1].
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (by centring).
    max_iter : int, default=100
        Maximum number of outer (working-set) iterations.
    tol : float, default=1e-6
        Stop when the certificate is at most ``tol``: the duality gap divided by
        ``||y||^2 / n`` for 'l1', the largest coordinate fixed-point distance
        ``L_j |w_j - prox(w_j - g_j / L_j)|`` divided by ``||X^T y||_inf / n`` otherwise.
    warm_start : bool, default=False
        Start from the previous ``coef_``.
    verbose : int, default=0
        Unused for a single fit (the path function shows a bar); kept for API symmetry.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients.
    intercept_ : float
        Intercept (0 when ``fit_intercept=False``).
    n_iter_ : int
        Outer iterations run.
    n_epochs_ : int
        CD epochs over working sets run.
    certificate_ : float
        Final value of the stopping certificate.
    certificate_kind_ : str
        'duality_gap' (l1) or 'fixpoint_distance'.
    converged_ : bool
        Whether ``certificate_ <= tol``.
    n_features_in_ : int
        Number of features seen by ``fit``.

    See Also
    --------
    lq_path : The regularisation path with warm starts.

    Notes
    -----
    For 'cel0' the atom norms are the column norms of the centred design divided by
    ``sqrt(n)`` (those of the scaled least-squares problem), unless the Penalty object gives
    them; with these norms each coordinate step of CEL0 is a hard threshold, so CD on CEL0
    and on l0 coincide coordinate-wise. Non-convex penalties give coordinate-wise minimisers
    that depend on the start (use ``warm_start`` or :func:`lq_path` for continuation).
    Complexity: one epoch ``O(n |WS|)``, one outer scoring ``O(n p)``. Working sets and the
    fixed-point score follow skglm's ``AndersonCD`` (without Anderson acceleration)
    [inferred: the spec does not fix the solver details].

    References
    ----------
    .. [1] D. Rentzeperis, L. Calatroni, L. Perrinet, D. Prandi, "Beyond l1 sparse coding in
       V1", PLOS Computational Biology 19(9), e1011459, 2023.
    .. [2] Q. Bertrand, Q. Klopfenstein, P.-A. Bannier, G. Gidel, M. Massias, "Beyond L1:
       faster and better sparse models with skglm", NeurIPS 2022.
    .. [3] E. Soubies, L. Blanc-Feraud, G. Aubert, "A continuous exact l0 penalty (CEL0) for
       least squares regularized problem", SIAM J. Imaging Sciences 8(3), 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.linear_model import LqRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 8))
    >>> y = 2.0 * X[:, 1] - 3.0 * X[:, 4] + 1.0
    >>> reg = LqRegression(penalty="l1/2", alpha=0.05).fit(X, y)
    >>> np.flatnonzero(reg.coef_)
    array([1, 4])
    """

    _parameter_constraints: dict = {
        "penalty": [StrOptions(set(_NAMES)), Penalty],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "q": [Interval(numbers.Real, 0, 1, closed="right")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        penalty="l1",
        *,
        alpha=1.0,
        q=0.5,
        fit_intercept=True,
        max_iter=100,
        tol=1e-6,
        warm_start=False,
        verbose=0,
    ):
        self.penalty = penalty
        self.alpha = alpha
        self.q = q
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.verbose = verbose

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the penalised least-squares model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Design.
        y : array-like of shape (n_samples,)
            Target.

        Returns
        -------
        self : LqRegression
            The fitted estimator.
        """
        # Fortran order: the CD kernel reads columns, X.T is then C-contiguous without a copy
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True, order="F")
        dtype = X.dtype
        X = X.astype(np.float64, order="F", copy=False)
        y = y.astype(np.float64, copy=False)
        name, alpha, q, atom_norms = penalty_spec(self.penalty, self.alpha, self.q)
        Xc, yc, X_mean, y_mean = _center(X, y, self.fit_intercept)
        w0 = None
        coef = getattr(self, "coef_", None)
        if self.warm_start and coef is not None and coef.shape == (X.shape[1],):
            w0 = coef
        res = cd_solve(
            Xc,
            yc,
            name,
            alpha,
            q=q,
            atom_norms=atom_norms,
            w0=w0,
            tol=self.tol,
            max_iter=self.max_iter,
        )
        self.coef_ = res["coef"].astype(dtype, copy=False)
        self.intercept_ = float(y_mean - X_mean @ res["coef"]) if self.fit_intercept else 0.0
        self.n_iter_ = res["n_iter"]
        self.n_epochs_ = res["n_epochs"]
        self.certificate_ = res["certificate"]
        self.certificate_kind_ = res["certificate_kind"]
        self.converged_ = bool(self.certificate_ <= self.tol)
        if not self.converged_:
            warnings.warn(
                f"LqRegression did not converge in max_iter={self.max_iter} outer iterations: "
                f"{self.certificate_kind_} = {self.certificate_:.3e} > tol = {self.tol:.1e}.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def predict(self, X):
        """Predict ``X @ coef_ + intercept_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_ + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        return tags
