"""Iterative hard thresholding regression (``IHTRegressor``, ``IHTRegressorCV``)."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from array_api_compat import device as array_device
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning

from sparsestat._kernels._dispatch import move_to_namespace
from sparsestat._solvers.iht import (
    iht_fit,
    iht_k_path,
    make_iht_problem,
    n_nonzero_default,
)
from sparsestat.linear_model._base import LinearPredictorMixin, validate_xy
from sparsestat.linear_model._cv import cv_path_mse
from sparsestat.utils._compat import (
    Interval,
    StrOptions,
    fit_context,
)

__all__ = ["IHTRegressor", "IHTRegressorCV", "iht"]


def _set_fitted(est: Any, problem: Any, res: dict[str, Any], dtype: Any) -> None:
    xp = problem.xp
    coef = res["coef"]
    est.coef_ = xp.astype(coef, dtype)
    est.support_ = xp.nonzero(coef != 0)[0]
    est.intercept_ = problem.intercept(coef)
    est.n_iter_ = res["n_iter"]
    est.relative_change_ = res["change"]
    est.converged_ = res["converged"]


class IHTRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Sparse linear regression by iterative hard thresholding (IHT).

    Minimises ``1/2 ||y - X w - b||^2`` subject to ``||w||_0 <= n_nonzero_coefs`` by
    projected gradient steps ``w <- H_k(w + mu X^T (y - X w))``, where ``H_k`` keeps the
    ``k`` largest entries in magnitude and ``mu`` is either fixed (``step_size / ||X||_2^2``)
    or the normalised-IHT step. With ``debias=True`` the final support is refitted by least
    squares.

    Parameters
    ----------
    n_nonzero_coefs : int or None, default=None
        Number of nonzero coefficients ``k``, at most ``n_features``. None means
        ``max(1, n_features // 10)``. ``n_nonzero_coefs = n_features`` makes the constraint
        inactive: the fit is then ordinary least squares (minimum-norm when
        ``n_samples < n_features``), solved directly. A larger value raises ``ValueError``
        in ``fit``.
    step_size : float or "normalized", default="normalized"
        A float in (0, 1] is a fixed step, as a fraction of ``1 / ||X||_2^2`` (classical IHT,
        Blumensath and Davies 2009; the residual never increases). ``"normalized"`` is the
        adaptive step of normalised IHT (Blumensath and Davies 2010): the exact line search
        on the current support with a safeguard when the support changes. It recovers sparse
        vectors from markedly fewer samples.
    max_iter : int, default=500
        Maximum number of iterations.
    tol : float, default=1e-7
        Stop when ``max|w_new - w| <= tol * max(1, max|w|)``.
    debias : bool, default=True
        Refit the coefficients of the final support by least squares.
    fit_intercept : bool, default=True
        Centre ``X`` and ``y`` (sparse ``X`` implicitly, without densifying) and fit an
        intercept.
    warm_start : bool, default=False
        Start from the previous ``coef_`` when refitting on data with the same features.

    Attributes
    ----------
    coef_ : array of shape (n_features,)
        Coefficients, with at most ``n_nonzero_coefs`` nonzeros (same array library and
        dtype as ``X``).
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    support_ : array of int
        Sorted indices of the nonzero coefficients.
    n_iter_ : int
        Number of IHT iterations run (0 when least squares was solved directly).
    converged_ : bool
        Whether the relative change fell below ``tol`` or, with ``debias=True``, the debiased
        coefficients are L-stationary [3]_: a fixed point of the IHT step (of size
        ``step_size / ||X||_2^2``, or ``1 / ||X||_2^2`` for the normalised rule), the
        optimality condition of the limit points of IHT. The iterates may then still be
        creeping along their support (slowly on correlated columns), which does not change
        the debiased result.
    relative_change_ : float
        The last relative change of the iterates (the stopping certificate).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    IHTRegressorCV : ``n_nonzero_coefs`` chosen by cross-validation.
    sklearn.linear_model.OrthogonalMatchingPursuit : Greedy k-sparse regression.

    Notes
    -----
    Each iteration costs two matrix-vector products, O(n p) (O(nnz) for sparse ``X``), plus
    an O(p log p) top-k selection. Sparse ``X`` is centred implicitly and never densified;
    its least-squares refit solves the ``k x k`` normal equations of the support. The
    whole fit is written against the array API: with scikit-learn's ``array_api_dispatch``
    on, CuPy or torch inputs are fitted on their device and ``coef_`` stays there.
    ``sample_weight`` minimises ``1/2 sum_i s_i (y_i - x_i w - b)^2`` (integer weights equal
    repeated rows).

    References
    ----------
    .. [1] T. Blumensath, M. E. Davies, "Iterative hard thresholding for compressed sensing",
       Applied and Computational Harmonic Analysis 27(3), 265-274, 2009.
    .. [2] T. Blumensath, M. E. Davies, "Normalized iterative hard thresholding: guaranteed
       stability and performance", IEEE J. Selected Topics in Signal Processing 4(2), 2010.
    .. [3] A. Beck, Y. C. Eldar, "Sparsity constrained nonlinear optimization: optimality
       conditions and algorithms", SIAM J. Optimization 23(3), 2013.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.linear_model import IHTRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 30))
    >>> coef = np.zeros(30); coef[[2, 7, 11]] = [1.5, -2.0, 1.0]
    >>> y = X @ coef
    >>> model = IHTRegressor(n_nonzero_coefs=3).fit(X, y)
    >>> model.support_
    array([ 2,  7, 11])
    >>> bool(np.allclose(model.coef_, coef))
    True
    """

    _parameter_constraints: dict = {
        "n_nonzero_coefs": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "step_size": [Interval(numbers.Real, 0, 1, closed="right"), StrOptions({"normalized"})],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "debias": ["boolean"],
        "fit_intercept": ["boolean"],
        "warm_start": ["boolean"],
    }

    def __init__(
        self,
        n_nonzero_coefs=None,
        *,
        step_size="normalized",
        max_iter=500,
        tol=1e-7,
        debias=True,
        fit_intercept=True,
        warm_start=False,
    ):
        self.n_nonzero_coefs = n_nonzero_coefs
        self.step_size = step_size
        self.max_iter = max_iter
        self.tol = tol
        self.debias = debias
        self.fit_intercept = fit_intercept
        self.warm_start = warm_start

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; CSR / CSC matrices are used without densifying.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative weights of the squared errors (integer weights equal repeated rows).

        Returns
        -------
        self : IHTRegressor
            The fitted estimator.
        """
        X, y, sample_weight = validate_xy(self, X, y, sample_weight)
        n_features = X.shape[1]
        k = self.n_nonzero_coefs or n_nonzero_default(n_features)
        if k > n_features:
            raise ValueError(
                f"n_nonzero_coefs={k} exceeds the number of features, n_features={n_features}; "
                f"use at most {n_features} (n_nonzero_coefs={n_features} fits least squares)."
            )
        problem = make_iht_problem(
            X, y, sample_weight=sample_weight, fit_intercept=self.fit_intercept
        )
        w0 = None
        coef = getattr(self, "coef_", None)
        if self.warm_start and coef is not None and coef.shape[0] == n_features:
            w0 = move_to_namespace(coef, problem.xp, array_device(problem.y))
            w0 = problem.xp.astype(w0, problem.y.dtype)
        res = iht_fit(
            problem,
            k,
            step_size=self.step_size,
            w0=w0,
            max_iter=self.max_iter,
            tol=self.tol,
            debias=self.debias,
        )
        _set_fitted(self, problem, res, X.dtype)
        if not self.converged_:
            stationary = " and the debiased result is not an IHT fixed point" if self.debias else ""
            warnings.warn(
                f"IHTRegressor did not converge in max_iter={self.max_iter} iterations: the "
                f"relative change of the iterates is {self.relative_change_:.3e} > "
                f"tol={self.tol:.1e}{stationary}. Increase max_iter.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags


class IHTRegressorCV(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """IHT regression with the number of nonzero coefficients chosen by cross-validation.

    For every fold, IHT is run for ``k = 1, 2, ..., max_n_nonzero_coefs``, each ``k``
    warm-started from the solution at ``k - 1`` (a path over sparsity, as
    ``OrthogonalMatchingPursuitCV`` does over OMP steps); the ``k`` with the smallest mean
    test error is refitted on all the data along the same path.

    Parameters
    ----------
    max_n_nonzero_coefs : int or None, default=None
        Largest number of nonzero coefficients tried. None means
        ``min(n_features, max(10, n_features // 10))``; larger values are clipped to
        ``n_features``.
    step_size : float or "normalized", default="normalized"
        Step of every IHT fit (see :class:`IHTRegressor`).
    max_iter : int, default=500
        Maximum IHT iterations of each fit.
    tol : float, default=1e-7
        Relative change of the iterates at which each fit stops.
    debias : bool, default=True
        Refit every support by least squares.
    fit_intercept : bool, default=True
        Fit an intercept (refitted on the training rows of every fold).
    cv : int, cross-validation generator or iterable, default=None
        Folds, as in scikit-learn (None: 5-fold).
    n_jobs : int or None, default=None
        Folds run in parallel (joblib threads).

    Attributes
    ----------
    n_nonzero_coefs_ : int
        The chosen number of nonzero coefficients.
    n_nonzero_coefs_grid_ : ndarray of shape (n_grid,)
        The values tried, ``1 .. max_n_nonzero_coefs``.
    mse_path_ : ndarray of shape (n_grid, n_folds)
        Mean squared test error of each value on each fold.
    coef_ : ndarray of shape (n_features,)
        Coefficients of the refit.
    intercept_ : float
        Intercept of the refit.
    support_ : ndarray of int
        Indices of the nonzero coefficients.
    n_iter_ : int
        IHT iterations of the final refit.
    converged_ : bool
        Whether every fit of the final path converged.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    IHTRegressor : IHT at a given sparsity.
    sklearn.linear_model.OrthogonalMatchingPursuitCV : The greedy counterpart.

    Notes
    -----
    Cost: ``max_n_nonzero_coefs`` IHT fits per fold (each warm-started), plus the refit path.
    Test errors are weighted by ``sample_weight`` when given, as in ``LassoCV``. Choosing
    ``k`` by the smallest mean squared test error over warm-started folds follows
    scikit-learn's ``LassoCV``; it is not specified by the IHT papers.

    References
    ----------
    .. [1] T. Blumensath, M. E. Davies, "Normalized iterative hard thresholding: guaranteed
       stability and performance", IEEE J. Selected Topics in Signal Processing 4(2), 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.linear_model import IHTRegressorCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 20))
    >>> y = X[:, 3] - 2 * X[:, 7] + 0.1 * rng.standard_normal(100)
    >>> model = IHTRegressorCV(max_n_nonzero_coefs=6, cv=3).fit(X, y)
    >>> model.n_nonzero_coefs_, model.support_
    (2, array([3, 7]))
    """

    _parameter_constraints: dict = {
        "max_n_nonzero_coefs": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "step_size": [Interval(numbers.Real, 0, 1, closed="right"), StrOptions({"normalized"})],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "debias": ["boolean"],
        "fit_intercept": ["boolean"],
        "cv": ["cv_object"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(
        self,
        max_n_nonzero_coefs=None,
        *,
        step_size="normalized",
        max_iter=500,
        tol=1e-7,
        debias=True,
        fit_intercept=True,
        cv=None,
        n_jobs=None,
    ):
        self.max_n_nonzero_coefs = max_n_nonzero_coefs
        self.step_size = step_size
        self.max_iter = max_iter
        self.tol = tol
        self.debias = debias
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.n_jobs = n_jobs

    def _params(self) -> dict[str, Any]:
        return {
            "step_size": self.step_size,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "debias": self.debias,
        }

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Choose ``n_nonzero_coefs`` by cross-validation and refit on all the data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative weights (training and test errors).

        Returns
        -------
        self : IHTRegressorCV
            The fitted estimator.
        """
        X, y, sample_weight = validate_xy(self, X, y, sample_weight)
        dtype = X.dtype
        X = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else np.asarray(X, np.float64)
        y = np.asarray(y, dtype=np.float64)
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        d = X.shape[1]
        k_max = self.max_n_nonzero_coefs or min(d, max(10, d // 10))
        grid = np.arange(1, min(k_max, d) + 1)
        params = self._params()

        def path(X_t: Any, y_t: np.ndarray, sw_t: Any) -> tuple[np.ndarray, np.ndarray, int]:
            problem = make_iht_problem(
                X_t, y_t, sample_weight=sw_t, fit_intercept=self.fit_intercept
            )
            coefs, results = iht_k_path(problem, grid, **params)
            C = np.stack([np.asarray(c) for c in coefs], axis=1)
            b = np.array([problem.intercept(c) for c in coefs])
            return C, b, sum(not r["converged"] for r in results)

        self.mse_path_, best, n_bad = cv_path_mse(path, X, y, sw, self.cv, self.n_jobs)
        self.n_nonzero_coefs_grid_ = grid
        self.n_nonzero_coefs_ = int(grid[best])
        problem = make_iht_problem(X, y, sample_weight=sw, fit_intercept=self.fit_intercept)
        coefs, results = iht_k_path(problem, grid[: best + 1], **params)
        res = results[-1]
        _set_fitted(self, problem, res, dtype)
        self.converged_ = all(r["converged"] for r in results)
        n_bad += sum(not r["converged"] for r in results)
        if n_bad:
            warnings.warn(
                f"IHTRegressorCV: {n_bad} IHT fits (over the folds and the final path) did not "
                f"reach tol={self.tol:.1e} in max_iter={self.max_iter} iterations.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self


def iht(X, y, n_nonzero_coefs=None, **params):
    """Functional form of :class:`IHTRegressor`.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Design.
    y : array-like of shape (n_samples,)
        Targets.
    n_nonzero_coefs : int or None, default=None
        Number of nonzero coefficients.
    **params : dict
        Other :class:`IHTRegressor` parameters.

    Returns
    -------
    coef : ndarray of shape (n_features,)
        The fitted coefficients.
    intercept : float
        The fitted intercept.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.linear_model import iht
    >>> coef, intercept = iht(np.eye(3), np.array([0.0, 2.0, 0.1]), 1, fit_intercept=False)
    >>> coef
    array([0., 2., 0.])
    """
    model = IHTRegressor(n_nonzero_coefs, **params).fit(X, y)
    return model.coef_, model.intercept_
