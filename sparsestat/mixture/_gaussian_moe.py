"""Softmax Gaussian mixture of linear experts with temperature and dense-to-sparse gates."""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from sparsestat._kernels.moe import activation_functions, moe_estep, moe_sample
from sparsestat._solvers.moe import Gate, fit_em
from sparsestat.utils._compat import (
    Interval,
    StrOptions,
    check_sample_weight,
    fit_context,
    validate_data,
)
from sparsestat.utils._dask import rowwise

__all__ = ["GaussianMoERegressor"]

_GATES = ("softmax", "dense_to_sparse", "activation_dense_to_sparse")
_ATTRS = {
    "gate_coef": "gate_coef_",
    "gate_intercept": "gate_intercept_",
    "inner_intercept": "gate_inner_intercept_",
    "temperature": "temperature_",
    "coef": "coef_",
    "intercept": "intercept_",
    "variances": "variances_",
}


class GaussianMoERegressor(RegressorMixin, BaseEstimator):
    """Gaussian mixture of linear experts with softmax, temperature or activation gates.

    The conditional density is ``p(y | x) = sum_i pi_i(x) N(y; a_i^T x + b_i, nu_i)`` with
    ``pi = softmax(s(x))`` and gate logits ``s_i(x)`` given by ``gate``:

    - ``'softmax'``: ``beta_1i^T x + beta_0i``;
    - ``'dense_to_sparse'``: ``beta_1i^T x / tau + beta_0i`` (temperature ``tau``);
    - ``'activation_dense_to_sparse'``: ``f(beta_1i^T x) / tau + beta_0i`` (activation ``f``).

    The maximum-likelihood estimate is computed by generalised EM from ``n_init`` starts,
    keeping the run with the highest final log-likelihood.

    Parameters
    ----------
    n_experts : int, default=2
        Number of experts k.
    gate : {'softmax', 'dense_to_sparse', 'activation_dense_to_sparse'}, default='softmax'
        Gating function (see above).
    activation : {'tanh', 'sigmoid', 'gelu', 'identity', 'relu'} or tuple (f, fprime), \
default='tanh'
        Activation of the ``'activation_dense_to_sparse'`` gate; ignored by the others.
        Positively homogeneous activations ('identity', 'relu') are rejected unless
        ``allow_homogeneous=True``, because they bring back the temperature degeneracy.
    temperature : float, default=1.0
        Temperature tau (fixed value, or starting value when ``fit_temperature=True``).
        The 'softmax' gate has tau = 1.
    fit_temperature : bool or 'auto', default='auto'
        Fit tau (through log tau, clipped to [1e-3, 1e3]). 'auto' fits it where it is
        identifiable: for the ``'activation_dense_to_sparse'`` gate with a non-homogeneous
        activation, not for the linear ``'dense_to_sparse'`` gate, whose logits depend on
        ``gate_coef_ / tau`` only (a fixed tau then gives the same maximum likelihood). With
        ``True`` on a gate where tau is not identifiable (linear, or a homogeneous activation
        allowed by ``allow_homogeneous``) tau is fitted anyway, as in the paper's temperature
        experiment, and a ``UserWarning`` says that only ``effective_gate_coef_`` is
        identifiable. The 'softmax' gate has tau = 1.
    max_iter : int, default=500
        Maximum number of EM iterations per start.
    tol : float, default=1e-6
        EM stops when the mean log-likelihood rises by less than ``tol * max(1, |ll|)``.
    n_init : int, default=5
        Number of starts; the best final log-likelihood is kept.
    init_params : {'kmeans', 'random', 'random_from_data'}, default='kmeans'
        Starting responsibilities: k-means on standardised ``[X, y]`` (hard), Dirichlet
        (soft), or hard assignment to k random data points; followed by one M-step.
    initial_params : dict or None, default=None
        Start at these parameters instead (keys: the fitted attribute names ``gate_coef_``,
        ``gate_intercept_``, ``coef_``, ``intercept_``, ``variances_``, optionally
        ``temperature_`` and ``gate_inner_intercept_``); one run is made.
    gate_max_iter : int, default=10
        L-BFGS-B iterations of each gate M-step (the gate step of a generalised EM needs
        only to increase its objective, not to solve it; ``benchmarks/bench_moe.py
        --gate-max-iter`` compares 10 with 25).
    reg_covar : float, default=1e-6
        Variance floor, relative to ``Var(y)``: every ``nu_i >= reg_covar * Var(y)`` (the
        likelihood is unbounded otherwise).
    allow_homogeneous : bool, default=False
        Allow a positively homogeneous activation for the activation gate.
    gate_inner_bias : bool, default=False
        Activation gate with a bias inside the activation, ``f(beta_1i^T x + gamma_i)``.
    warm_start : bool, default=False
        Start from the previous fit (one run) when refitting.
    n_jobs : int or None, default=None
        Number of joblib workers for the ``n_init`` starts.
    random_state : int, RandomState instance or None, default=None
        Seeds the starts.
    verbose : int, default=0
        Show a progress bar over EM iterations when > 0.

    Attributes
    ----------
    gate_coef_ : ndarray of shape (n_experts, n_features)
        Gate slopes beta_1 (last row zero for the linear gates).
    gate_intercept_ : ndarray of shape (n_experts,)
        Gate intercepts beta_0 (last entry zero); the mixing weights are ``exp(beta_0)``.
    gate_inner_intercept_ : ndarray of shape (n_experts,) or None
        Bias inside the activation (``gate_inner_bias=True``), else None.
    temperature_ : float
        Fitted (or fixed) temperature.
    effective_gate_coef_ : ndarray of shape (n_experts, n_features)
        ``gate_coef_ / temperature_``, the identifiable gate slope of the linear gates.
    fit_temperature_ : bool
        Whether the temperature was fitted (resolves ``fit_temperature='auto'``).
    coef_ : ndarray of shape (n_experts, n_features)
        Expert slopes a_i.
    intercept_ : ndarray of shape (n_experts,)
        Expert intercepts b_i.
    variances_ : ndarray of shape (n_experts,)
        Expert noise variances nu_i.
    lower_bound_ : float
        (Weighted) mean log-likelihood of the best start at its final parameters.
    log_likelihood_history_ : ndarray of shape (n_iter + 1,)
        (Weighted) mean log-likelihood after the initial M-step and after every EM iteration
        of the best start (non-decreasing).
    converged_ : bool
        Whether the best start met the ``tol`` certificate.
    n_iter_ : int
        EM iterations of the best start.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Feature names, when ``X`` has string column names.

    See Also
    --------
    sklearn.mixture.GaussianMixture : the special case X = 0 (mixture of 1-D Gaussians on y).

    Notes
    -----
    Algorithm: generalised EM. The paper's algorithm box was not available; EM is used
    because the companion paper computes its maximum-likelihood estimate by EM.

    1. E-step (kernel ``moe_estep``): responsibilities from log-softmax gate terms and Gaussian
       log-densities, combined with log-sum-exp.
    2. Expert M-step (kernels ``moe_expert_moments``, ``moe_solve_experts``,
       ``moe_weighted_sse``): weighted least squares per expert, then
       ``nu_i = max(SSE_i / sum_n R_ni, reg_covar Var(y))``, the maximiser under the floor
       (not specified by the paper; chosen here because adding the floor instead would
       break the monotonicity of EM).
    3. Gate M-step: L-BFGS-B on ``Q = sum R log pi`` with analytic gradients, warm started,
       accepted only when Q does not decrease (L-BFGS-B's relative-decrease tolerance is
       ``min(1e-3 tol, 1e-9)``). Gauge: ``beta_0k = 0``; linear gates also
       ``beta_1k = 0``. The temperature is optimised through log tau.

    ``sample_weight`` multiplies every sum over the data (a weighted likelihood); rows of
    weight zero are dropped, and the default k-means start is computed on the rows in sorted
    order with weighted k-means++ seeding, so an integer weight gives the fit of the
    repeated row (with ``init_params='random'`` each repeated row would draw its own random
    responsibilities instead).

    Features are scaled by their standard deviation (and centred for the linear gates) inside
    the fit; parameters are reported in the original units. The EM runs in float64 (the
    log-likelihood sums need it): the fitted parameters are float64, and ``predict``,
    ``predict_proba`` and ``sample`` return float32 for float32 ``X``. The bias placement of
    the activation gate (outside f by default) is not specified by the paper's abstract;
    outside is chosen so that the mixing weights are ``exp(beta_0)`` (``gate_inner_bias``
    gives the other placement).

    ``score`` is R^2, as for every scikit-learn regressor; the likelihood is
    :meth:`score_loglik` (mean log-likelihood) and :meth:`log_likelihood_samples` (per
    sample; named so because scikit-learn's ``score_samples`` takes no ``y``).
    ``predict_proba`` returns the gate probabilities, so scikit-learn's check that a
    regressor has no ``predict_proba`` is an expected failure. ``predict`` and
    ``predict_proba`` of a :class:`dask.array.Array` return lazy dask arrays, computed by
    blocks of rows.

    Complexity per EM iteration: E-step O(nkd), experts O(nkd^2 + kd^3), gate
    O(gate_max_iter nkd); memory O(nk).

    References
    ----------
    .. [1] H. Nguyen, P. Akbarian, N. Ho, "Is Temperature Sample Efficient for Softmax Gaussian
       Mixture of Experts?", ICML 2024, arXiv:2401.13875.
    .. [2] H. Nguyen, T. Nguyen, N. Ho, "Demystifying Softmax Gating Function in Gaussian
       Mixture of Experts", NeurIPS 2023, arXiv:2305.03288.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.mixture import GaussianMoERegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1, 1, size=(400, 1))
    >>> y = np.where(X[:, 0] < 0, -2 * X[:, 0], 3 + X[:, 0]) + 0.1 * rng.randn(400)
    >>> moe = GaussianMoERegressor(n_experts=2, n_init=2, random_state=0).fit(X, y)
    >>> bool(np.abs(np.sort(moe.coef_[:, 0]) - [-2.0, 1.0]).max() < 0.1)
    True
    >>> moe.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        "n_experts": [Interval(Integral, 1, None, closed="left")],
        "gate": [StrOptions(set(_GATES))],
        "activation": [StrOptions({"tanh", "sigmoid", "gelu", "identity", "relu"}), tuple],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "fit_temperature": ["boolean", StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"kmeans", "random", "random_from_data"})],
        "initial_params": [dict, None],
        "gate_max_iter": [Interval(Integral, 1, None, closed="left")],
        "reg_covar": [Interval(Real, 0, None, closed="left")],
        "allow_homogeneous": ["boolean"],
        "gate_inner_bias": ["boolean"],
        "warm_start": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_experts=2,
        *,
        gate="softmax",
        activation="tanh",
        temperature=1.0,
        fit_temperature="auto",
        max_iter=500,
        tol=1e-6,
        n_init=5,
        init_params="kmeans",
        initial_params=None,
        gate_max_iter=10,
        reg_covar=1e-6,
        allow_homogeneous=False,
        gate_inner_bias=False,
        warm_start=False,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_experts = n_experts
        self.gate = gate
        self.activation = activation
        self.temperature = temperature
        self.fit_temperature = fit_temperature
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.init_params = init_params
        self.initial_params = initial_params
        self.gate_max_iter = gate_max_iter
        self.reg_covar = reg_covar
        self.allow_homogeneous = allow_homogeneous
        self.gate_inner_bias = gate_inner_bias
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    # ------------------------------------------------------------------ helpers
    def _resolve_fit_temperature(self, homogeneous: bool) -> bool:
        if self.gate == "softmax":
            return False
        if self.fit_temperature == "auto":
            return not homogeneous
        return bool(self.fit_temperature)

    def _make_gate(self, n_features: int) -> Gate:
        if self.gate == "activation_dense_to_sparse":
            _, _, homogeneous = activation_functions(self.activation)
            if homogeneous and not self.allow_homogeneous:
                raise ValueError(
                    f"activation={self.activation!r} is positively homogeneous "
                    "(f(z) = z f'(z)): the activation gate then has the temperature degeneracy "
                    "of the linear gate. Use 'tanh', 'sigmoid' or 'gelu', or set "
                    "allow_homogeneous=True."
                )
            activation = self.activation
        else:
            activation, homogeneous = None, True
        return Gate(
            self.n_experts,
            n_features,
            activation=activation,
            fit_temperature=self._resolve_fit_temperature(homogeneous),
            inner_bias=self.gate_inner_bias,
        )

    def _fitted_params(self) -> dict[str, Any]:
        return {key: getattr(self, attr) for key, attr in _ATTRS.items()}

    def _params_from_dict(self, d: dict[str, Any], gate: Gate) -> dict[str, Any]:
        k, p = self.n_experts, self.n_features_in_
        try:
            P = {
                "gate_coef": np.array(d["gate_coef_"], dtype=float).reshape(k, p),
                "gate_intercept": np.array(d["gate_intercept_"], dtype=float).reshape(k),
                "coef": np.array(d["coef_"], dtype=float).reshape(k, p),
                "intercept": np.array(d["intercept_"], dtype=float).reshape(k),
                "variances": np.array(d["variances_"], dtype=float).reshape(k),
            }
        except KeyError as exc:
            raise ValueError(f"initial_params lacks {exc.args[0]!r}") from None
        except ValueError as exc:
            raise ValueError(f"initial_params has a wrong shape: {exc}") from None
        tau = 1.0 if self.gate == "softmax" else float(d.get("temperature_", self.temperature))
        P["temperature"] = tau
        inner = d.get("gate_inner_intercept_")
        P["inner_intercept"] = (
            np.array(inner, dtype=float).reshape(k)
            if gate.inner_bias and inner is not None
            else (np.zeros(k) if gate.inner_bias else None)
        )
        # gauge: logits are unchanged by subtracting the last expert's beta_0 (and beta_1)
        P["gate_intercept"] = P["gate_intercept"] - P["gate_intercept"][-1]
        if gate.linear:
            P["gate_coef"] = P["gate_coef"] - P["gate_coef"][-1]
        if np.any(P["variances"] <= 0) or not all(
            np.all(np.isfinite(v)) for v in P.values() if isinstance(v, np.ndarray)
        ):
            raise ValueError("initial_params must be finite with positive variances_")
        return P

    def _logits(self, X: np.ndarray) -> np.ndarray:
        gate = self._make_gate(X.shape[1])
        return gate.logits(X, self._fitted_params())

    # ------------------------------------------------------------------ fit
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the mixture of experts by generalised EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Training targets.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative row weights (a weighted likelihood; an integer weight counts the
            row that many times, a zero weight removes it). None gives every row weight 1.

        Returns
        -------
        self : GaussianMoERegressor
            The fitted estimator.
        """
        warm = self.warm_start and hasattr(self, "coef_")
        X, y = validate_data(
            self, X, y, y_numeric=True, reset=not warm, dtype=[np.float64, np.float32]
        )
        w = check_sample_weight(sample_weight, X, dtype=np.float64)
        keep = w > 0
        X = np.asarray(X[keep], dtype=np.float64)
        y = np.asarray(y[keep], dtype=np.float64)
        w = w[keep]
        n, p = X.shape
        if n < self.n_experts:
            raise ValueError(
                f"n_samples={n} (rows of positive sample_weight) should be >= "
                f"n_experts={self.n_experts} for this estimator."
            )
        gate = self._make_gate(p)
        if not gate.identifiable:
            warnings.warn(
                f"gate={self.gate!r} with fit_temperature=True: the temperature is not "
                "identifiable (only gate_coef_ / temperature_ is); see effective_gate_coef_, "
                "or leave fit_temperature='auto'.",
                UserWarning,
                stacklevel=2,
            )
        starts: list[dict[str, Any] | None]
        if warm:
            starts = [self._fitted_params()]
        elif self.initial_params is not None:
            starts = [self._params_from_dict(self.initial_params, gate)]
        else:
            starts = [None] * self.n_init
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=len(starts))
        best = fit_em(
            X,
            y,
            w,
            gate,
            starts=starts,
            seeds=seeds,
            init=self.init_params,
            temperature=1.0 if self.gate == "softmax" else float(self.temperature),
            max_iter=self.max_iter,
            tol=self.tol,
            gate_max_iter=self.gate_max_iter,
            reg_covar=self.reg_covar,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        for key, attr in _ATTRS.items():
            setattr(self, attr, best["params"].get(key))
        self.temperature_ = float(self.temperature_)
        self.fit_temperature_ = gate.fit_temperature
        self.effective_gate_coef_ = self.gate_coef_ / self.temperature_
        self.lower_bound_ = best["lower_bound"]
        self.log_likelihood_history_ = best["history"]
        self.converged_ = best["converged"]
        self.n_iter_ = best["n_iter"]
        if not self.converged_:
            warnings.warn(
                f"GaussianMoERegressor did not converge in max_iter={self.max_iter} "
                "iterations: the last rise of the mean log-likelihood "
                f"{best['last_change']:.3e} exceeds tol*max(1,|ll|) = "
                f"{self.tol * max(1.0, abs(best['history'][-2])):.3e}.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    # ------------------------------------------------------------------ inference
    def _validate_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    @rowwise(n_outputs=lambda est: est.n_experts)
    def predict_proba(self, X):
        """Gate probabilities pi(x).

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Features (a dask array gives a lazy dask array).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_experts)
            Softmax of the gate logits; rows sum to one (float32 for float32 ``X``).
        """
        X = self._validate_X(X)
        return self._proba(np.asarray(X, dtype=np.float64)).astype(X.dtype, copy=False)

    def _proba(self, X):
        S = self._logits(X)
        E = np.exp(S - S.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)

    @rowwise()
    def predict(self, X):
        """Conditional mean ``E[y | x] = sum_i pi_i(x) (a_i^T x + b_i)``.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Features (a dask array gives a lazy dask array).

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted conditional means (float32 for float32 ``X``).
        """
        X = self._validate_X(X)
        X64 = np.asarray(X, dtype=np.float64)
        proba = self._proba(X64)
        y = np.sum(proba * (X64 @ self.coef_.T + self.intercept_), axis=1)
        return y.astype(X.dtype, copy=False)

    def _estep(self, X, y):
        check_is_fitted(self)
        X, y = validate_data(self, X, y, reset=False, y_numeric=True)
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        return moe_estep(X, y, self._logits(X), self.coef_, self.intercept_, self.variances_)

    def predict_responsibilities(self, X, y):
        """Posterior probabilities of the experts given ``(x, y)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_experts)
            ``p(expert i | x, y)``; rows sum to one.
        """
        return self._estep(X, y)[0]

    def log_likelihood_samples(self, X, y):
        """Per-sample log-likelihood ``log p(y | x)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        log_lik : ndarray of shape (n_samples,)
            Log conditional densities.
        """
        return self._estep(X, y)[1]

    def score_loglik(self, X, y, sample_weight=None):
        """Mean log-likelihood ``mean log p(y | x)`` (the likelihood ``fit`` maximises).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Weights of the average.

        Returns
        -------
        score : float
            (Weighted) mean log-likelihood.
        """
        ll = self.log_likelihood_samples(X, y)
        w = check_sample_weight(sample_weight, ll.reshape(-1, 1), dtype=np.float64)
        return float(np.average(ll, weights=w))

    def n_parameters(self):
        """Number of free parameters: ``k(2d + 3) - 1``, minus d for linear gates, plus 1 with
        a fitted temperature (plus k with an inner bias).

        Returns
        -------
        n_params : int
            Free parameters after gauge fixing.
        """
        check_is_fitted(self)
        gate = self._make_gate(self.n_features_in_)
        k, d = self.n_experts, self.n_features_in_
        return gate.n_params + k * (d + 2)

    def bic(self, X, y):
        """Bayesian information criterion ``-2 log L + n_parameters log n`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        bic : float
            The criterion.
        """
        ll = self.log_likelihood_samples(X, y)
        return float(-2.0 * ll.sum() + self.n_parameters() * math.log(ll.shape[0]))

    def aic(self, X, y):
        """Akaike information criterion ``-2 log L + 2 n_parameters`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features.
        y : array-like of shape (n_samples,)
            Targets.

        Returns
        -------
        aic : float
            The criterion.
        """
        ll = self.log_likelihood_samples(X, y)
        return float(-2.0 * ll.sum() + 2.0 * self.n_parameters())

    def sample(self, X, random_state=None):
        """Draw targets from the fitted conditional distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features at which to sample.
        random_state : int, RandomState instance or None, default=None
            Source of randomness.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Draws from ``p(y | x)`` (float32 for float32 ``X``).
        labels : ndarray of shape (n_samples,)
            The expert that generated each draw.
        """
        X = self._validate_X(X)
        X64 = np.asarray(X, dtype=np.float64)
        mean = X64 @ self.coef_.T + self.intercept_
        y, labels = moe_sample(
            self._logits(X64), mean, self.variances_, check_random_state(random_state)
        )
        return y.astype(X.dtype, copy=False), labels
