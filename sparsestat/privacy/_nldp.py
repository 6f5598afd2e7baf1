"""Non-interactive LDP sparse linear regression (Zhu, Ding, Aggarwal, Xu & Wang, ICLR 2024)."""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import ThreadpoolController

import sparsestat
from sparsestat._kernels._dispatch import force_backend
from sparsestat._kernels.ldp import (
    floored_solve,
    gaussian_reports,
    grid_unit,
    mirror_upper,
    outer_upper,
    prepared_rows,
)
from sparsestat._kernels.prox import prox_l1
from sparsestat._solvers.private_sums import (
    Channel,
    Clipping,
    PrivateSums,
    stream_key,
    theory_bounds,
)
from sparsestat.privacy._calibration import warn_if_noise, warn_refit
from sparsestat.privacy._reports import FORMAT, LDPReports, check_metadata
from sparsestat.privacy.accountant import BudgetAccountant
from sparsestat.privacy.mechanisms import GaussianMechanism, UserStreams, sampler
from sparsestat.utils._compat import (
    HasMethods,
    Interval,
    StrOptions,
    fit_context,
    validate_data,
)
from sparsestat.utils._dask import rowwise

__all__ = ["LDPSparseLinearRegression"]

_N_ALPHAS = 30
_CONTROLLER: list[ThreadpoolController] = []


