"""Kronecker-structured sparse Bayesian learning (AM-, SVD- and PC-KroSBL)."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
from array_api_compat import device as array_device
from sklearn.utils.validation import check_is_fitted

from sparsestat._kernels._dispatch import get_namespace, is_device_array, to_host
from sparsestat._kernels.kron import (
    kron_matvec,
    kron_predictive_variance,
    pattern_coupling_matrix,
)
from sparsestat.bayes._base import (
    SBLRegressorBase,
    check_factors,
    r2_score_any,
    require_y,
    validate_dense,
)
from sparsestat.bayes._design import KroneckerDesign
from sparsestat.utils._compat import HasMethods, Interval, StrOptions, fit_context
from sparsestat.utils._dask import is_dask_array, map_rows

__all__ = ["KroneckerSBL", "kronecker_sbl"]

_TWICE = (
    "KroneckerSBL got the design twice: factors={where} in the constructor and a list of "
    "factors / KroneckerDesign as X in fit. Give it once: KroneckerSBL(factors=...).fit(None, "
    "y), or KroneckerSBL().fit(factors, y). (With factors set, a 2-D array X is the leading "
    "factor, one row per slice of y; see the Notes of KroneckerSBL.)"
)


def _looks_like_factors(X: Any) -> bool:
    """A KroneckerDesign, or a list / tuple whose items are all 2-D (not a nested dense X)."""
    if isinstance(X, KroneckerDesign):
        return True
    if not isinstance(X, list | tuple) or len(X) == 0:
        return False
    for f in X:
        ndim = getattr(f, "ndim", None)
        if ndim is None:
            try:
                ndim = np.ndim(f)
            except Exception:
                return False
        if ndim != 2:
            return False
    return True


def _factor_list(X: Any) -> list[Any]:
    return list(X.factors) if isinstance(X, KroneckerDesign) else list(X)


class KroneckerSBL(SBLRegressorBase):
    """Sparse Bayesian learning for Kronecker-structured dictionaries and supports (KroSBL).

    Model ``y = kron(A_1, ..., A_I) x + n`` with prior ``x_n ~ N(0, gamma_n)`` (``CN`` for
    complex data) and Kronecker-factored variances ``gamma = gamma_1 kron ... kron gamma_I``,
    fitted by EM. The E-step is exact and matrix-free (per-factor Hermitian eigendecompositions
    and mode products: the ``M x N`` dictionary and the ``N x N`` posterior covariance are never
    formed). The M-step is ``'svd'`` (sequential rank-1 SVD of the posterior second moments,
    SVD-KroSBL) or ``'am'`` (alternating closed-form factor updates, AM-KroSBL). ``block``
    turns on pattern coupling of neighbouring variances in chosen factors (PC-KroSBL) for
    block-sparse supports such as clustered angles in IRS-MIMO channels.

    The design is given in one of three ways (see Notes): as the factors in ``fit(X=[A_1,
    ..., A_I], y)``; in the constructor, ``KroneckerSBL(factors=[A_1, ..., A_I]).fit(None,
    y)``; or split, with the trailing factors in the constructor and the rows of the leading
    factor as ``X`` (one row per slice of ``y``), which is what ``GridSearchCV`` and
    ``cross_val_score`` need. A dense 2-D ``X`` without ``factors`` is one explicit factor:
    the estimator is then classical SBL (with an intercept) and an ordinary scikit-learn
    regressor.

    Read more in the :ref:`User Guide <kronecker_sbl>`.

    Parameters
    ----------
    factors : list of 2-D arrays, KroneckerDesign or None, default=None
        The factor matrices ``A_i`` (``M_i x N_i``) of the design, used when ``fit`` gets
        ``X=None``; or, when ``fit`` gets a 2-D array ``X``, the trailing factors
        ``A_2, ..., A_I`` (``X`` is then ``A_1``).
    method : {"svd", "am"}, default="svd"
        M-step: sequential rank-1 SVD (SVD-KroSBL), or alternating minimisation (AM-KroSBL).
    block : list of (float or None) or None, default=None
        PC-KroSBL: one entry per factor, ``beta`` (coupling of a factor's neighbouring
        variances, ``C_i = I + beta (S + S^T)``) or None (uncoupled). Requires
        ``method="am"``. The paper's IRS setting is ``[0.8, None, 0.8]``.
    max_iter : int, default=150
        Maximum number of EM iterations.
    tol : float, default=1e-4
        Stop when ``||gamma_new - gamma_old|| / ||gamma_old|| <= tol`` (full-length prior,
        pruned entries 0).
    inner_max_iter : int, default=100
        Cap on AM / PC sweeps per EM iteration.
    inner_tol : float, default=1e-5
        AM / PC sweeps stop when the change of ``kron gamma_i`` is at most ``inner_tol``.
    inner_tol_relative : bool, default=False
        Measure that change relative to ``||kron gamma_i||`` (the authors' IRS code) instead
        of absolutely (their synthetic code).
    prune_threshold : "auto", float or list of float, default="auto"
        Relative pruning per factor: entry ``j`` of factor ``i`` is dropped for good when
        ``gamma_i[j] < r_i max(gamma_i)``. ``"auto"`` is 1e-3 for SVD and 1e-2 for AM / PC;
        a list gives one threshold per factor; 0 disables it.
    prune_abs : float, default=0.0
        Absolute pruning threshold on every factor (depends on the normalisation: factors
        1..I-1 have unit norm, the last one carries the scale).
    noise_variance : "auto" or float, default="auto"
        Known noise variance ``sigma^2`` (the paper's main experiments), or ``"auto"`` to
        estimate it by EM.
    noise_init : float, default=0.1
        With ``noise_variance="auto"``, EM starts from ``noise_init * var(y)``, where ``var``
        divides by the number of measurements (NumPy's default); see Notes for the authors'
        convention.
    pc_floor : float, default=1e-5
        ``epsilon`` in the effective variance ``C_i gamma_i + epsilon`` of coupled factors.
    fit_intercept : bool, default=True
        Whether to fit an intercept when the design is one dense matrix (``X`` a 2-D array,
        no ``factors``), as :class:`SparseBayesianLearning` does. A Kronecker design has no
        intercept column, so it is not used there (``intercept_`` is 0).
    compute_score : bool, default=False
        Record ``log|C| + tr(Y^H C^{-1} Y) / L`` at each E-step in ``scores_``.
    keep_path : bool, default=False
        Keep the posterior mean of every EM iteration in ``coef_path_`` (for convergence
        studies; memory ``n_iter * N``).
    verbose : int, default=0
        Show a progress bar over EM iterations when positive.

    Attributes
    ----------
    coef_ : array of shape (N,) or (n_targets, N)
        Posterior mean on the full grid (complex for complex data; the array library of the
        input), zero outside ``support_``.
    coef_tensor_ : array of shape (N_1, ..., N_I) or (n_targets, N_1, ..., N_I)
        ``coef_`` as a tensor (C order, factor 1 slowest).
    intercept_ : float, complex or array of shape (n_targets,)
        Intercept of a dense-design fit with ``fit_intercept=True``; 0 otherwise.
    gamma_ : array of shape (N,)
        Final prior variances ``kron gamma_i`` (effective ones for PC), zero where pruned.
    gamma_factors_ : list of arrays
        Per-factor variances, zero where pruned; factors 1..I-1 have unit norm.
    support_factors_ : list of ndarray of int
        Indices kept in each factor.
    support_ : array of int
        Flat indices with ``gamma_ > 0`` (in the array library of the input).
    sigma_diag_ : array of shape (N,)
        Posterior variances.
    noise_variance_ : float
        Noise variance used (given or estimated).
    n_iter_ : int
        Number of EM iterations run (the final re-estimation E-step is not counted).
    converged_ : bool
        Whether the relative change of ``gamma`` reached ``tol``.
    rel_change_ : float
        The last relative change of ``gamma`` (the convergence certificate).
    inner_sweeps_ : array of int
        AM / PC sweeps per EM iteration (empty for SVD).
    scores_ : ndarray
        Objective per E-step (only with ``compute_score=True``).
    coef_path_ : array of shape (n_iter, N) or (n_iter, n_targets, N)
        Posterior mean of each iteration's E-step (only with ``keep_path=True``).
    factor_shapes_ : list of tuple of int
        ``(M_i, N_i)`` of the fitted design.
    n_features_in_ : int
        Number of columns of ``X`` in ``fit``: ``N = prod N_i`` for a Kronecker design given
        whole, ``N_1`` in the split form.

    See Also
    --------
    SparseBayesianLearning : classical SBL on an explicit dictionary.
    kronecker_sbl : the functional form.
    kronecker_sbl_many : many independent fits with shared factors (dask).
    KroneckerDesign : the matrix-free dictionary.

    Notes
    -----
    **The algorithm** follows the authors' code: initial ``gamma_i = 1``; each iteration
    prunes, runs the exact E-step (``C^{-1} = (kron U_i) diag(d) (kron U_i)^H`` from
    ``eigh(A_i Gamma_i A_i^H)``), forms ``Lambda = diag(Sigma) + mean_l |mu_l|^2`` and runs the
    M-step. AM sweeps ``i = 1..I`` with ``gamma_i[j] = (N_i / N) sum_{others} Lambda /
    prod_{k != i} gamma_k`` then normalises; SVD unfolds ``Lambda`` and takes absolute leading
    singular vectors; PC solves a non-negative least-squares problem with the tridiagonal
    coupling matrix for coupled factors. With an estimated noise variance, ``sigma^2 <- (||y -
    A mu||^2 + sigma^2 sum_n (1 - Sigma_nn / gamma_n)) / M`` after each M-step. Cost per
    iteration: ``O(sum M_i^3 + (M + N) L sum M_i)`` for the E-step, ``O(N)`` memory beyond the
    factors.

    **Giving the design.** Exactly one of three forms:

    * ``fit([A_1, ..., A_I], y)`` (or a :class:`KroneckerDesign`), ``factors=None``;
    * ``KroneckerSBL(factors=[A_1, ..., A_I]).fit(None, y)``, so that a ``Pipeline`` can carry
      the design;
    * split: ``KroneckerSBL(factors=[A_2, ..., A_I]).fit(A_1, Y)`` with ``Y`` of shape
      ``(M_1, M_2 ... M_I)``, row ``i`` the slice of the measurement tensor taken with row
      ``i`` of ``A_1`` (``Y.ravel()`` is the measurement vector). Rows are then samples in
      scikit-learn's sense, so ``GridSearchCV(KroneckerSBL(factors=[A_2, A_3]), grid)
      .fit(A_1, Y)`` holds out slices of the measurements and fits every fold with a
      Kronecker design. ``predict(A_1_new)`` returns the slices for new rows of ``A_1``.

    A list of factors given both in the constructor and to ``fit`` raises ``ValueError``.

    **Sample weights** are accepted for a dense design and in the split form (one weight per
    slice: its measurements get noise variance ``sigma^2 / w``, so integer weights repeat
    slices and zero removes them). A weight per measurement of a whole Kronecker design would
    break the Kronecker structure of the E-step, so it raises ``ValueError``.

    **Choices not specified by the paper**, each chosen here for the reason given. A Hermitian
    eigensolver replaces the authors' general one, which returns non-orthogonal eigenvectors
    for repeated eigenvalues. The noise update for several columns averages the residual
    over them (the EM update of the shared-noise model). The AM sweep cap ``inner_max_iter``
    (the authors' AM has none; their PC uses 9), so that a slow inner loop cannot run
    forever. The noise estimate is floored at ``1e-12 mean|y|^2``, and the E-step uses a
    noise variance of at least ``1e-13`` times the largest diagonal entry of ``A Gamma A^H``
    (``10 eps`` of the working precision if larger), so that the covariance stays positive
    definite for almost noiseless ``y``. Factor columns that are numerically zero (norm at
    most ``1e-12`` times the largest) are dropped before the first iteration: their slice of
    ``x`` does not affect ``y``, so its variance is unidentifiable, and through the Kronecker
    coupling it can drift until the true entries of the other slices are pruned (seen in the
    IRS setup when the pilots are orthogonal to one MS angle; the authors' code keeps such
    columns).

    **Starting noise variance.** ``noise_init * var(y)`` uses the ``1 / M`` variance; the
    authors start from ``0.1 * var(y)`` with MATLAB's ``M - 1`` divisor, so the default starts
    ``(M - 1) / M`` lower. To reproduce their iterates pass ``noise_init=0.1 * M / (M - 1)``.

    **Arrays.** float32 factors (or ``X``) are fitted in float32, complex64 likewise;
    everything else in float64 / complex128. Inputs may be NumPy, CuPy, torch or other
    array-API arrays (factors and ``y`` of one library); the fit then runs on their device
    and the fitted arrays are of that library. Complex input is accepted, so scikit-learn's
    ``check_complex_data`` (which expects complex input to be rejected) does not apply.

    References
    ----------
    .. [1] Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector
       recovery with application to IRS-MIMO channel estimation", IEEE Trans. Signal
       Process., 2024. arXiv:2307.14719.
    .. [2] J. Fang, Y. Shen, H. Li and P. Wang, "Pattern-coupled sparse Bayesian learning for
       recovery of block-sparse signals", IEEE Trans. Signal Process. 63(2), 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.bayes import KroneckerSBL
    >>> from sparsestat.datasets import make_kronecker_sparse_signal
    >>> factors, y, coef = make_kronecker_sparse_signal(
    ...     factor_shapes=((6, 10), (7, 10), (8, 10)), n_nonzero=2, snr_db=40,
    ...     random_state=0)
    >>> model = KroneckerSBL(method="svd").fit(factors, y)
    >>> bool(np.linalg.norm(model.coef_ - coef) < 0.05 * np.linalg.norm(coef))
    True
    >>> model.coef_tensor_.shape
    (10, 10, 10)

    Cross-validation holds out slices of the measurements (rows of the first factor):

    >>> from sklearn.model_selection import GridSearchCV
    >>> A1, A2, A3 = factors
    >>> Y = y.reshape(6, 7 * 8)
    >>> search = GridSearchCV(KroneckerSBL(factors=[A2, A3]), {"method": ["svd", "am"]},
    ...                       cv=3).fit(A1, Y)
    >>> bool(search.best_score_ > 0.9)
    True
    """

    _parameter_constraints: dict = {
        "factors": [list, tuple, HasMethods(["matvec", "rmatvec"]), None],
        "method": [StrOptions({"svd", "am"})],
        "block": [list, tuple, None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "inner_max_iter": [Interval(Integral, 1, None, closed="left")],
        "inner_tol": [Interval(Real, 0, None, closed="left")],
        "inner_tol_relative": ["boolean"],
        "prune_threshold": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="left"), list, tuple],
        "prune_abs": [Interval(Real, 0, None, closed="left")],
        "noise_variance": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "noise_init": [Interval(Real, 0, None, closed="neither")],
        "pc_floor": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "compute_score": ["boolean"],
        "keep_path": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        factors=None,
        method="svd",
        block=None,
        max_iter=150,
        tol=1e-4,
        inner_max_iter=100,
        inner_tol=1e-5,
        inner_tol_relative=False,
        prune_threshold="auto",
        prune_abs=0.0,
        noise_variance="auto",
        noise_init=0.1,
        pc_floor=1e-5,
        fit_intercept=True,
        compute_score=False,
        keep_path=False,
        verbose=0,
    ):
        self.factors = factors
        self.method = method
        self.block = block
        self.max_iter = max_iter
        self.tol = tol
        self.inner_max_iter = inner_max_iter
        self.inner_tol = inner_tol
        self.inner_tol_relative = inner_tol_relative
        self.prune_threshold = prune_threshold
        self.prune_abs = prune_abs
        self.noise_variance = noise_variance
        self.noise_init = noise_init
        self.pc_floor = pc_floor
        self.fit_intercept = fit_intercept
        self.compute_score = compute_score
        self.keep_path = keep_path
        self.verbose = verbose

    # ------------------------------------------------------------------ design
    def _design_form(self, X: Any) -> tuple[str, list[Any]]:
        """``('factors', [A_1..A_I])``, ``('dense', [X])`` or ``('split', [X, A_2..A_I])``."""
        if self.factors is not None and not _looks_like_factors(self.factors):
            raise ValueError(
                "factors must be a list or tuple of 2-D arrays or a KroneckerDesign; got "
                f"{type(self.factors).__name__}"
            )
        if X is None:
            if self.factors is None:
                raise ValueError(
                    "KroneckerSBL needs a design: pass the factors as X to fit, or set "
                    "factors=... in the constructor and call fit(None, y)"
                )
            return "factors", _factor_list(self.factors)
        if _looks_like_factors(X):
            if self.factors is not None:
                raise ValueError(_TWICE.format(where="[...]"))
            return "factors", _factor_list(X)
        if self.factors is None:
            return "dense", [X]
        return "split", [X, *_factor_list(self.factors)]

    def _em_params(self, n_factors: int) -> dict[str, Any]:
        """Resolve 'auto' thresholds and the noise variance into the solver's settings."""
        if isinstance(self.prune_threshold, str):
            rel = [1e-3 if self.method == "svd" else 1e-2] * n_factors
        elif isinstance(self.prune_threshold, list | tuple):
            rel = [float(r) for r in self.prune_threshold]
            if len(rel) != n_factors or any(not (0 <= r < 1) for r in rel):
                raise ValueError(f"prune_threshold needs {n_factors} values in [0, 1)")
        else:
            rel = [float(self.prune_threshold)] * n_factors
        return {
            "method": self.method,
            "noise_var": None if self.noise_variance == "auto" else float(self.noise_variance),
            "noise_init": self.noise_init,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "prune_rel": rel,
            "prune_abs": self.prune_abs,
            "inner_tol": self.inner_tol,
            "inner_relative": self.inner_tol_relative,
            "inner_max_iter": self.inner_max_iter,
            "pc_floor": self.pc_floor,
            "compute_score": self.compute_score,
            "keep_path": self.keep_path,
        }

    def _coupling(self, facs: list[Any]) -> list[Any] | None:
        if self.block is None:
            return None
        if self.method != "am":
            raise ValueError("block (PC-KroSBL) requires method='am'")
        if len(self.block) != len(facs):
            raise ValueError(f"block needs {len(facs)} entries (one per factor)")
        for b in self.block:
            if b is not None and (not isinstance(b, Real) or b < 0 or not np.isfinite(b)):
                raise ValueError(f"block entries must be None or floats >= 0; got {b!r}")
        return [
            None if b is None else pattern_coupling_matrix(int(f.shape[1]), b, like=f)
            for b, f in zip(self.block, facs)
        ]

    # ------------------------------------------------------------------ API
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None, sample_weight=None):
        """Fit KroSBL by EM.

        Parameters
        ----------
        X : list of 2-D arrays, KroneckerDesign, array-like of shape (n_samples, n) or None
            The factors; None to use ``self.factors``; a dense dictionary (one factor:
            classical SBL) when ``factors`` is None, or the rows of the leading factor when
            ``factors`` holds the trailing ones (split form, see Notes).
        y : array-like of shape (M,) or (M, n_targets), or (n_samples, M_2 ... M_I)
            Measurements (real or complex), C order over the factors' rows (factor 1
            slowest); several columns share one prior (MMV). In the split form, one row per
            row of ``X``.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the rows of a dense ``X`` or of the slices of the split
            form; not accepted for a whole Kronecker design.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        require_y(self, y)
        form, facs = self._design_form(X)
        self._design_kind = form
        self.intercept_ = 0.0
        if form == "dense":
            X, y = validate_dense(self, facs[0], y)
            res = self._fit_dense(X, y, sample_weight, coupling=self._coupling([X]))
            self._finish(res, [X])
            return self
        if form == "split":
            facs, y = self._split_inputs(facs, y)
            if sample_weight is not None:
                sample_weight = self._check_weight(sample_weight, int(facs[0].shape[0]))
        else:
            if sample_weight is not None:
                raise ValueError(
                    "sample_weight is accepted for a dense X or in the split form (a weight "
                    "per slice of y); a weight per measurement of a whole Kronecker design "
                    "breaks the Kronecker structure of the E-step"
                )
            facs, y = check_factors(facs, y, [f"factors[{i}]" for i in range(len(facs))])
            m_total = math.prod(int(f.shape[0]) for f in facs)
            if int(y.shape[0]) != m_total:
                raise ValueError(
                    f"y has {y.shape[0]} rows but the design has prod(M_i) = {m_total} rows"
                )
        self.n_features_in_ = (
            int(facs[0].shape[1]) if form == "split" else math.prod(int(f.shape[1]) for f in facs)
        )
        xp = get_namespace(y)
        y_1d = y.ndim == 1
        Y = xp.reshape(y, (-1, 1)) if y_1d else y
        res = self._run_em(facs, Y, sample_weight=sample_weight, coupling=self._coupling(facs))
        self._set_fitted(res, y_1d, [int(f.shape[1]) for f in facs])
        self._finish(res, facs)
        return self

    def _finish(self, res: Any, facs: list[Any]) -> None:
        """Per-factor attributes and what ``predict`` needs."""
        self.gamma_factors_ = res.gammas
        self.support_factors_ = res.support_factors
        xp, dev = get_namespace(res.gamma), array_device(res.gamma)
        self.inner_sweeps_ = xp.asarray(np.asarray(res.inner_sweeps, dtype=np.int64), device=dev)
        self.factor_shapes_ = [(int(f.shape[0]), int(f.shape[1])) for f in facs]
        self._fitted_factors = facs
        self._posterior_factors = res.active_factors

    def _split_inputs(self, facs: list[Any], y: Any) -> tuple[list[Any], Any]:
        """Validate the split form: ``y`` has one row per row of ``X``, ``prod M_rest`` cols."""
        names = ["X", *[f"factors[{i}]" for i in range(len(facs) - 1)]]
        facs, y = check_factors(facs, y, names)
        per_row = math.prod(int(f.shape[0]) for f in facs[1:])
        n = int(facs[0].shape[0])
        shape = tuple(int(s) for s in y.shape)
        if not (shape == (n, per_row) or (per_row == 1 and shape == (n,))):
            raise ValueError(
                "with factors set and a 2-D array X (the split form), X holds the rows of the "
                "leading factor and y one slice of the measurements per row of X: y must have "
                f"shape ({n}, {per_row}) (prod of the trailing factors' rows); got {shape}. To "
                "give the whole design in fit instead, pass factors=None."
            )
        xp = get_namespace(y)
        return facs, xp.reshape(y, (-1,))

    @staticmethod
    def _check_weight(sample_weight: Any, n: int) -> np.ndarray:
        from sparsestat.utils._compat import check_sample_weight

        w = check_sample_weight(to_host(sample_weight), np.empty((n, 1)), dtype=np.float64)
        if not np.any(w > 0):
            raise ValueError("sample_weight must have at least one positive entry")
        return w

    def predict(self, X=None, return_std=False):
        """Predict ``design @ coef_`` (``X=None`` uses the fitted design).

        Parameters
        ----------
        X : list of 2-D arrays, KroneckerDesign, array-like of shape (n_samples, n) or None
            The design to predict with: factors (a whole Kronecker design), a dense
            dictionary, or (split form) rows of the leading factor. A dask array (dense or
            split form) gives a lazy dask array.
        return_std : bool, default=False
            Also return the standard deviation of the posterior predictive distribution,
            ``sqrt(diag(A Sigma A^H) + sigma^2)``, computed without forming ``Sigma``.

        Returns
        -------
        y_mean : array of shape (M,) or (M, n_targets), or (n_samples, M_2 ... M_I)
            Predictions.
        y_std : array of the shape of ``y_mean``
            Predictive standard deviations (only with ``return_std=True``).
        """
        check_is_fitted(self)
        if not _looks_like_factors(X):
            self._check_same_namespace(X, "predict")
        kind = self._design_kind
        if X is None:
            if kind == "dense":
                return self._predict_dense(self._fitted_factors[0], return_std)
            facs = self._fitted_factors
        elif _looks_like_factors(X):
            facs = _factor_list(X)
            n_feat = math.prod(int(f.shape[1]) for f in facs)
            if n_feat != self.coef_.shape[-1]:
                raise ValueError(
                    f"X has {n_feat} features, but KroneckerSBL is expecting "
                    f"{self.coef_.shape[-1]} features as input."
                )
        elif kind == "split":
            if is_dask_array(X):
                return self._predict_split_dask(X, return_std)
            facs = [self._split_row_block(X), *self._fitted_factors[1:]]
        else:
            if kind == "factors" and return_std:
                raise ValueError(
                    "return_std needs the design in Kronecker form (a list of factors) for a "
                    "model fitted on factors"
                )
            return self._predict_dense(X, return_std)
        mean, std = self._predict_factors(facs, return_std)
        if kind == "split" and X is not None and not _looks_like_factors(X):
            n = int(facs[0].shape[0])
            xp = get_namespace(mean)
            mean = xp.reshape(mean, (n, -1))
            std = None if std is None else xp.reshape(std, (n, -1))
        return (mean, std) if return_std else mean

    def _split_row_block(self, X: Any) -> Any:
        """Validate rows of the leading factor for prediction in the split form."""
        X = validate_dense(self, X, reset=False)
        coef = self.coef_
        if is_device_array(coef) and not is_device_array(X):
            X = get_namespace(coef).asarray(X)
        return X

    def _predict_split_dask(self, X: Any, return_std: bool) -> Any:
        per_row = math.prod(s[0] for s in self.factor_shapes_[1:])
        dtype = np.result_type(X.dtype, to_host(self.coef_[:0]).dtype)
        mean = map_rows(self.predict, X, n_outputs=per_row, dtype=dtype)
        if not return_std:
            return mean
        std = map_rows(
            self._predict_split_std,
            X,
            n_outputs=per_row,
            dtype=np.result_type(X.dtype, np.float32),
        )
        return mean, std

    def _predict_split_std(self, X: Any) -> Any:
        return self.predict(X, return_std=True)[1]

    def _predict_factors(self, facs: list[Any], return_std: bool) -> tuple[Any, Any]:
        """Mean (and standard deviation) for a design in Kronecker form."""
        coef = self.coef_
        xp = get_namespace(coef)
        dtype = coef.dtype
        facs = [xp.astype(xp.asarray(f), dtype) for f in facs]
        rhs = coef if coef.ndim == 1 else coef.T
        mean = facs[0] @ rhs if len(facs) == 1 else kron_matvec(facs, rhs)
        if self._design_kind == "dense":
            mean = mean + self.intercept_
        if not return_std:
            return mean, None
        if self._design_kind == "dense":
            if len(facs) != 1:
                raise ValueError("return_std for a dense-design model needs a dense X")
            return mean, self._predict_dense_std(facs[0])
        if len(facs) != len(self.factor_shapes_):
            raise ValueError(
                f"return_std needs {len(self.factor_shapes_)} factors, as in fit; got {len(facs)}"
            )
        kept = [
            xp.take(f, xp.asarray(k, device=array_device(f)), axis=1)
            for f, k in zip(facs, self.support_factors_)
        ]
        gammas = [
            xp.take(g, xp.asarray(k, device=array_device(g)), axis=0)
            for g, k in zip(self.gamma_factors_, self.support_factors_)
        ]
        if any(int(k.size) == 0 for k in self.support_factors_):
            var = xp.zeros(
                int(mean.shape[0]), dtype=xp.real(mean[:1]).dtype, device=array_device(mean)
            )
        else:
            var = kron_predictive_variance(
                kept, self._posterior_factors, gammas, self.noise_variance_
            )
        std = xp.sqrt(var + self.noise_variance_)
        if mean.ndim == 2:
            std = xp.broadcast_to(std[:, None], tuple(int(s) for s in mean.shape))
        return mean, std

    def score(self, X=None, y=None, sample_weight=None):
        """Coefficient of determination R^2 (with ``|.|^2`` for complex data).

        Parameters
        ----------
        X : list of 2-D arrays, KroneckerDesign, array-like or None
            Design, as in :meth:`predict` (None: the fitted design).
        y : array-like
            True targets, of the shape :meth:`predict` returns.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            R^2 of ``self.predict(X)``.
        """
        check_is_fitted(self)
        if self._design_kind == "dense" and X is not None and not _looks_like_factors(X):
            return self._score_dense(X, y, sample_weight)
        return r2_score_any(y, self.predict(X), sample_weight)


def kronecker_sbl(factors, y, **params):
    """Kronecker-structured sparse Bayesian learning, functional form of :class:`KroneckerSBL`.

    Parameters
    ----------
    factors : list of 2-D arrays or KroneckerDesign
        Factor matrices ``A_i`` of shapes ``(M_i, N_i)``.
    y : array-like of shape (M,) or (M, n_targets)
        Measurements.
    **params : dict
        Parameters of :class:`KroneckerSBL` (``method``, ``block``, ``noise_variance``, ...).

    Returns
    -------
    coef : array of shape (N,) or (n_targets, N)
        The estimate on the full grid.
    info : dict
        ``gamma``, ``gamma_factors``, ``support_factors``, ``support``, ``noise_variance``,
        ``n_iter``, ``converged``, ``sigma_diag`` and ``estimator`` (the fitted
        :class:`KroneckerSBL`).

    See Also
    --------
    kronecker_sbl_many : many independent problems with shared factors.

    Notes
    -----
    See :class:`KroneckerSBL` for the algorithm and the choices not specified by the paper.

    References
    ----------
    .. [1] Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector
       recovery with application to IRS-MIMO channel estimation", IEEE Trans. Signal
       Process., 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.bayes import kronecker_sbl
    >>> from sparsestat.datasets import make_kronecker_sparse_signal
    >>> factors, y, coef = make_kronecker_sparse_signal(
    ...     factor_shapes=((8, 12), (9, 12)), n_nonzero=2, snr_db=40, random_state=0)
    >>> coef_hat, info = kronecker_sbl(factors, y, method="am")
    >>> info["support"], np.flatnonzero(coef)
    (array([49, 54, 61, 66]), array([49, 54, 61, 66]))
    """
    est = KroneckerSBL(**params).fit(factors, y)
    info = {
        "gamma": est.gamma_,
        "gamma_factors": est.gamma_factors_,
        "support_factors": est.support_factors_,
        "support": est.support_,
        "noise_variance": est.noise_variance_,
        "n_iter": est.n_iter_,
        "converged": est.converged_,
        "sigma_diag": est.sigma_diag_,
        "estimator": est,
    }
    return est.coef_, info
