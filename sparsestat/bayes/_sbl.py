"""Classical sparse Bayesian learning (EM-SBL, Tipping / Wipf-Rao), real or complex, MMV."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from sparsestat._solvers.sbl import sbl_em, warn_convergence
from sparsestat.bayes._base import (
    is_complex_input,
    r2_score_any,
    require_y,
    set_fitted,
    validate_dense,
)
from sparsestat.utils import progress_bar
from sparsestat.utils._compat import Interval, StrOptions, fit_context

__all__ = ["SparseBayesianLearning"]


class SparseBayesianLearning(RegressorMixin, BaseEstimator):
    """Sparse Bayesian learning by expectation-maximisation (classical EM-SBL).

    Model ``y = X w + n`` with independent priors ``w_n ~ N(0, gamma_n)`` (``CN`` for complex
    data) and noise ``N(0, sigma^2 I)``. The hyperparameters ``gamma`` maximise the type-II
    likelihood by EM: the E-step computes the Gaussian posterior of ``w`` in sample space
    (an ``M x M`` solve, Woodbury form), the M-step sets ``gamma = diag(Sigma) + |mu|^2``.
    Entries with ``gamma_n < prune_threshold * max(gamma)`` are pruned for good. A 2-D ``y``
    (multiple measurement vectors, M-SBL) shares one ``gamma`` across its columns.

    Parameters
    ----------
    max_iter : int, default=150
        Maximum number of EM iterations.
    tol : float, default=1e-4
        Stop when ``||gamma_new - gamma_old|| / ||gamma_old|| <= tol``.
    prune_threshold : float, default=1e-3
        Relative pruning threshold (0 disables relative pruning).
    prune_abs : float, default=0.0
        Absolute pruning threshold.
    noise_variance : "auto" or float, default="auto"
        Known noise variance ``sigma^2``, or ``"auto"`` to estimate it by EM.
    noise_init : float, default=0.1
        With ``noise_variance="auto"``, the starting value is ``noise_init * var(y)``.
    compute_score : bool, default=False
        Record the objective ``log|C| + tr(Y^H C^{-1} Y) / L`` at each E-step in ``scores_``.
    keep_path : bool, default=False
        Keep the posterior mean of every EM iteration in ``coef_path_`` (for convergence
        studies; memory ``n_iter * N``).
    verbose : int, default=0
        Show a progress bar over EM iterations when positive.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Posterior mean of the weights (complex for complex data), zero where pruned.
    gamma_ : ndarray of shape (n_features,)
        Final prior variances, zero where pruned.
    support_ : ndarray of int
        Indices with ``gamma_ > 0``.
    sigma_diag_ : ndarray of shape (n_features,)
        Posterior variances.
    noise_variance_ : float
        Noise variance used in the last iteration (given or estimated).
    n_iter_ : int
        Number of EM iterations run.
    converged_ : bool
        Whether the relative change of ``gamma`` reached ``tol``.
    rel_change_ : float
        The last relative change of ``gamma`` (the convergence certificate).
    scores_ : ndarray
        Objective per E-step (only with ``compute_score=True``).
    coef_path_ : array of shape (n_iter, N) or (n_iter, n_targets, N)
        Posterior mean of each iteration's E-step (only with ``keep_path=True``).
    coef_tensor_ : ndarray
        Same as ``coef_`` (kept for symmetry with :class:`KroneckerSBL`).
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    KroneckerSBL : the same model with a Kronecker-structured dictionary and prior.
    sklearn.linear_model.ARDRegression : real-valued ARD with gamma hyperpriors.

    Notes
    -----
    The E-step solves ``C = sigma^2 I + X Gamma X^H`` against ``[X, y]``: ``O(M^2 N + M^3)``
    time and ``O(M N)`` memory per iteration; the ``N x N`` posterior covariance is never
    formed. Noise update (Wipf-Rao EM): ``sigma^2 <- (||y - X mu||^2 + sigma^2 sum_n
    (1 - Sigma_nn / gamma_n)) / M``; for several columns the residual is averaged over them
    [inferred]. Columns of ``X`` that are numerically zero (norm at most ``1e-12`` times the
    largest) are dropped before the first iteration (their coefficients are 0, their
    variances unidentifiable) [inferred]; the E-step uses a noise variance of at least
    ``1e-13`` times the largest diagonal entry of ``X Gamma X^H``, so the covariance stays
    positive definite for almost noiseless ``y`` [inferred]. No intercept is fitted: centre
    the data first. Computations run in float64 / complex128. Complex input is accepted, so
    scikit-learn's ``check_complex_data`` (which expects complex input to be rejected) does
    not apply.

    References
    ----------
    .. [1] M. E. Tipping, "Sparse Bayesian learning and the relevance vector machine",
       JMLR 1, 2001.
    .. [2] D. P. Wipf and B. D. Rao, "Sparse Bayesian learning for basis selection",
       IEEE Trans. Signal Process. 52(8), 2004.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.bayes import SparseBayesianLearning
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 80))
    >>> w = np.zeros(80); w[[3, 20, 50]] = [1.0, -2.0, 1.5]
    >>> y = X @ w + 0.01 * rng.standard_normal(40)
    >>> model = SparseBayesianLearning(noise_variance=1e-4).fit(X, y)
    >>> model.support_
    array([ 3, 20, 50])
    >>> bool(np.allclose(model.coef_[[3, 20, 50]], [1.0, -2.0, 1.5], atol=0.02))
    True
    """

    _parameter_constraints: dict = {
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "prune_threshold": [Interval(Real, 0, 1, closed="left")],
        "prune_abs": [Interval(Real, 0, None, closed="left")],
        "noise_variance": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "noise_init": [Interval(Real, 0, None, closed="neither")],
        "compute_score": ["boolean"],
        "keep_path": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        max_iter=150,
        tol=1e-4,
        prune_threshold=1e-3,
        prune_abs=0.0,
        noise_variance="auto",
        noise_init=0.1,
        compute_score=False,
        keep_path=False,
        verbose=0,
    ):
        self.max_iter = max_iter
        self.tol = tol
        self.prune_threshold = prune_threshold
        self.prune_abs = prune_abs
        self.noise_variance = noise_variance
        self.noise_init = noise_init
        self.compute_score = compute_score
        self.keep_path = keep_path
        self.verbose = verbose

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the model by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dictionary (real or complex).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Measurements (real or complex); several columns share one prior.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        require_y(self, y)
        X, y = validate_dense(self, X, y)
        dtype = np.result_type(X, y, np.float64)
        X, Y = np.asarray(X, dtype=dtype), np.asarray(y, dtype=dtype)
        y_1d = Y.ndim == 1
        Y = Y[:, None] if y_1d else Y
        with progress_bar(total=self.max_iter, verbose=self.verbose, desc="SBL") as bar:
            res = sbl_em(
                [X],
                Y,
                method="svd",
                estep="dense",
                noise_var=None if self.noise_variance == "auto" else self.noise_variance,
                noise_init=self.noise_init,
                max_iter=self.max_iter,
                tol=self.tol,
                prune_rel=self.prune_threshold,
                prune_abs=self.prune_abs,
                compute_score=self.compute_score,
                keep_path=self.keep_path,
                callback=lambda it, ch: (bar.update(1), bar.set_postfix(change=f"{ch:.2e}")),
            )
        set_fitted(self, res, y_1d, [X.shape[1]])
        self.coef_tensor_ = self.coef_
        warn_convergence(type(self).__name__, res, self.max_iter, self.tol)
        return self

    def predict(self, X):
        """Predict with the posterior mean, ``X @ coef_.T``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions.
        """
        check_is_fitted(self)
        X = validate_dense(self, X, reset=False)
        return X @ self.coef_.T

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2 (with ``|.|^2`` for complex data).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            True targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights (real data only).

        Returns
        -------
        score : float
            R^2 of ``self.predict(X)``.
        """
        if is_complex_input(X, y) or np.iscomplexobj(getattr(self, "coef_", 0.0)):
            return r2_score_any(y, self.predict(X))
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
