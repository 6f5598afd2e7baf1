"""Penalised least squares with l1, l0, l1/2, lq or CEL0 penalties (``LqRegression``)."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning

from sparsestat._kernels.cd import penalty_spec
from sparsestat._solvers.cd import alpha_max, cd_path, cd_solve, make_problem
from sparsestat.linear_model._base import LinearPredictorMixin, as_float64, validate_xy
from sparsestat.penalties import Penalty
from sparsestat.utils._compat import (
    Interval,
    StrOptions,
    fit_context,
    validate_params,
)

__all__ = ["LqRegression", "LqRegressionCV", "lq_path"]

#: Penalty names (``'l1_2'`` is another spelling of ``'l1/2'``).
PENALTY_NAMES = ("l1", "l0", "l1/2", "l1_2", "lq", "cel0")


def _check_Xy(X: Any, y: Any) -> tuple[Any, np.ndarray]:
    from sklearn.utils import check_X_y

    X, y = check_X_y(X, y, accept_sparse=["csc", "csr"], dtype=np.float64, y_numeric=True)
    return X, y


def unconverged_warning(where: str, certificate: float, kind: str, tol: float, hint: str) -> None:
    """Emit the ``ConvergenceWarning`` of an unconverged coordinate-descent solve."""
    warnings.warn(
        f"{where} did not converge: {kind} = {certificate:.3e} > tol = {tol:.1e} "
        f"(relative to ||y||^2 / n for the duality gap, to ||X^T y||_inf / n for the "
        f"fixed-point distance). {hint}",
        ConvergenceWarning,
        stacklevel=3,
    )


def make_alpha_grid(problem: Any, name: str, q: float, atom_norms: Any, n: int, eps: float) -> Any:
    """``n`` values log-spaced from ``alpha_max`` down to ``eps * alpha_max`` (decreasing)."""
    a_max = alpha_max(problem, name, q=q, atom_norms=atom_norms)
    if a_max <= 0:
        return np.zeros(1)
    return np.geomspace(a_max, a_max * eps, n)


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "penalty": [StrOptions(set(PENALTY_NAMES)), Penalty],
        "q": [Interval(numbers.Real, 0, 1, closed="right")],
        "alphas": [Interval(numbers.Integral, 1, None, closed="left"), "array-like", None],
        "n_alphas": [Interval(numbers.Integral, 1, None, closed="left"), None],
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
    n_alphas: Any = None,
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
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Design (CSC / CSR input is used without densifying).
    y : array-like of shape (n_samples,)
        Target.
    penalty : {'l1', 'l0', 'l1/2', 'l1_2', 'lq', 'cel0'} or Penalty, default='l1'
        Penalty (``'l1_2'`` is another spelling of ``'l1/2'``); the ``alpha`` of a Penalty
        object is replaced by the grid.
    q : float, default=0.5
        Exponent of 'lq'.
    alphas : int, array-like or None, default=None
        The grid, or the number of values of the automatic grid: log-spaced from
        ``alpha_max`` (the smallest alpha whose solution is zero) down to
        ``eps * alpha_max``. None means 30 values.
    n_alphas : int or None, default=None
        Deprecated spelling of an integer ``alphas`` (kept for one release; it warns).
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
        fixed-point distance otherwise). A ``ConvergenceWarning`` names the solves whose
        certificate stayed above ``tol``.

    Notes
    -----
    ``alpha_max`` is computed from the correlations and column norms the solver itself uses
    and checked with its own coordinate step, with a relative margin of ``1e-10``; zero is
    therefore the first solution of the automatic grid on every machine. For non-convex
    penalties each point is a coordinate-wise minimiser reached from the previous one; the
    path is the usual continuation heuristic, not a global solution.

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
    >>> alphas, coefs, _ = lq_path(X, y, penalty="l0", alphas=5)
    >>> coefs.shape
    (10, 5)
    >>> bool(np.all(coefs[:, 0] == 0))  # alpha_max: zero is the solution
    True
    """
    X, y = _check_Xy(X, y)
    name, _, q_, atom_norms = penalty_spec(penalty, 1.0, q)
    if n_alphas is not None:
        warnings.warn(
            "n_alphas is deprecated and will be removed in the next release: pass the number "
            "of values as alphas=n_alphas.",
            FutureWarning,
            stacklevel=3,
        )
        if alphas is None:
            alphas = n_alphas
    problem = make_problem(X, y, fit_intercept=False)
    if alphas is None or isinstance(alphas, numbers.Integral):
        n = 30 if alphas is None else int(alphas)
        grid = make_alpha_grid(problem, name, q_, atom_norms, n, eps)
    else:
        grid = np.sort(np.asarray(alphas, dtype=np.float64).ravel())[::-1]
        if np.any(grid < 0) or not np.all(np.isfinite(grid)):
            raise ValueError("alphas must be finite and non-negative")
    w0 = None if coef_init is None else np.asarray(coef_init, dtype=np.float64)
    res = cd_path(
        problem,
        name,
        grid,
        q=q_,
        atom_norms=atom_norms,
        w0=w0,
        tol=tol,
        max_iter=max_iter,
        verbose=verbose,
    )
    certs = res["certificates"]
    if not np.all(res["converged"]):
        bad = np.flatnonzero(~res["converged"])
        kind = "duality_gap" if name == "l1" else "fixpoint_distance"
        unconverged_warning(
            f"lq_path: {bad.size} of {grid.size} solves (alphas {grid[bad[0]]:.3g}"
            f"{'' if bad.size == 1 else ', ...'})",
            float(np.max(certs[bad])),
            kind,
            tol,
            "Increase max_iter or tol.",
        )
    return grid, res["coefs"], certs


