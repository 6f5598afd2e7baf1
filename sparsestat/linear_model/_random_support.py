"""Random-support sparse regression: label-free factor preconditioning, then a Lasso."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Lasso, LassoCV
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from sparsestat._kernels.precondition import (
    FactorBackMap,
    ScaledEmbedding,
    factor_design,
    select_factors,
    subset_certificates,
    thin_svd,
)
from sparsestat.linear_model._base import LinearPredictorMixin
from sparsestat.utils._compat import (
    Interval,
    StrOptions,
    check_sample_weight,
    fit_context,
    validate_data,
)

__all__ = ["RandomSupportRegressor", "random_support_regression"]

_ZERO_TOL = 1e-12  # columns with scale below this times the largest are constant: dropped
_S_TOL = 1e-10  # residual columns below this scale have no residual atom
_RANK_TOL = 1e-12  # singular values below this times the largest are not factors
_LOCAL_TOL = 0.1  # sigma_min below which the worst sampled support gets a local atom


def _default_cert_size(n_samples, n_features):
    k = n_samples // (4 * max(math.log(n_features), 1.0))
    return int(min(20, max(2, k)))


def _random_subsets(rng, n_cert, n_features, k):
    keys = rng.random_sample((n_cert, n_features))
    return np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1)


def _theory_alpha(Z, y, sw, n_eff, max_iter, tol):
    """``2 sigma_hat sqrt(2 ln m / N)`` with ``sigma_hat`` from a scaled-Lasso pilot.

    ``sw`` are the weights rescaled to sum to the number of rows (ones without weights) and
    ``n_eff`` the total weight ``N`` (the number of rows without weights).
    """
    n, m = Z.shape
    lam0 = math.sqrt(2.0 * math.log(max(m, 2)) / n_eff)
    sigma = math.sqrt(float(sw @ y**2) / n)
    for _ in range(20):
        if sigma <= 0:
            break
        pilot = Lasso(alpha=sigma * lam0, fit_intercept=False, max_iter=max_iter, tol=tol)
        pilot.fit(Z, y, sample_weight=sw)
        new = math.sqrt(float(sw @ (y - Z @ pilot.coef_) ** 2) / n)
        done = abs(new - sigma) <= 1e-4 * sigma
        sigma = new
        if done:
            break
    return max(2.0 * sigma * math.sqrt(2.0 * math.log(max(m, 2)) / n_eff), np.finfo(float).tiny)


class RandomSupportRegressor(LinearPredictorMixin, RegressorMixin, BaseEstimator):
    """Sparse linear regression for badly conditioned designs and random supports.

    Two phases [1]_: (1) a *label-free* preconditioner is computed from ``X`` alone: the
    columns are normalised, ``r*`` common factors (leading singular directions) are removed,
    with ``r*`` chosen by a certificate that bounds, on random supports, the dictionary norm of
    every sparse vector by its prediction norm; (2) a Lasso is solved on the preconditioned
    design ``Z = [R / s | sqrt(N) U_r]`` (residual atoms and factor atoms) and the atom
    coefficients are mapped back to ``coef_``. With ``r* = 0`` (or
    ``preconditioner='identity'``) this is exactly a Lasso on the normalised columns.

    Parameters
    ----------
    n_nonzero_coefs : int or None, default=None
        Support size ``k`` used by the certificate's random subsets; ``None`` uses
        ``min(20, max(2, N // (4 ln d)))`` (``N`` the total ``sample_weight`` when weights
        are given). It does not constrain the Lasso.
    preconditioner : {'factor', 'identity', 'whiten'} or callable, default='factor'
        ``'factor'`` removes ``r*`` factors chosen by the certificate; ``'identity'`` removes
        none (plain Lasso on normalised columns); ``'whiten'`` regresses on ``sqrt(N) U``, the
        whitened design (an ablation; it needs ``N = O(d)``). A callable
        ``f(Xn, rng) -> (Z, back_map)`` receives the centred, normalised design and a
        ``RandomState`` and returns the preconditioned design and a ``LinearOperator`` (or
        a callable) mapping atom coefficients to coefficients on ``Xn`` with ``Xn back_map(a)
        = Z a``.
    alpha : float or {'cv', 'theory'}, default='cv'
        Lasso penalty in scikit-learn's scaling, ``||y - Z a||^2 / (2N) + alpha ||a||_1``.
        ``'cv'`` uses ``LassoCV`` over 100 values (valid because phase 1 sees no labels);
        ``'theory'`` uses ``2 sigma_hat sqrt(2 ln m / N)`` with ``sigma_hat`` from a
        scaled-Lasso pilot.
    cv : int, cross-validation generator or iterable, default=5
        Folds of ``LassoCV`` when ``alpha='cv'``.
    r_max : int, default=20
        Largest number of factors scanned.
    n_cert : int, default=200
        Number of random supports drawn for the certificate (the same ones for every ``r``).
    cert_quantile : float in [0, 1], default=0.9
        Quantile of the per-support certificates that scores each ``r``.
    local_atoms : bool, default=False
        If True and the worst sampled support ``T`` is nearly dependent after factor removal
        (``sigma_min(Z_r[:, T] / sqrt(N)) < 0.1``), append one sparse atom supported on ``T``
        along the bottom right singular vector of ``Z_r[:, T]``.
    refit : bool, default=False
        If True, refit ordinary least squares on the selected support (relaxed Lasso);
        :meth:`summary` then gives the statsmodels OLS summary of that refit.
    fit_intercept : bool, default=True
        Whether to centre ``X`` and ``y`` and fit an intercept.
    max_iter : int, default=10000
        Maximum coordinate-descent epochs of the Lasso.
    tol : float, default=1e-4
        Relative duality-gap tolerance of the Lasso (scikit-learn's convention and default).
    random_state : int, RandomState instance or None, default=None
        Seed of the certificate's random supports.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Coefficients on the original features.
    intercept_ : float
        Intercept (0.0 when ``fit_intercept=False``).
    n_factors_ : int or None
        Number of factors removed, ``r*`` (the rank used by ``'whiten'``; ``None`` for a
        callable preconditioner).
    certificate_ : ndarray of shape (n_scanned,) or None
        Certificate score (the ``cert_quantile`` over the random supports) for each scanned
        ``r = 0, 1, ...``; ``None`` for a callable preconditioner.
    dictionary_ : scipy.sparse.linalg.LinearOperator of shape (n_features, n_atoms)
        The back-map ``D`` with ``coef_ = D @ atom_coef_``, applied as an operator (never
        formed as a dense matrix).
    atom_coef_ : ndarray of shape (n_atoms,)
        Lasso coefficients on the preconditioned atoms.
    alpha_ : float
        Penalty used by the final Lasso.
    support_ : ndarray of shape (n_features,), dtype=bool
        ``coef_ != 0``.
    n_iter_ : int
        Coordinate-descent epochs of the final Lasso.
    converged_ : bool
        Whether the final Lasso met ``tol`` before ``max_iter`` (it warns otherwise).
    ols_results_ : statsmodels RegressionResults or None
        The OLS refit when ``refit=True`` and statsmodels is installed, else ``None``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    sklearn.linear_model.LassoCV : The Lasso this method reduces to without preconditioning.
    sklearn.linear_model.OrthogonalMatchingPursuit : Greedy k-sparse regression.

    Notes
    -----
    The paper [1]_ is theoretical: it proves that for a uniformly random support, prediction
    error ``eps`` needs only ``N = poly(k, log d, 1/eps)`` samples on *any* design, with a
    two-phase algorithm (a preconditioner from ``X``, then a Lasso-type solve). Its algorithm
    box was not available; **the algorithm implemented here is the library's reading of the
    paper [inferred]**: factor removal with the rank chosen by the certificate
    ``sqrt(k) / sigma_min(Z_r[:, T] / sqrt(N)) + sqrt(r)`` (a valid bound on
    ``||w||_D / (||X w|| / sqrt(N))`` for every ``w`` on ``T``), then a penalised Lasso. It
    helps on dense, global ill-conditioning (common factors, equicorrelation), which hurts
    every support; sparse, local dependencies (near-duplicate columns) are rarely hit by a
    random support and are left alone. It does not help support recovery on designs where
    the support itself is nearly dependent.

    Cost: a thin SVD ``O(N d min(N, d))``; certificates ``O(r_max n_cert min(N, d) k^2)``;
    the Lasso on ``N x (d + r*)``. ``X^T X`` is never formed. The p-values of
    :meth:`summary` ignore the selection step (post-selection inference is not done).

    ``sample_weight`` weights the rows in both phases: the preconditioner is computed from the
    weighted, centred design (integer weights equal repeated rows) and the Lasso minimises
    ``1/(2 sum s) sum_i s_i (y_i - z_i a)^2 + alpha ||a||_1``. Sparse ``X`` is not accepted:
    the preconditioner needs a thin SVD of the dense centred design. ``float32`` input is
    computed in float64 (the certificates and the SVD of ill-conditioned designs need it)
    and ``coef_`` is returned in float32.

    References
    ----------
    .. [1] S. Chandrasekaran, R. Meka, K. Stavropoulos, "Sparse Linear Regression is Easy on
       Random Supports", arXiv:2511.06211, 2025 (STOC 2026).
    .. [2] J. Kelner, F. Koehler, R. Meka, D. Rohatgi, "On the Power of Preconditioning in
       Sparse Linear Regression", FOCS 2021.

    Examples
    --------
    >>> from sparsestat.datasets import make_sparse_regression
    >>> from sparsestat.linear_model import RandomSupportRegressor
    >>> X, y = make_sparse_regression(100, 300, 5, design="equicorrelated", rho=0.999,
    ...                               random_state=0)
    >>> est = RandomSupportRegressor(alpha=0.01, random_state=0).fit(X, y)
    >>> est.n_factors_
    1
    >>> est.dictionary_.shape
    (300, 301)
    >>> bool(est.score(X, y) > 0.9)
    True
    """

    _accepts_sparse = False  # the preconditioner takes a thin SVD of the dense design

    _parameter_constraints: dict = {
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left"), None],
        "preconditioner": [StrOptions({"factor", "identity", "whiten"}), callable],
        "alpha": [Interval(Real, 0, None, closed="neither"), StrOptions({"cv", "theory"})],
        "cv": ["cv_object"],
        "r_max": [Interval(Integral, 0, None, closed="left")],
        "n_cert": [Interval(Integral, 1, None, closed="left")],
        "cert_quantile": [Interval(Real, 0, 1, closed="both")],
        "local_atoms": ["boolean"],
        "refit": ["boolean"],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_nonzero_coefs=None,
        *,
        preconditioner="factor",
        alpha="cv",
        cv=5,
        r_max=20,
        n_cert=200,
        cert_quantile=0.9,
        local_atoms=False,
        refit=False,
        fit_intercept=True,
        max_iter=10_000,
        tol=1e-4,
        random_state=None,
    ):
        self.n_nonzero_coefs = n_nonzero_coefs
        self.preconditioner = preconditioner
        self.alpha = alpha
        self.cv = cv
        self.r_max = r_max
        self.n_cert = n_cert
        self.cert_quantile = cert_quantile
        self.local_atoms = local_atoms
        self.refit = refit
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the preconditioner on ``X`` and the Lasso on the preconditioned design.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training design (dense).
        y : array-like of shape (n_samples,)
            Targets.
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Non-negative row weights (integer weights equal repeated rows).

        Returns
        -------
        self : RandomSupportRegressor
            The fitted estimator.
        """
        if sp.issparse(X):
            raise TypeError(
                "RandomSupportRegressor does not accept sparse X: its label-free "
                "preconditioner takes a thin SVD of the dense centred design. Pass "
                "X.toarray() if it fits in memory, or use LqRegression(penalty='l1'), "
                "which accepts sparse input."
            )
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True)
        dtype = X.dtype
        X, y = X.astype(np.float64, copy=False), y.astype(np.float64, copy=False)
        n, d = X.shape
        if n < 2:
            raise ValueError("RandomSupportRegressor needs at least 2 samples; got 1 sample.")
        if sample_weight is None:
            sw, n_eff = np.ones(n), n
        else:
            sw = check_sample_weight(sample_weight, X, dtype=np.float64)
            n_eff = float(sw.sum())
            if n_eff <= 0:
                raise ValueError("sample_weight must have at least one positive entry.")
            sw = sw * (n / n_eff)  # rescaled to sum to N, as scikit-learn's Lasso does
        rng = check_random_state(self.random_state)
        if self.fit_intercept:
            x_mean, y_mean = sw @ X / n, float(sw @ y) / n
        else:
            x_mean, y_mean = np.zeros(d), 0.0
        Xc, yc = X - x_mean, y - y_mean
        root_w = np.sqrt(sw)
        col = np.sqrt(sw @ Xc**2 / n)
        keep = np.flatnonzero(col > _ZERO_TOL * col.max()) if col.max() > 0 else np.arange(0)
        c = col[keep]
        Xn = Xc[:, keep] / c
        Z, D = self._precondition(Xn, root_w, n_eff, rng, keep, c, d)
        self.atom_coef_, self.alpha_, self.n_iter_ = self._lasso(Z, yc, sw, n_eff)
        self.converged_ = bool(self.n_iter_ < self.max_iter)
        self.dictionary_ = D
        coef = np.asarray(D.matvec(self.atom_coef_), dtype=np.float64).ravel()
        self.ols_results_ = None
        if self.refit:
            coef = self._refit(X, y, Xc, yc, coef, sw)
        self.coef_ = coef.astype(dtype, copy=False)
        self.intercept_ = float(y_mean - x_mean @ coef)
        self.support_ = coef != 0
        return self

    def _precondition(self, Xn, root_w, n_eff, rng, keep, c, d):
        """Phase 1: the preconditioned design (unweighted rows) and the back-map operator.

        The SVD and the certificates use the weighted rows ``sqrt(s) Xn``; the design
        returned is ``Z = Xn D`` on the unweighted rows, so that the weights go to the Lasso.
        """
        n, d_kept = Xn.shape
        self.n_factors_, self.certificate_ = None, None
        if callable(self.preconditioner):
            Z, back = self.preconditioner(Xn, rng)
            if not isinstance(back, LinearOperator):
                back = LinearOperator((d_kept, Z.shape[1]), matvec=back, dtype=np.float64)
            return np.asarray(Z, dtype=np.float64), ScaledEmbedding(
                aslinearoperator(back), keep, c, d
            )
        if d_kept == 0:
            self.n_factors_, self.certificate_ = 0, np.zeros(0)
            idx = np.arange(0)
            return np.zeros((n, 0)), FactorBackMap(
                np.zeros((0, 0)), np.zeros(0), np.zeros(0), idx, n, keep, c, d
            )
        Xw = Xn * root_w[:, None]
        U, S, Vt = thin_svd(Xw)
        rank = int(np.sum(_RANK_TOL * S[0] < S))
        if self.preconditioner == "whiten":
            self.n_factors_ = rank
            self.certificate_ = np.array([math.sqrt(rank)])
            D = FactorBackMap(Vt[:rank].T, S[:rank], np.ones(d_kept), np.arange(0), n, keep, c, d)
            return math.sqrt(n) * (Xn @ Vt[:rank].T) / S[:rank], D
        k = self.n_nonzero_coefs or _default_cert_size(int(round(n_eff)), d_kept)
        k = min(k, d_kept)
        subsets = _random_subsets(rng, self.n_cert, d_kept, k)
        r_max = 0 if self.preconditioner == "identity" else min(self.r_max, max(rank - 1, 0))
        r, scores, scales = select_factors(
            S, Vt, subsets, r_max, n, self.cert_quantile, s_tol=_S_TOL
        )
        self.n_factors_, self.certificate_ = r, np.asarray(scores)
        s = np.ones(d_kept) if r == 0 else scales[r]
        resid_idx = np.flatnonzero(s >= _S_TOL)
        # Z = Xn D with U_r = Xw V_r / S_r: the factor atoms of the unweighted rows
        Z = factor_design(Xn, (Xn @ Vt[:r].T) / S[:r], S, Vt, r, resid_idx, s)
        local = None
        if self.local_atoms and resid_idx.size:
            certs = subset_certificates(S, Vt, s, subsets, r, n, s_tol=_S_TOL)
            T = subsets[int(np.argmax(certs))]
            local = self._local_atom(Xw, Z * root_w[:, None], T, resid_idx)
            if local is not None:
                Z = np.hstack([Z, Xn @ local])
        D = FactorBackMap(Vt[:r].T, S[:r], s, resid_idx, n, keep, c, d, local=local)
        return Z, D

    @staticmethod
    def _local_atom(Xn, Z, T, resid_idx):
        """The sparse atom ``u / ||Xn u||`` on the worst support ``T``, or None.

        ``u`` is the bottom right singular vector of ``Z_r[:, T]``; the atom is appended when
        its singular value is below ``_LOCAL_TOL``. Returned as a ``(d_kept, 1)`` array.
        """
        pos = np.searchsorted(resid_idx, T)
        pos = pos[(pos < resid_idx.size) & (resid_idx[np.minimum(pos, resid_idx.size - 1)] == T)]
        if pos.size < 2:
            return None
        n = Z.shape[0]
        _, sv, vt = np.linalg.svd(Z[:, pos] / math.sqrt(n), full_matrices=False)
        if sv[-1] >= _LOCAL_TOL:
            return None
        local = np.zeros((Xn.shape[1], 1))
        local[resid_idx[pos], 0] = vt[-1]
        norm = np.linalg.norm(Xn @ local)
        if norm <= _S_TOL * math.sqrt(n):
            return None
        return local * (math.sqrt(n) / norm)

    def _lasso(self, Z, y, sw, n_eff):
        """Phase 2: weighted Lasso on the preconditioned design (data already centred)."""
        if Z.shape[1] == 0:
            return np.zeros(0), float("nan") if self.alpha == "cv" else 0.0, 0
        Z = np.asfortranarray(Z)
        common = {"fit_intercept": False, "max_iter": self.max_iter, "tol": self.tol}
        if self.alpha == "cv":
            # the centred data give a zero intercept on the full sample; fit_intercept here
            # re-centres each training fold, exactly as LassoCV does on the raw design
            cv_common = {**common, "fit_intercept": self.fit_intercept}
            model = LassoCV(alphas=100, cv=self.cv, **cv_common).fit(Z, y, sample_weight=sw)
            return model.coef_, float(model.alpha_), int(model.n_iter_)
        alpha = (
            _theory_alpha(Z, y, sw, n_eff, self.max_iter, self.tol)
            if self.alpha == "theory"
            else float(self.alpha)
        )
        model = Lasso(alpha=alpha, **common).fit(Z, y, sample_weight=sw)
        return model.coef_, alpha, int(model.n_iter_)

    def _refit(self, X, y, Xc, yc, coef, sw):
        """(Weighted) OLS on the selected support (relaxed Lasso); statsmodels results."""
        support = np.flatnonzero(coef)
        refit = np.zeros_like(coef)
        root_w = np.sqrt(sw)
        if support.size:
            A = Xc[:, support] * root_w[:, None]
            sol, *_ = np.linalg.lstsq(A, yc * root_w, rcond=None)
            refit[support] = sol
        try:
            import statsmodels.api as sm
        except ImportError:  # pragma: no cover - statsmodels is a test dependency
            return refit
        names = getattr(self, "feature_names_in_", None)
        names = [str(names[j]) if names is not None else f"x{j}" for j in support]
        exog = X[:, support]
        if self.fit_intercept:
            exog = np.column_stack([np.ones(X.shape[0]), exog])
            names = ["const", *names]
        weighted = not np.all(sw == sw[0])
        self.ols_results_ = (sm.WLS(y, exog, weights=sw) if weighted else sm.OLS(y, exog)).fit()
        self._ols_names = names
        return refit

    def summary(self):
        """Return the statsmodels summary of the OLS refit on the support (``refit=True``).

        Returns
        -------
        summary : statsmodels.iolib.summary.Summary
            Coefficients, standard errors, t statistics and confidence intervals of the refit.
            They ignore the selection step, so their p-values are optimistic.
        """
        check_is_fitted(self)
        if not self.refit:
            raise ValueError("summary() needs an estimator fitted with refit=True.")
        if self.ols_results_ is None:
            raise ImportError(
                "summary() needs statsmodels: pip install statsmodels (or sparsestat[stats])."
            )
        return self.ols_results_.summary(xname=self._ols_names)


def random_support_regression(X, y, **params):
    """Functional form of :class:`RandomSupportRegressor`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Design.
    y : array-like of shape (n_samples,)
        Targets.
    **params : dict
        Parameters of :class:`RandomSupportRegressor`.

    Returns
    -------
    coef : ndarray of shape (n_features,)
        Coefficients.
    info : dict
        ``intercept``, ``n_factors``, ``certificate``, ``alpha``, ``n_iter``, ``converged``
        and ``estimator`` (the fitted estimator).

    References
    ----------
    .. [1] S. Chandrasekaran, R. Meka, K. Stavropoulos, "Sparse Linear Regression is Easy on
       Random Supports", arXiv:2511.06211, 2025.

    Examples
    --------
    >>> from sparsestat.datasets import make_sparse_regression
    >>> from sparsestat.linear_model import random_support_regression
    >>> X, y = make_sparse_regression(80, 120, 3, design="factor", random_state=0)
    >>> coef, info = random_support_regression(X, y, alpha=0.01, random_state=0)
    >>> coef.shape, info["n_factors"] >= 0
    ((120,), True)
    """
    est = RandomSupportRegressor(**params).fit(X, y)
    info = {
        "intercept": est.intercept_,
        "n_factors": est.n_factors_,
        "certificate": est.certificate_,
        "alpha": est.alpha_,
        "n_iter": est.n_iter_,
        "converged": est.converged_,
        "estimator": est,
    }
    return est.coef_, info
