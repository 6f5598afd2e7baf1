"""Classical sparse Bayesian learning (EM-SBL, Tipping / Wipf-Rao), real or complex, MMV."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

from sparsestat.bayes._base import SBLRegressorBase, require_y, validate_dense
from sparsestat.utils._compat import Interval, StrOptions, fit_context

__all__ = ["SparseBayesianLearning"]


class SparseBayesianLearning(SBLRegressorBase):
    """Sparse Bayesian learning by expectation-maximisation (classical EM-SBL).

    Model ``y = X w + b + n`` with independent priors ``w_j ~ N(0, gamma_j)`` (``CN`` for
    complex data), an intercept ``b`` and noise ``N(0, sigma^2 I)``. The prior variances
    ``gamma`` maximise the marginal likelihood of ``y`` (type-II maximum likelihood) by EM: the
    E-step computes the Gaussian posterior of ``w``, the M-step sets ``gamma = diag(Sigma) +
    |mu|^2``. Entries with ``gamma_j < prune_threshold * max(gamma)`` are pruned for good,
    which makes the estimate sparse. A 2-D ``y`` (multiple measurement vectors, M-SBL) shares
    one ``gamma`` across its columns.

    Read more in the :ref:`User Guide <kronecker_sbl>`.

    Parameters
    ----------
    max_iter : int, default=150
        Maximum number of EM iterations.
    tol : float, default=1e-4
        Stop when ``||gamma_new - gamma_old|| / ||gamma_old|| <= tol``.
    prune_threshold : float, default=1e-3
        Relative pruning threshold: ``w_j`` is removed for good once ``gamma_j <
        prune_threshold * max(gamma)``; 0 disables relative pruning.
    prune_abs : float, default=0.0
        Absolute pruning threshold on ``gamma``.
    noise_variance : "auto" or float, default="auto"
        Known noise variance ``sigma^2``, or ``"auto"`` to estimate it by EM.
    noise_init : float, default=0.1
        With ``noise_variance="auto"``, EM starts from ``noise_init * var(y)``, where ``var``
        divides by the number of samples (NumPy's default). See Notes for the authors'
        convention.
    fit_intercept : bool, default=True
        Whether to fit an intercept: ``X`` and ``y`` are centred (with the sample weights)
        before EM, and ``intercept_ = mean(y) - mean(X) @ coef_``. With False the data are
        expected to be centred.
    compute_score : bool, default=False
        Record the objective ``log|C| + tr(Y^H C^{-1} Y) / L`` at each E-step in ``scores_``
        (``C = sigma^2 I + X Gamma X^H``; the negative log marginal likelihood up to
        constants).
    keep_path : bool, default=False
        Keep the posterior mean of every EM iteration in ``coef_path_`` (for convergence
        studies; memory ``n_iter * n_features``).
    verbose : int, default=0
        Show a progress bar over EM iterations when positive.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Posterior mean of the weights (complex for complex data), zero where pruned.
    intercept_ : float, complex or ndarray of shape (n_targets,)
        Intercept (0 when ``fit_intercept=False``).
    gamma_ : ndarray of shape (n_features,)
        Final prior variances, zero where pruned.
    support_ : array of int
        Indices with ``gamma_ > 0`` (in the array library of the input).
    sigma_ : ndarray of shape (n_support, n_support) or None
        Posterior covariance of ``coef_[support_]``; None when more coefficients are kept
        than there are samples and 1000 (forming it would then cost more than the fit).
    sigma_diag_ : ndarray of shape (n_features,)
        Posterior variances, zero where pruned.
    X_offset_ : ndarray of shape (n_features,)
        Weighted mean of ``X`` removed before EM (zeros without an intercept).
    noise_variance_ : float
        Noise variance of the last iteration (given or estimated).
    n_iter_ : int
        Number of EM iterations run.
    converged_ : bool
        Whether the relative change of ``gamma`` reached ``tol``.
    rel_change_ : float
        The last relative change of ``gamma`` (the convergence certificate).
    scores_ : ndarray
        Objective per E-step (only with ``compute_score=True``).
    coef_path_ : ndarray of shape (n_iter, n_features) or (n_iter, n_targets, n_features)
        Posterior mean of each iteration's E-step (only with ``keep_path=True``).
    coef_tensor_ : ndarray
        Same as ``coef_`` (kept for symmetry with :class:`KroneckerSBL`).
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    KroneckerSBL : the same model with a Kronecker-structured dictionary and prior.
    sklearn.linear_model.ARDRegression : real-valued ARD with Gamma hyperpriors.

    Notes
    -----
    **E-step.** With ``n_samples <= n_features`` the posterior is computed in sample space:
    ``C = sigma^2 I + X Gamma X^H`` is factorised once per iteration and solved against
    ``[X, y]``, ``O(M^2 N + M^3)`` time and ``O(M N)`` memory for ``M`` samples and ``N``
    features. With more samples than features it is computed in feature space, ``Sigma = S
    (I + S X^H X S / sigma^2)^{-1} S`` with ``S = Gamma^{1/2}``, from ``X^H X`` and ``X^H y``
    formed once: ``O(N^3)`` per iteration after ``O(M N^2)`` once. Both give the same
    posterior. The full ``N x N`` covariance is formed only over the support at the end
    (``sigma_``, for ``predict(return_std=True)``).

    **Noise.** Update (Wipf and Rao's EM): ``sigma^2 <- (||y - X mu||^2 + sigma^2 sum_j
    (1 - Sigma_jj / gamma_j)) / M``. For several columns the residual is averaged over them
    (not specified by the paper; chosen here because it is the EM update of the shared-noise
    model). The starting value ``noise_init * var(y)`` uses the ``1 / M`` variance; the
    reference implementation of He and Joseph starts from ``0.1 * var(y)`` with MATLAB's
    ``M - 1`` divisor, so the default starts ``(M - 1) / M`` lower. To reproduce their iterates
    pass ``noise_init=0.1 * M / (M - 1)``.

    **Choices not specified by the papers.** Columns of ``X`` that are numerically zero (norm
    at most ``1e-12`` times the largest) are dropped before the first iteration, chosen here
    because their coefficients do not affect ``y`` (they are 0) and their variances are
    unidentifiable. The E-step uses a noise variance of at least ``1e-13`` times the largest
    diagonal entry of ``X Gamma X^H`` (``10 eps`` of the working precision if larger), so
    that the covariance stays positive definite for almost noiseless ``y``. The noise
    estimate is floored at ``1e-12 mean|y|^2``.

    **Sample weights** scale the noise precision of each sample: a weight ``w_i`` gives sample
    ``i`` the noise variance ``sigma^2 / w_i``, so an integer weight counts the sample that
    many times and a zero weight removes it, and ``M`` above is the sum of the weights.

    **Arrays.** float32 input is fitted in float32 (complex64 likewise); everything else in
    float64 / complex128. Complex input is accepted, so scikit-learn's ``check_complex_data``
    (which expects complex input to be rejected) does not apply. CuPy and torch arrays (and
    other array-API arrays) are fitted on their own device with the generic kernels; the
    fitted arrays are of that library. ``predict`` also accepts a dask array and returns a lazy
    dask array, computed block by block.

    References
    ----------
    .. [1] M. E. Tipping, "Sparse Bayesian learning and the relevance vector machine",
       JMLR 1, 2001.
    .. [2] D. P. Wipf and B. D. Rao, "Sparse Bayesian learning for basis selection",
       IEEE Trans. Signal Process. 52(8), 2004.
    .. [3] Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector
       recovery with application to IRS-MIMO channel estimation", IEEE Trans. Signal
       Process., 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.bayes import SparseBayesianLearning
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((40, 80))
    >>> w = np.zeros(80); w[[3, 20, 50]] = [1.0, -2.0, 1.5]
    >>> y = X @ w + 5.0 + 0.01 * rng.standard_normal(40)
    >>> model = SparseBayesianLearning(noise_variance=1e-4).fit(X, y)
    >>> model.support_
    array([ 3, 20, 50])
    >>> bool(np.allclose(model.coef_[[3, 20, 50]], [1.0, -2.0, 1.5], atol=0.02))
    True
    >>> round(model.intercept_, 2)
    5.0
    >>> y_mean, y_std = model.predict(X[:2], return_std=True)
    >>> y_std.shape
    (2,)
    """

    _parameter_constraints: dict = {
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "prune_threshold": [Interval(Real, 0, 1, closed="left")],
        "prune_abs": [Interval(Real, 0, None, closed="left")],
        "noise_variance": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "noise_init": [Interval(Real, 0, None, closed="neither")],
        "fit_intercept": ["boolean"],
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
        fit_intercept=True,
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
        self.fit_intercept = fit_intercept
        self.compute_score = compute_score
        self.keep_path = keep_path
        self.verbose = verbose

    def _em_params(self, n_factors: int) -> dict[str, Any]:
        return {
            "method": "svd",
            "noise_var": None if self.noise_variance == "auto" else float(self.noise_variance),
            "noise_init": self.noise_init,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "prune_rel": self.prune_threshold,
            "prune_abs": self.prune_abs,
            "compute_score": self.compute_score,
            "keep_path": self.keep_path,
        }

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model by EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dictionary (real or complex).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Measurements (real or complex); several columns share one prior.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: sample ``i`` gets noise variance ``sigma^2 /
            sample_weight[i]`` (integer weights repeat samples, zero removes them).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        require_y(self, y)
        X, y = validate_dense(self, X, y)
        self._fit_dense(X, y, sample_weight)
        self.coef_tensor_ = self.coef_
        return self

    def predict(self, X, return_std=False):
        """Predict with the posterior mean, ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Samples. A dask array gives a lazy dask array, computed block by block.
        return_std : bool, default=False
            Also return the standard deviation of the posterior predictive distribution,
            ``sqrt(x_c^H Sigma x_c + sigma^2)`` with ``x_c = x - X_offset_``.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions.
        y_std : ndarray of the shape of ``y_mean``
            Predictive standard deviations (only with ``return_std=True``).
        """
        return self._predict_dense(X, return_std)

    def score(self, X, y, sample_weight=None):
        """Coefficient of determination R^2 (with ``|.|^2`` for complex data).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            True targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            R^2 of ``self.predict(X)``.
        """
        return self._score_dense(X, y, sample_weight)