class LqRegression(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Least squares with an l1, l0, l1/2, lq or CEL0 penalty, by working-set CD.

    Minimises ``1/(2 n) ||y - X w - b||^2 + alpha P(w)`` (scikit-learn's ``Lasso`` scaling)
    by coordinate descent with working sets in Numba. Each coordinate step is the exact
    minimiser along that coordinate (a scalar prox), so every step decreases the objective
    for the non-convex penalties too.

    Parameters
    ----------
    penalty : {'l1', 'l0', 'l1/2', 'l1_2', 'lq', 'cel0'} or Penalty, default='l1'
        The penalty ``P`` (``'l1_2'`` is another spelling of ``'l1/2'``), or a
        :mod:`sparsestat.penalties` object (tunable as ``penalty__alpha``; ``alpha`` and
        ``q`` are then ignored). With a name, ``alpha`` is tuned directly (``GridSearchCV``
        over ``alpha``).
    alpha : float, default=1.0
        Penalty weight.
    q : float, default=0.5
        Exponent of 'lq', in (0, 1].
    fit_intercept : bool, default=True
        Fit an unpenalised intercept (by centring; sparse ``X`` is centred implicitly and
        stays sparse).
    max_iter : int, default=100
        Maximum number of outer (working-set) iterations.
    tol : float, default=1e-6
        Stop when the certificate is at most ``tol``. Both certificates are relative, as in
        scikit-learn: the duality gap divided by ``||y||^2 / n`` for 'l1' (the criterion of
        scikit-learn's ``Lasso``), the largest coordinate fixed-point distance
        ``L_j |w_j - prox(w_j - g_j / L_j)|`` divided by ``||X^T y||_inf / n`` otherwise.
    warm_start : bool, default=False
        Start from the previous ``coef_``.
    verbose : int, default=0
        If positive, a progress bar over the outer (working-set) iterations, showing the
        current certificate.

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
        Whether ``certificate_ <= tol``; a ``ConvergenceWarning`` is raised otherwise.
    n_features_in_ : int
        Number of features seen by ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    lq_path : The regularisation path with warm starts.
    LqRegressionCV : ``alpha`` chosen by cross-validation along the path.

    Notes
    -----
    For 'cel0' the atom norms are the column norms of the centred design divided by
    ``sqrt(n)`` (those of the scaled least-squares problem), unless the Penalty object gives
    them; with these norms each coordinate step of CEL0 is a hard threshold, so CD on CEL0
    and on l0 coincide coordinate-wise. Non-convex penalties give coordinate-wise minimisers
    that depend on the start (use ``warm_start`` or :func:`lq_path` for continuation).

    ``sample_weight`` gives the objective ``1/(2 sum s) sum_i s_i (y_i - x_i w - b)^2 +
    alpha P(w)``, so integer weights equal repeated rows (scikit-learn's convention).

    Complexity: one epoch ``O(n |WS|)`` (``O(|WS|^2)`` through the working set's Gram
    matrix when ``|WS| <= n / 2``), one outer scoring ``O(n p)`` (``O(nnz)`` for sparse
    ``X``). Working sets, the fixed-point score and the Anderson acceleration of the epochs
    (tried between iterates of one sign pattern, kept only when the objective decreases)
    follow skglm's ``AndersonCD``; this solver design is not specified by the paper, which
    codes with iterative thresholding; chosen here because coordinate descent with working
    sets is the fastest known solver for these penalties on a single design [2]_.

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
        "penalty": [StrOptions(set(PENALTY_NAMES)), Penalty],
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
    def fit(self, X, y, sample_weight=None):
        """Fit the penalised least-squares model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Design; CSC / CSR matrices are used without densifying.
        y : array-like of shape (n_samples,)
            Target.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative weights of the squared errors (integer weights equal repeated rows).

        Returns
        -------
        self : LqRegression
            The fitted estimator.
        """
        X, y, sample_weight = validate_xy(self, X, y, sample_weight)
        dtype = X.dtype
        X, y, sample_weight = as_float64(X, y, sample_weight)
        name, alpha, q, atom_norms = penalty_spec(self.penalty, self.alpha, self.q)
        problem = make_problem(X, y, sample_weight=sample_weight, fit_intercept=self.fit_intercept)
        w0 = None
        coef = getattr(self, "coef_", None)
        if self.warm_start and coef is not None and coef.shape == (X.shape[1],):
            w0 = np.asarray(coef, dtype=np.float64)
        res = cd_solve(
            problem,
            name,
            alpha,
            q=q,
            atom_norms=atom_norms,
            w0=w0,
            tol=self.tol,
            max_iter=self.max_iter,
            verbose=self.verbose,
        )
        self.coef_ = res["coef"].astype(dtype, copy=False)
        self.intercept_ = problem.intercept(res["coef"]) if self.fit_intercept else 0.0
        self.n_iter_ = res["n_iter"]
        self.n_epochs_ = res["n_epochs"]
        self.certificate_ = res["certificate"]
        self.certificate_kind_ = res["certificate_kind"]
        self.converged_ = res["converged"]
        if not self.converged_:
            unconverged_warning(
                f"LqRegression (max_iter={self.max_iter} outer iterations)",
                self.certificate_,
                self.certificate_kind_,
                self.tol,
                "Increase max_iter or tol, or scale the features.",
            )
        return self


class LqRegressionCV(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """:class:`LqRegression` with ``alpha`` chosen by cross-validation along the path.

    As scikit-learn's ``LassoCV``, for any penalty: the grid of ``alphas`` is computed on all
    the data (from ``alpha_max`` down to ``eps * alpha_max``); for every fold the whole path
    is solved on the training rows, each ``alpha`` warm-started from the previous one (the
    intercept refitted on those rows), and scored by the mean squared error on the test rows.
    The ``alpha`` with the smallest mean error is refitted on all the data along the same
    path. With ``penalty='l1'`` this is ``LassoCV`` (same folds and grid, same result).

    Parameters
    ----------
    penalty : {'l1', 'l0', 'l1/2', 'l1_2', 'lq', 'cel0'} or Penalty, default='l1'
        The penalty (a Penalty object's ``alpha`` is replaced by the grid).
    q : float, default=0.5
        Exponent of 'lq', in (0, 1].
    eps : float, default=1e-3
        Ratio ``alpha_min / alpha_max`` of the automatic grid.
    alphas : int or array-like, default=100
        Number of values of the automatic grid, or the grid itself.
    fit_intercept : bool, default=True
        Fit an intercept (refitted on the training rows of every fold).
    max_iter : int, default=100
        Maximum outer (working-set) iterations of each solve.
    tol : float, default=1e-6
        Relative certificate of each solve (see :class:`LqRegression`).
    cv : int, cross-validation generator or iterable, default=None
        Folds, as in scikit-learn (None: 5-fold).
    n_jobs : int or None, default=None
        Folds run in parallel (joblib threads).
    verbose : int, default=0
        Progress bar over the grid of the final refit.

    Attributes
    ----------
    alpha_ : float
        The chosen penalty weight.
    alphas_ : ndarray of shape (n_alphas,)
        The grid, decreasing.
    mse_path_ : ndarray of shape (n_alphas, n_folds)
        Mean squared test error of each ``alpha`` on each fold.
    coef_ : ndarray of shape (n_features,)
        Coefficients of the refit at ``alpha_``.
    intercept_ : float
        Intercept of the refit.
    n_iter_ : int
        Outer iterations of the final solve.
    certificate_ : float
        Certificate of the final solve.
    converged_ : bool
        Whether every solve of the final path converged.
    n_features_in_ : int
        Number of features seen by ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    LqRegression : The model at a given ``alpha``.
    lq_path : The regularisation path.
    sklearn.linear_model.LassoCV : The l1 case.

    Notes
    -----
    Cost: ``n_folds + 1`` paths of ``n_alphas`` warm-started solves (the refit stops at
    ``alpha_``). For non-convex penalties the refit follows the path, so the model refitted
    at ``alpha_`` is the continuation solution that cross-validation scored, not a cold
    start at ``alpha_``. Test errors are weighted by ``sample_weight`` when given, as in
    ``LassoCV``. CSC / CSR input stays sparse.

    References
    ----------
    .. [1] J. Friedman, T. Hastie, R. Tibshirani, "Regularization paths for generalized
       linear models via coordinate descent", J. Statistical Software 33(1), 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.linear_model import LqRegressionCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 20))
    >>> y = X[:, 3] - 2 * X[:, 7] + 0.1 * rng.standard_normal(100)
    >>> model = LqRegressionCV(penalty="l0", alphas=20, cv=3).fit(X, y)
    >>> np.flatnonzero(model.coef_)
    array([3, 7])
    """

    _parameter_constraints: dict = {
        "penalty": [StrOptions(set(PENALTY_NAMES)), Penalty],
        "q": [Interval(numbers.Real, 0, 1, closed="right")],
        "eps": [Interval(numbers.Real, 0, 1, closed="neither")],
        "alphas": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "cv": ["cv_object"],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        penalty="l1",
        *,
        q=0.5,
        eps=1e-3,
        alphas=100,
        fit_intercept=True,
        max_iter=100,
        tol=1e-6,
        cv=None,
        n_jobs=None,
        verbose=0,
    ):
        self.penalty = penalty
        self.q = q
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.n_jobs = n_jobs
        self.verbose = verbose

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Choose ``alpha`` by cross-validation and refit on all the data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Design.
        y : array-like of shape (n_samples,)
            Target.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative weights (training and test errors).

        Returns
        -------
        self : LqRegressionCV
            The fitted estimator.
        """
        from sparsestat.linear_model._cv import cv_path_mse

        X, y, sample_weight = validate_xy(self, X, y, sample_weight)
        dtype = X.dtype
        X, y, sample_weight = as_float64(X, y, sample_weight)
        name, _, q, atom_norms = penalty_spec(self.penalty, 1.0, self.q)
        full = make_problem(X, y, sample_weight=sample_weight, fit_intercept=self.fit_intercept)
        if isinstance(self.alphas, numbers.Integral):
            grid = make_alpha_grid(full, name, q, atom_norms, int(self.alphas), self.eps)
        else:
            grid = np.sort(np.asarray(self.alphas, dtype=np.float64).ravel())[::-1]
            if grid.size == 0 or np.any(grid < 0) or not np.all(np.isfinite(grid)):
                raise ValueError("alphas must be non-empty, finite and non-negative")
        kw = {"q": q, "atom_norms": atom_norms, "tol": self.tol, "max_iter": self.max_iter}

        def path(X_t: Any, y_t: np.ndarray, sw_t: Any) -> tuple[np.ndarray, np.ndarray, int]:
            prob = make_problem(X_t, y_t, sample_weight=sw_t, fit_intercept=self.fit_intercept)
            res = cd_path(prob, name, grid, **kw)
            b = prob.y_offset - prob.x_offset @ res["coefs"]
            return res["coefs"], np.atleast_1d(b), int(np.sum(~res["converged"]))

        X_rows = sp.csr_matrix(X) if sp.issparse(X) else X
        self.mse_path_, best, n_bad = cv_path_mse(
            path, X_rows, y, sample_weight, self.cv, self.n_jobs
        )
        self.alphas_ = grid
        self.alpha_ = float(grid[best])
        res = cd_path(full, name, grid[: best + 1], verbose=self.verbose, **kw)
        coef = res["coefs"][:, -1]
        self.coef_ = coef.astype(dtype, copy=False)
        self.intercept_ = full.intercept(coef) if self.fit_intercept else 0.0
        self.n_iter_ = int(res["n_iter"][-1])
        self.certificate_ = float(res["certificates"][-1])
        self.converged_ = bool(np.all(res["converged"]))
        n_bad += int(np.sum(~res["converged"]))
        if n_bad:
            warnings.warn(
                f"LqRegressionCV: {n_bad} solves (over the folds and the final path) did not "
                f"reach tol={self.tol:.1e} in max_iter={self.max_iter} outer iterations. "
                "Increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self