def _single_thread() -> Any:
    """BLAS limited to one thread for eigh (measured fastest here); the controller is cached."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except (TypeError, ValueError):
        return False


class LDPSparseLinearRegression(RegressorMixin, BaseEstimator):
    """Sparse linear regression under non-interactive local differential privacy (NLDP).

    Each user clips their own ``(x, y)`` coordinatewise to ``[-tau1, tau1]`` and
    ``[-tau2, tau2]`` and releases, once, the two sufficient statistics of least squares
    with the Gaussian mechanism: ``M = xt xt^T + E`` (E symmetric, upper triangle iid
    ``N(0, s1^2)``) and ``v = xt yt + N(0, s2^2 I)``, each at ``(epsilon/2, delta/2)`` so that
    every user is ``(epsilon, delta)``-LDP. The server averages the reports into ``S`` and
    ``b``, floors the eigenvalues of ``S`` at ``r`` and returns the soft-thresholded
    ``theta = soft(S_r^{-1} b, alpha)``.

    Two ways to use it:

    * **deployment**: each device calls :meth:`privatize` on its own data (exact OpenDP
      samplers, fresh operating-system entropy) and sends the :class:`LDPReports`; the
      server, an estimator built from the same public parameters only, calls
      :meth:`add_reports`, which refuses reports made under other parameters;
    * **simulation**: :meth:`fit` and :meth:`partial_fit` take the raw data of every user
      in one process and privatise it here, by default with the fast NumPy samplers,
      reproducible with ``random_state``. Their result carries **no formal guarantee**
      (``formal_guarantee_`` is False): they are for experiments, not for private data.
      With ``noise_backend="opendp"`` they draw every user's report by the exact sampler
      from fresh entropy, so the released model is as private as in a deployment
      (``formal_guarantee_`` is True); the raw rows were still in one process, which the
      local model's trust assumption does not allow.

    Parameters
    ----------
    epsilon : float, default=1.0
        Per-user privacy parameter (> 0). ``np.inf`` turns the noise off (the non-private
        elementary estimator, for reference).
    delta : float, default=1e-5
        Per-user privacy parameter in (0, 1); set it well below ``1 / n_users`` (a warning
        says when it is not).
    bounds_X : float or None, default=None
        Clipping bound tau1 applied to every coordinate of x. None (simulations only) uses
        ``sqrt(2 ln(2 n d))`` with a ``UserWarning``; bounds are never derived from the raw
        data, which would break the privacy guarantee. Clients and servers need it set.
    bounds_y : float or None, default=None
        Clipping bound tau2 of y; None uses ``sqrt(2 ln(2 n))`` as above.
    alpha : float, "auto", "theory" or "cv", default="auto"
        Soft threshold lambda. "auto": the noise part of the theory threshold,
        ``||S_r^{-1}||_{inf->inf} sqrt(2 ln(2d)/n) (s1 R + s2)``, which tends to 0 (the
        non-private estimate) as epsilon grows; "theory": the full theory threshold, which
        adds the sampling term ``tau1 (tau1 R + tau2)`` to ``s1 R + s2`` and stays positive
        without noise; "cv": K-fold cross-validation over users with the unbiased private
        risk ``theta^T S_j theta - 2 theta^T b_j``.
    eig_floor : float or "auto", default="auto"
        Eigenvalue floor r of ``S``; "auto" is ``max(2 s1 sqrt(d / n), 1e-12)``.
    l1_radius : float, default=1.0
        R, the assumed bound on ``||theta*||_1`` used by the thresholds.
    public_X : array-like of shape (m, n_features) or None, default=None
        Public unlabelled covariates. When given, ``S`` is computed from them without noise
        and users release only ``v``, at the full ``(epsilon, delta)``.
    calibration : {"analytic", "classic"}, default="analytic"
        Gaussian calibration (:func:`~sparsestat.privacy.gaussian_sigma`): "analytic"
        (Balle & Wang) is valid for every epsilon; "classic" requires each message's
        epsilon (``epsilon / 2``, or ``epsilon`` with ``public_X``) to be at most 1.
    simulate_aggregate : bool, default=False
        Experiments only: add one Gaussian matrix with the variance of the summed per-user
        noise instead of n per-user draws. The server's output has the same distribution;
        no per-user reports exist.
    fit_intercept : bool, default=True
        Append a constant feature ``min(1, tau1)`` (unpenalised) and report its coefficient
        as ``intercept_``. It costs no privacy (the constant is part of each user's ``x``);
        without it, a response with a nonzero mean is fitted through the origin (R^2 = -3.4
        on the uncentred diabetes target at ``epsilon=np.inf``). The default was False
        before sparsestat 0.2.
    cv : int, default=5
        Number of folds for ``alpha="cv"``; user ``i`` belongs to fold ``i % cv``. The
        per-fold sums are kept whatever ``alpha`` is (O(cv d^2) memory).
    noise_backend : {"auto", "numpy", "opendp"}, default="auto"
        Sampler (see :mod:`sparsestat.privacy.mechanisms`): "auto" uses OpenDP's exact
        samplers for :meth:`privatize` and NumPy for the simulations; "opendp" uses OpenDP
        everywhere (fresh entropy only: ``random_state`` must be None); "numpy" is accepted
        for simulations only.
    random_state : int, RandomState instance or None, default=None
        Simulations only. An int keys per-user noise streams by user id, so that ``fit``,
        ``partial_fit``, ``merge``, ``privatize(..., simulation=True)`` and distributed
        aggregation give bit-identical models; whoever knows it can remove the noise. A
        ``RandomState`` gives a 128-bit key drawn from it. :meth:`privatize` refuses it
        unless ``simulation=True``.
    accountant : BudgetAccountant or None, default=None
        Per-user budget accountant; charged ``(epsilon, delta)`` once per user (parallel
        composition). None keeps an unlimited one in ``accountant_`` for the lifetime of the
        object (refits charge it again, with a warning).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        The sparse estimate.
    intercept_ : float
        Intercept (0.0 unless ``fit_intercept``).
    alpha_ : float
        The soft threshold used.
    eig_floor_ : float
        The eigenvalue floor used.
    noise_scale_ : tuple of float
        ``(s1, s2)``, the per-user noise standard deviations of M and v (s1 = 0 with
        ``public_X``).
    sum_xx_ : ndarray of shape (d, d)
        Sum of the users' reports M (d = n_features, plus one with an intercept).
    sum_xy_ : ndarray of shape (d,)
        Sum of the users' reports v.
    n_users_seen_ : int
        Number of users aggregated.
    formal_guarantee_ : bool
        True only when every report aggregated was drawn by an exact sampler (OpenDP) from
        fresh entropy, with a finite epsilon. False for the fast NumPy samplers, seeded
        streams and ``simulate_aggregate``: such a result carries no formal guarantee.
    bounds_X_ : float
        tau1 in use.
    bounds_y_ : float
        tau2 in use.
    accountant_ : BudgetAccountant
        The accountant charged.
    cv_alphas_ : ndarray or None
        The alphas scored by ``alpha="cv"``.
    cv_scores_ : ndarray or None
        Their cross-validated private risks.
    n_features_in_ : int
        Number of features.

    Notes
    -----
    Not specified by the paper (whose algorithm boxes were not available); chosen here as
    the natural reading of its abstract and reviews: the noise constants (Gaussian
    mechanism on the statistics clipped to l2 balls of radii ``d tau1^2`` and
    ``sqrt(d) tau1 tau2``, so sensitivities ``2 d tau1^2`` and ``2 sqrt(d) tau1 tau2``), the
    role of r as an eigenvalue floor, the threshold rules, the cross-validation risk and
    the public-data variant. The lower bound of the paper is for pure epsilon-LDP while
    this mechanism is approximate.

    The server state is the per-fold exact sums (:mod:`sparsestat._solvers.private_sums`):
    reports are rounded to a fixed-point grid of relative spacing 2**-50 (post-processing)
    and summed as integers, so ``fit``, ``partial_fit`` on batches, ``merge``,
    ``privatize`` + ``add_reports`` and :func:`~sparsestat.privacy.fit_ldp_dask` agree bit
    for bit for the same noise. A user id may report only once per model. Unlike
    diffprivlib, which spends epsilon on every call, the accountant is charged once per
    user, however the users are batched.

    The public parameters (``epsilon``, ``delta``, the bounds, ``calibration``, ``cv``,
    ``fit_intercept``, ``public_X``, the noise settings) are fixed by the first report;
    changing one with ``set_params`` and then adding users raises ``ValueError``. The
    post-processing parameters (``alpha``, ``eig_floor``, ``l1_radius``) may change.

    A warning says when the predicted error bound (the "auto" threshold) exceeds the
    largest estimated coefficient, with the number of users that would bring it below
    (the bound falls like ``1/sqrt(n)``). Input is converted to float64 (the noise is
    calibrated and the sums accumulated in float64 on purpose); :meth:`predict` returns
    the input's floating dtype.

    Complexity: O(d^2) time and communication per user (warning above d = 2000), O(cv d^2)
    server memory independent of n, O(d^3) per estimate. The simulation draws NumPy's own
    keyed numbers inside one fused Numba kernel per statistic, without storing noise or
    reports.

    Tested against scikit-learn's estimator checks, all of which pass; its score check
    (R^2 > 0.5 with 200 rows) is an expected failure at a finite epsilon (the estimate of 200
    users is noise by design) and passes at ``epsilon=np.inf``.

    References
    ----------
    .. [1] Zhu, Ding, Aggarwal, Xu & Wang, "Improved Analysis of Sparse Linear Regression in
       Local Differential Privacy Model", ICLR 2024, arXiv:2310.07367.
    .. [2] Yang, Lozano & Ravikumar, "Elementary Estimators for High-Dimensional Linear
       Regression", ICML 2014.
    .. [3] Balle & Wang, "Improving the Gaussian Mechanism for Differential Privacy", ICML
       2018.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.privacy import LDPSparseLinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(20000, 3))
    >>> y = X @ np.array([0.5, 0.0, 0.0])
    >>> model = LDPSparseLinearRegression(epsilon=np.inf, bounds_X=1.0, bounds_y=1.0,
    ...                                   alpha=0.01).fit(X, y)
    >>> np.round(model.coef_, 2) + 0.0
    array([0.49, 0.  , 0.  ])
    >>> sim = LDPSparseLinearRegression(epsilon=2.0, bounds_X=1.0, bounds_y=1.0,
    ...                                 random_state=0).fit(X, y)
    >>> sim.n_users_seen_, sim.formal_guarantee_
    (20000, False)
    """

    _parameter_constraints: dict = {
        "epsilon": [Interval(Real, 0, np.inf, closed="right")],
        "delta": [Interval(Real, 0, 1, closed="neither")],
        "bounds_X": [None, Interval(Real, 0, None, closed="neither")],
        "bounds_y": [None, Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto", "theory", "cv"})],
        "eig_floor": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "l1_radius": [Interval(Real, 0, None, closed="neither")],
        "public_X": ["array-like", None],
        "calibration": [StrOptions({"classic", "analytic"})],
        "simulate_aggregate": ["boolean"],
        "fit_intercept": ["boolean"],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "noise_backend": [StrOptions({"auto", "numpy", "opendp"})],
        "random_state": ["random_state"],
        "accountant": [None, HasMethods(["check", "spend"])],
    }

    _PUBLIC = (
        "epsilon",
        "delta",
        "bounds_X",
        "bounds_y",
        "calibration",
        "simulate_aggregate",
        "fit_intercept",
        "cv",
        "noise_backend",
        "random_state",
    )

    def __init__(
        self,
        epsilon=1.0,
        delta=1e-5,
        bounds_X=None,
        bounds_y=None,
        alpha="auto",
        eig_floor="auto",
        l1_radius=1.0,
        public_X=None,
        calibration="analytic",
        simulate_aggregate=False,
        fit_intercept=True,
        cv=5,
        noise_backend="auto",
        random_state=None,
        accountant=None,
    ):
        self.epsilon = epsilon
        self.delta = delta
        self.bounds_X = bounds_X
        self.bounds_y = bounds_y
        self.alpha = alpha
        self.eig_floor = eig_floor
        self.l1_radius = l1_radius
        self.public_X = public_X
        self.calibration = calibration
        self.simulate_aggregate = simulate_aggregate
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.noise_backend = noise_backend
        self.random_state = random_state
        self.accountant = accountant

    # ------------------------------------------------------------------ public parameters
    def _channel_budgets(self) -> list[tuple[float, float]]:
        """(epsilon, delta) of each released message: the split of the user's budget."""
        eps, delta = float(self.epsilon), float(self.delta)
        if self.public_X is not None:
            return [(eps, delta)]
        return [(eps / 2, delta / 2), (eps / 2, delta / 2)]

    def _mechanism(self, budget: tuple[float, float], bound: float) -> GaussianMechanism:
        eps, delta = budget
        try:
            return GaussianMechanism(eps, delta, bound, self.calibration, self.noise_backend)
        except ValueError as exc:
            if self.calibration != "classic" or eps <= 1:
                raise
            split = (
                "epsilon itself (users release only v)"
                if self.public_X is not None
                else f"epsilon / 2 = {eps} (the budget is split between the two messages M "
                "and v, each at (epsilon/2, delta/2))"
            )
            raise ValueError(
                f"calibration='classic' is valid for a message epsilon <= 1 only; with "
                f"epsilon={self.epsilon} each message gets {split}. Use "
                "calibration='analytic' (the default, valid for every epsilon) or epsilon <= "
                f"{1 if self.public_X is not None else 2}"
            ) from exc

    def _initialise(self, n: int | None, d: int, sink: str) -> None:
        """Fix the public parameters before the first user reports.

        ``n`` is the number of users when the caller knows it (simulations), None for a
        client or a server, which need the bounds set.
        """
        self._validate_params()
        if self.noise_backend == "opendp" and self.simulate_aggregate:
            raise ValueError(
                "simulate_aggregate=True is a NumPy simulation; use noise_backend='auto'"
            )
        if self.noise_backend == "opendp" and self.random_state is not None:
            raise ValueError(
                "noise_backend='opendp' draws fresh entropy only; random_state must be None"
            )
        if self.bounds_X is None or self.bounds_y is None:
            if n is None:
                raise ValueError(
                    f"{sink} needs bounds_X and bounds_y: the clipping bounds are public "
                    "parameters fixed before any user reports (the defaults depend on the "
                    "total number of users, which a client or a server does not know)"
                )
            tau1_def, tau2_def = theory_bounds(n, d)
            warnings.warn(
                "bounds_X / bounds_y not given: using the data-independent theory defaults "
                f"tau1 = sqrt(2 ln(2 n d)) = {tau1_def:.4g}, tau2 = sqrt(2 ln(2 n)) = "
                f"{tau2_def:.4g} for standardised data (n = {n}); set them from domain "
                "knowledge, never from the private data",
                UserWarning,
                stacklevel=3,
            )
        else:
            tau1_def = tau2_def = math.nan
        self.bounds_X_ = float(self.bounds_X) if self.bounds_X is not None else tau1_def
        self.bounds_y_ = float(self.bounds_y) if self.bounds_y is not None else tau2_def
        tau1, tau2 = self.bounds_X_, self.bounds_y_
        de = d + int(self.fit_intercept)
        if de > 2000 and not self.simulate_aggregate:
            warnings.warn(
                f"each user report has {de * (de + 1) // 2} numbers (d = {de}); per-user "
                "privatisation costs O(d^2) time and memory per user",
                UserWarning,
                stacklevel=3,
            )
        budgets = self._channel_budgets()
        bound_xy = math.sqrt(de) * tau1 * tau2
        self._mech_xy = self._mechanism(budgets[-1], bound_xy)
        channels = [
            Channel("xy", de, grid_unit(max(self._mech_xy.scale, bound_xy)), 1, False, True,
                    bound_xy, self._mech_xy.scale)
        ]  # fmt: skip
        if self.public_X is None:
            bound_xx = de * tau1**2
            self._mech_xx: GaussianMechanism | None = self._mechanism(budgets[0], bound_xx)
            unit = grid_unit(max(self._mech_xx.scale, bound_xx))
            xx = Channel("xx", de * (de + 1) // 2, unit, 0, True, False, bound_xx,
                         self._mech_xx.scale)  # fmt: skip
            channels.insert(0, xx)
        else:
            self._mech_xx = None
        self._sums = PrivateSums(channels, int(self.cv))
        self._key = stream_key(self.random_state)
        self._S_public = self._public_gram() if self.public_X is not None else None
        if self.accountant is not None:
            self.accountant_ = self.accountant
        elif not hasattr(self, "accountant_"):
            self.accountant_ = BudgetAccountant()
        self.n_users_seen_ = 0
        self._delta_warned = False
        self._public_snapshot = {k: getattr(self, k) for k in self._PUBLIC}
        s1 = 0.0 if self._mech_xx is None else self._mech_xx.scale
        self.noise_scale_ = (s1, self._mech_xy.scale)  # set last: marks the parameters fixed

    def _public_gram(self) -> np.ndarray:
        P = validate_data(self, self.public_X, reset=False, dtype=np.float64)
        clip = self._clipping()
        P = prepared_rows(P, None, clip.clip_X, clip.clip_y, clip.intercept)
        return (P.T @ P) / P.shape[0]

    def _clipping(self) -> Clipping:
        c = min(1.0, self.bounds_X_) if self.fit_intercept else None
        return Clipping(self.bounds_X_, self.bounds_y_, c)

    def _check_unchanged(self) -> None:
        """Refuse to add users after a public parameter changed (no silent mismatch)."""
        now = {k: getattr(self, k) for k in self._PUBLIC}
        changed = [k for k, v in self._public_snapshot.items() if not _same(now[k], v)]
        if changed or (self.public_X is None) != (self._S_public is None):
            raise ValueError(
                f"parameters {changed or ['public_X']} changed since the first report; the "
                "public parameters are fixed for a model's lifetime (call fit to start over)"
            )

    def _metadata(self, sampler_name: str, simulation: bool) -> dict:
        """The public parameters a report is made under (what a server checks)."""
        return {
            "format": FORMAT,
            "library_version": sparsestat.__version__,
            "estimator": type(self).__name__,
            "mechanism": "gaussian",
            "channels": [c.name for c in self._sums.channels],
            "epsilon": float(self.epsilon),
            "delta": float(self.delta),
            "calibration": self.calibration,
            "sigma": [float(s) for s in self.noise_scale_],
            "bounds_X": self.bounds_X_,
            "bounds_y": self.bounds_y_,
            "fit_intercept": bool(self.fit_intercept),
            "n_features": int(self.n_features_in_),
            "units": {c.name: c.unit for c in self._sums.channels},
            "sampler": sampler_name,
            "simulation": bool(simulation),
        }

    def _charge(self, ids: Any, spend: bool) -> None:
        eps = float(self.epsilon)
        delta = 0.0 if math.isinf(eps) else float(self.delta)
        (self.accountant_.spend if spend else self.accountant_.check)(eps, delta, users=ids)

    # ------------------------------------------------------------------ client side
    def _exact_reporter(self) -> Any:
        """Per-user reports from OpenDP's exact samplers (fresh entropy), as the sums need."""
        mechs = {"xy": self._mech_xy, "xx": self._mech_xx}

        def report(xt: np.ndarray, xy: np.ndarray, ids: np.ndarray) -> dict:
            out = {}
            for c in self._sums.channels:
                stat = outer_upper(xt) if c.outer else xy
                values = mechs[c.name].randomise(stat, user_ids=ids, stream=c.stream)
                out[c.name] = np.round(values / c.unit) * c.unit
            return out

        return report

    def privatize(self, X, y, user_ids=None, *, simulation=False):
        """Client side: clip and privatise each user's ``(x, y)`` into reports.

        By default this is a **client report**: OpenDP's exact samplers with fresh
        operating-system entropy on every call; ``random_state`` must be None and the
        bounds must be set. ``simulation=True`` declares a simulation instead: the
        estimator's ``noise_backend`` and ``random_state`` (the fast NumPy samplers,
        reproducible, no formal guarantee). The accountant is charged ``(epsilon, delta)``
        for each user. The public parameters are fixed by the first call.

        Parameters
        ----------
        X : array-like of shape (n_users, n_features)
            One row per user (on a device, usually one row).
        y : array-like of shape (n_users,)
            Responses.
        user_ids : array-like of int of shape (n_users,), default=None
            The users' ids, assigned by the server (default: the next unused ids of this
            object). They decide the folds, and a server refuses an id twice.
        simulation : bool, default=False
            Whether this is a simulation (see above).

        Returns
        -------
        reports : LDPReports
            The privatised statistics (``reports.M``, ``reports.v``), the user ids and the
            public parameters; ``reports.save(path)`` writes a reports file.
        """
        first = not hasattr(self, "noise_scale_")
        X, y = validate_data(self, X, y, reset=first, y_numeric=True, dtype=np.float64)
        if first:
            self._initialise(None, X.shape[1], "privatize")
        self._check_unchanged()
        if self.simulate_aggregate:
            raise ValueError("simulate_aggregate=True makes no per-user reports")
        name = sampler(self.noise_backend, simulation)
        if not simulation and self.random_state is not None:
            raise ValueError(
                "privatize draws fresh operating-system entropy for every client report; "
                f"random_state={self.random_state!r} would let whoever knows it remove the "
                "noise. Pass simulation=True to declare a simulation, or set "
                "random_state=None"
            )
        ids = self._sums.user_ids(user_ids, X.shape[0])
        self._sums.check_new(ids)  # a repeated id in the batch is refused before any noise
        self._charge(ids, spend=False)
        clip = self._clipping()
        xt = prepared_rows(X, None, clip.clip_X, clip.clip_y, clip.intercept)
        xy = prepared_rows(X, y, clip.clip_X, clip.clip_y, clip.intercept)
        report = self._exact_reporter() if name == "opendp" else self._simulated_reporter()
        values = report(xt, xy, ids)
        self._charge(ids, spend=True)
        self._sums.next_id = max(self._sums.next_id, int(ids.max()) + 1 if ids.size else 0)
        meta = self._metadata(name, simulation=name == "numpy" or simulation)
        return LDPReports(values, ids, meta)

    def _simulated_reporter(self) -> Any:
        """Per-user reports with NumPy noise (keyed streams for an int or generator seed)."""
        source = UserStreams(self._key) if self._key is not None else None
        gen = np.random.default_rng() if source is None else None

        def report(xt: np.ndarray, xy: np.ndarray, ids: np.ndarray) -> dict:
            out = {}
            for c in self._sums.channels:
                stat_rows = xy if c.times_y else xt
                if c.scale == 0.0:
                    z = None
                elif source is not None:
                    z = source.draw(ids, c.width, c.stream, "normal")
                else:
                    z = gen.standard_normal((ids.size, c.width))
                out[c.name] = gaussian_reports(stat_rows, z, c.l2_bound, c.scale, c.unit, c.outer)
            return out

        return report

    # ------------------------------------------------------------------ server side
    def add_reports(self, reports, *, simulation=False):
        """Server side: add client reports (from :meth:`privatize`) to the running sums.

        A server is this estimator built from the public parameters only (bounds set); the
        first call fixes ``n_features_in_`` from the reports. Reports whose metadata
        (epsilon, delta, noise scales, bounds, calibration, intercept, mechanism, library
        version, ...) differ from this model's are refused with a ``ValueError`` naming each
        difference. The accountant is not charged (the clients' was).

        Parameters
        ----------
        reports : LDPReports
            Reports of users who never reported to this model.
        simulation : bool, default=False
            Accept simulated reports (NumPy sampler or a known seed), which carry no formal
            guarantee; refused otherwise.

        Returns
        -------
        self : LDPSparseLinearRegression
            The updated model.
        """
        if not isinstance(reports, LDPReports):
            raise TypeError(
                f"reports must be an LDPReports (from privatize or LDPReports.load); got "
                f"{type(reports).__name__}"
            )
        meta = reports.metadata
        formal = meta.get("sampler") == "opendp" and meta.get("simulation") is False
        if not formal and not simulation:
            raise ValueError(
                "these reports come from a simulation (NumPy sampler or a known seed) and "
                "carry no formal guarantee; pass simulation=True to aggregate them knowingly"
            )
        if not hasattr(self, "noise_scale_"):
            n_features = meta.get("n_features")
            if not isinstance(n_features, int) or n_features < 1:
                raise ValueError(f"reports metadata has no valid n_features: {n_features!r}")
            self.n_features_in_ = n_features
            self._initialise(None, n_features, "a server")
        self._check_unchanged()
        expected = self._metadata(meta.get("sampler"), meta.get("simulation"))
        check_metadata(meta, expected)
        ids = self._sums.user_ids(reports.user_ids, len(reports))
        self._sums.add_reports(reports.values, ids, formal=formal)
        self._after_update()
        return self

    # ------------------------------------------------------------------ simulations
    def _add_raw(self, X: np.ndarray, y: np.ndarray, ids: Any) -> None:
        """Privatise and add users here (a simulation); ``ids`` is a range or an array."""
        self._charge(ids, spend=False)
        name = sampler(self.noise_backend, simulation=True)
        if self.simulate_aggregate:
            self._sums.add_aggregated(X, y, ids, self._clipping(), key=self._key)
        elif name == "opendp":
            reporter = self._exact_reporter()
            self._sums.add_raw(X, y, ids, self._clipping(), reporter=reporter, formal=True)
        else:
            key = self._key if self._key is not None else np.random.SeedSequence().entropy
            self._sums.add_raw(X, y, ids, self._clipping(), key=key, source=UserStreams(key))
        self._charge(ids, spend=True)

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Simulation: privatise every user's row (user ids 0..n-1) here and fit.

        The raw data of all users is in this process, so this is a simulation of the
        protocol (for experiments and reproducible tests), not a deployment: see
        ``formal_guarantee_``. Refitting charges the same users again (with a warning).

        Parameters
        ----------
        X : array-like of shape (n_users, n_features)
            One row per user.
        y : array-like of shape (n_users,)
            Responses.

        Returns
        -------
        self : LDPSparseLinearRegression
            Fitted model.
        """
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        if hasattr(self, "noise_scale_"):
            warn_refit(self.accountant_, f"users 0..{X.shape[0] - 1}")
        self._initialise(X.shape[0], X.shape[1], "fit")
        self._add_raw(X, y, range(X.shape[0]))
        self._after_update()
        return self

    def partial_fit(self, X, y, user_ids=None):
        """Simulation: privatise a batch of new users here and add their reports.

        Parameters
        ----------
        X : array-like of shape (n_users, n_features)
            One row per new user.
        y : array-like of shape (n_users,)
            Responses.
        user_ids : array-like of int of shape (n_users,), default=None
            User ids (default: the next unused ids). They key the noise streams and the
            folds, and must not have reported to this model before.

        Returns
        -------
        self : LDPSparseLinearRegression
            Updated model.
        """
        first = not hasattr(self, "noise_scale_")
        if first:
            self._validate_params()
        X, y = validate_data(self, X, y, reset=first, y_numeric=True, dtype=np.float64)
        if first:
            self._initialise(X.shape[0], X.shape[1], "partial_fit")
        self._check_unchanged()
        n = X.shape[0]
        if user_ids is None:
            ids: Any = range(self._sums.next_id, self._sums.next_id + n)
        else:
            ids = self._sums.user_ids(user_ids, n)
        self._add_raw(X, y, ids)
        self._after_update()
        return self

    def merge(self, other):
        """Add the sums of another model fitted on *different* users (same settings).

        Parameters
        ----------
        other : LDPSparseLinearRegression
            A fitted model with the same public parameters. ``self`` may be unfitted (its
            bounds set): it then starts from ``other``'s sums.

        Returns
        -------
        self : LDPSparseLinearRegression
            The merged model (``other`` is unchanged).
        """
        check_is_fitted(other)
        if type(other) is not type(self):
            raise TypeError(f"cannot merge a {type(other).__name__} into {type(self).__name__}")
        if not hasattr(self, "noise_scale_"):  # an empty model takes other's public setting
            self.n_features_in_ = other.n_features_in_
            self._initialise(None, other.n_features_in_, "merge into an unfitted model")
        mine = (self.n_features_in_, self.bounds_X_, self.bounds_y_, self.noise_scale_)
        theirs = (other.n_features_in_, other.bounds_X_, other.bounds_y_, other.noise_scale_)
        if mine != theirs or self.fit_intercept != other.fit_intercept:
            raise ValueError("models differ in their public parameters and cannot be merged")
        self._sums.merge(other._sums)
        self._after_update()
        return self

    # ------------------------------------------------------------------ estimate
    def _after_update(self) -> None:
        sums = self._sums
        self.n_users_seen_ = sums.n_users
        self.formal_guarantee_ = bool(
            sums.formal and self.n_users_seen_ > 0 and math.isfinite(float(self.epsilon))
        )
        n = self.n_users_seen_
        if not self._delta_warned and n * float(self.delta) >= 1 and math.isfinite(self.epsilon):
            self._delta_warned = True
            warnings.warn(
                f"delta = {self.delta} is not below 1 / n_users = {1 / n:.3g}: a mechanism "
                "with delta of order 1/n may publish some user's data in the clear; take "
                f"delta well below 1/n (e.g. n^-1.1 = {n**-1.1:.3g})",
                UserWarning,
                stacklevel=3,
            )
        self._estimate()

    def _fold_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-fold sums as float: (cv, d, d) and (cv, d)."""
        xy = self._sums.fold_totals("xy")
        de = xy.shape[1]
        if self._S_public is not None:
            return np.zeros((xy.shape[0], de, de)), xy
        return mirror_upper(self._sums.fold_totals("xx"), de), xy

    def _bar(self, S_sum: np.ndarray, b_sum: np.ndarray, n: int) -> tuple[np.ndarray, float, dict]:
        """theta_bar = S_r^{-1} b, the floor r and the "auto" and "theory" thresholds."""
        de = b_sum.shape[0]
        d_pen = de - int(self.fit_intercept)
        S = self._S_public if self._S_public is not None else S_sum / n
        s1, s2 = self.noise_scale_
        if self.eig_floor == "auto":
            floor = max(2 * s1 * math.sqrt(de / n), 1e-12)
        else:
            floor = float(self.eig_floor)
        with _single_thread():
            theta_bar, inv_norm = floored_solve(S, b_sum / n, floor)
        R, tau1, tau2 = float(self.l1_radius), self.bounds_X_, self.bounds_y_
        rate = inv_norm * math.sqrt(2 * math.log(2 * max(d_pen, 1)) / n)
        thresholds = {"auto": rate * (s1 * R + s2)}
        thresholds["theory"] = rate * (s1 * R + s2 + tau1 * (tau1 * R + tau2))
        return theta_bar, floor, thresholds

    def _threshold(self, theta_bar: np.ndarray, alpha: float) -> np.ndarray:
        d_pen = theta_bar.shape[0] - int(self.fit_intercept)
        theta = theta_bar.copy()
        with force_backend("generic"):  # d numbers: nothing to compile
            theta[:d_pen] = prox_l1(theta_bar[:d_pen], alpha)
        return theta

    def _estimate(self) -> None:
        n = self.n_users_seen_
        folds_xx, folds_xy = self._fold_stats()
        S_sum, b_sum = folds_xx.sum(axis=0), folds_xy.sum(axis=0)
        self.sum_xx_ = S_sum if self._S_public is None else self._S_public * n
        self.sum_xy_ = b_sum
        self.cv_alphas_ = self.cv_scores_ = None
        d = self.n_features_in_
        if n == 0:
            self.coef_, self.intercept_, self.alpha_ = np.zeros(d), 0.0, math.nan
            self.eig_floor_ = math.nan
            return
        theta_bar, self.eig_floor_, thresholds = self._bar(S_sum, b_sum, n)
        if self.alpha == "cv":
            alpha = self._cv_alpha(folds_xx, folds_xy, S_sum, b_sum, theta_bar)
        elif isinstance(self.alpha, str):
            alpha = thresholds[self.alpha]
        else:
            alpha = float(self.alpha)
        self.alpha_ = float(alpha)
        theta = self._threshold(theta_bar, self.alpha_)
        self.coef_ = theta[:d]
        self.intercept_ = float(theta[d] * min(1.0, self.bounds_X_)) if self.fit_intercept else 0.0
        signal = float(np.max(np.abs(theta_bar[:d]))) if d else 0.0
        bound = thresholds["auto"]
        warn_if_noise(
            bound,
            signal,
            n,
            f"the predicted error bound {bound:.3g} at n = {n} users, d = {d}, epsilon = "
            f"{self.epsilon} and these bounds exceeds the largest estimated coefficient "
            f"{signal:.3g}",
            stacklevel=5,
        )

    def _cv_alpha(self, folds_xx, folds_xy, S_sum, b_sum, theta_bar) -> float:
        fold_n = self._sums.fold_n
        if np.any(fold_n == 0):
            raise ValueError(
                f"alpha='cv' needs users in each of the cv={self.cv} folds; got "
                f"n_samples = {self.n_users_seen_} with fold sizes {fold_n.tolist()}"
            )
        n = self.n_users_seen_
        d_pen = b_sum.shape[0] - int(self.fit_intercept)
        top = max(float(np.max(np.abs(theta_bar[:d_pen]))) if d_pen else 0.0, 1e-12)
        alphas = np.concatenate([np.geomspace(top, top * 1e-3, _N_ALPHAS), [0.0]])
        scores = np.zeros(alphas.size)
        for j in range(int(self.cv)):
            nj = int(fold_n[j])
            S_j = self._S_public if self._S_public is not None else folds_xx[j] / nj
            b_j = folds_xy[j] / nj
            bar_j, _, _ = self._bar(S_sum - folds_xx[j], b_sum - folds_xy[j], n - nj)
            for a, alpha in enumerate(alphas):
                theta = self._threshold(bar_j, float(alpha))
                scores[a] += nj * (theta @ S_j @ theta - 2 * theta @ b_j) / n
        self.cv_alphas_, self.cv_scores_ = alphas, scores
        return float(alphas[int(np.argmin(scores))])

    @rowwise()
    def predict(self, X):
        """Predict with the current estimate.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples (float32 input gives float32 predictions). A dask array gives a lazy
            dask array, computed chunk by chunk.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``X @ coef_ + intercept_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_.astype(X.dtype) + X.dtype.type(self.intercept_)
