"""Non-interactive LDP sparse linear regression (Zhu, Ding, Aggarwal, Xu & Wang, ICLR 2024)."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import ThreadpoolController

from sparsestat._kernels._dispatch import force_backend
from sparsestat._kernels.ldp import (
    exact_accumulate,
    exact_to_float,
    floored_solve,
    gaussian_report_sums,
    gaussian_reports,
    grid_unit,
    keyed_gaussian_report_sums,
    mirror_upper,
    normalise_limbs,
    outer_upper,
    triu_indices,
)
from sparsestat._kernels.prox import prox_l1
from sparsestat.privacy.accountant import BudgetAccountant
from sparsestat.privacy.mechanisms import GaussianMechanism, UserStreams, _source
from sparsestat.utils._compat import (
    HasMethods,
    Interval,
    StrOptions,
    fit_context,
    validate_data,
)

__all__ = ["LDPSparseLinearRegression"]

_CHUNK_ENTRIES = 1 << 20  # numbers per chunk of per-user noise (8 MiB of float64)
_N_ALPHAS = 30
_CONTROLLER: list[ThreadpoolController] = []


def _single_thread() -> Any:
    """BLAS limited to one thread for eigh (DESIGN section 2); the controller is cached."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1)


def _n_upper(d: int) -> int:
    """Numbers in the upper triangle of a d x d matrix (the noise draws of one report M)."""
    return d * (d + 1) // 2


def _theory_bounds(n: int, d: int) -> tuple[float, float]:
    """tau1 = sqrt(2 ln(2 n d)), tau2 = sqrt(2 ln(2 n)) (spec defaults, x/y scale 1)."""
    return math.sqrt(2 * math.log(2 * n * d)), math.sqrt(2 * math.log(2 * n))


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _id_runs(ids: np.ndarray) -> list[tuple[int, int]]:
    """Sorted disjoint [start, stop) runs of distinct ids (ids must not repeat)."""
    if ids.size and np.all(np.diff(ids) == 1):  # one contiguous batch
        return [(int(ids[0]), int(ids[-1]) + 1)]
    s = np.sort(ids)
    if s.size and np.any(np.diff(s) == 0):
        raise ValueError("a user id appears twice in one batch; each user reports once")
    breaks = np.flatnonzero(np.diff(s) != 1) + 1
    starts = s[np.concatenate(([0], breaks))] if s.size else s
    stops = s[np.concatenate((breaks - 1, [s.size - 1]))] + 1 if s.size else s
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


def _contiguous_start(ids: Any) -> int | None:
    """First id of a batch of consecutive ids (a ``range`` or an array), else None."""
    if isinstance(ids, range):
        return ids.start if len(ids) else None
    if ids.size and bool(np.all(np.diff(ids) == 1)):
        return int(ids[0])
    return None


def _union_runs(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of two disjoint run lists; ``ValueError`` when a user id is in both."""
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(a + b):
        if merged and start < merged[-1][1]:
            raise ValueError(
                f"user ids [{start}, {min(stop, merged[-1][1])}) already reported to this "
                "model; a user may report only once (their noise would repeat)"
            )
        if merged and start == merged[-1][1]:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


class LDPSparseLinearRegression(RegressorMixin, BaseEstimator):
    """Sparse linear regression under non-interactive local differential privacy (NLDP).

    Each user clips their own ``(x, y)`` coordinatewise to ``[-tau1, tau1]`` and
    ``[-tau2, tau2]`` and releases, once, the two sufficient statistics of least squares
    with the Gaussian mechanism: ``M = xt xt^T + E`` (E symmetric, upper triangle iid
    ``N(0, s1^2)``) and ``v = xt yt + N(0, s2^2 I)``, each at ``(epsilon/2, delta/2)`` so that
    every user is ``(epsilon, delta)``-LDP. The server averages the reports into ``S`` and
    ``b``, floors the eigenvalues of ``S`` at ``r`` and returns the soft-thresholded
    ``theta = soft(S_r^{-1} b, alpha)``.

    Parameters
    ----------
    epsilon : float, default=1.0
        Per-user privacy parameter (> 0). ``np.inf`` turns the noise off (the non-private
        elementary estimator, for reference).
    delta : float, default=1e-5
        Per-user privacy parameter in (0, 1); set it well below ``1 / n_users``.
    bounds_X : float or None, default=None
        Clipping bound tau1 applied to every coordinate of x. None uses the theory default
        ``sqrt(2 ln(2 n d))`` with a ``UserWarning`` (bounds are never derived from the raw
        data, which would break the privacy guarantee).
    bounds_y : float or None, default=None
        Clipping bound tau2 of y; None uses ``sqrt(2 ln(2 n))`` with a warning.
    alpha : float, "auto" or "cv", default="auto"
        Soft threshold lambda. "auto": ``||S_r^{-1}||_{inf->inf} sqrt(2 ln(2d)/n)
        (s1 R + s2 + tau1 (tau1 R + tau2))``; "cv": K-fold cross-validation over users with
        the unbiased private risk ``theta^T S_j theta - 2 theta^T b_j``.
    eig_floor : float or "auto", default="auto"
        Eigenvalue floor r of ``S``; "auto" is ``max(2 s1 sqrt(d / n), 1e-12)``.
    l1_radius : float, default=1.0
        R, the assumed bound on ``||theta*||_1`` used by ``alpha="auto"``.
    public_X : array-like of shape (m, n_features) or None, default=None
        Public unlabelled covariates. When given, ``S`` is computed from them without noise
        and users release only ``v``, at the full ``(epsilon, delta)``.
    calibration : {"classic", "analytic"}, default="classic"
        Gaussian calibration (:func:`~sparsestat.privacy.gaussian_sigma`); "classic"
        requires each message's epsilon (``epsilon / 2``, or ``epsilon`` with ``public_X``)
        to be at most 1 and raises otherwise.
    simulate_aggregate : bool, default=False
        Experiments only: add one Gaussian matrix with the variance of the summed per-user
        noise instead of n per-user draws. The server's output has the same distribution;
        no per-user reports exist, so this is not a deployment mode.
    fit_intercept : bool, default=False
        Append a constant feature ``min(1, tau1)`` (unpenalised) and report its coefficient
        as ``intercept_``.
    cv : int, default=5
        Number of folds for ``alpha="cv"``; user ``i`` belongs to fold ``i % cv``. The
        per-fold sums are kept whatever ``alpha`` is (O(cv d^2) memory).
    noise_backend : {"numpy", "opendp"}, default="numpy"
        Noise sampler (see :mod:`sparsestat.privacy.mechanisms`); "opendp" needs
        ``random_state=None`` and ``simulate_aggregate=False``.
    random_state : int, RandomState instance or None, default=None
        An int keys per-user noise streams by user id, so that ``fit``, ``partial_fit``,
        ``merge`` and distributed aggregation give bit-identical models. Whoever knows the
        seed can remove the noise: use it for simulations only.
    accountant : BudgetAccountant or None, default=None
        Per-user budget accountant; charged ``(epsilon, delta)`` once per user (parallel
        composition). None creates an unlimited one in ``accountant_``.

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
    Inferred in the spec and implemented as specified: the constants of the noise
    (``s1 = 4 sqrt(2 ln(2.5/delta)) d tau1^2 / epsilon``, ``s2 = 4 sqrt(2 ln(2.5/delta))
    sqrt(d) tau1 tau2 / epsilon``, from l2 sensitivities ``2 d tau1^2`` and
    ``2 sqrt(d) tau1 tau2`` computed from the clipping), the role of r as an eigenvalue
    floor, the "auto" rules, the cross-validation risk and the public-data variant. The
    lower bound of the paper is for pure epsilon-LDP while this mechanism is approximate.

    Streaming: the server state is the per-fold sums and counts. Reports are rounded to a
    fixed-point grid of relative spacing 2**-50 (post-processing) and summed as integers,
    so ``fit``, ``partial_fit`` on batches and ``merge`` agree bit for bit. A user id may
    report only once per model (a repeated id would repeat its keyed noise and is refused).
    Unlike diffprivlib, which spends epsilon on every call, the accountant is charged once
    per user, however the users are batched. ``coef_`` is recomputed after every update.

    The public parameters (``epsilon``, ``delta``, the bounds, ``calibration``, ``cv``,
    ``fit_intercept``, ``public_X``, the noise settings) are fixed by the first report;
    changing one with ``set_params`` and then adding users raises ``ValueError``. The
    post-processing parameters (``alpha``, ``eig_floor``, ``l1_radius``) may change; the
    estimate is refreshed by the next update.

    Complexity: O(d^2) time and communication per user (warning above d = 2000), O(cv d^2)
    server memory independent of n, O(d^3) per estimate. With NumPy noise, ``fit`` and
    ``partial_fit`` of consecutive user ids clip each user's row, form the outer product,
    draw the user's keyed noise, add it, round and sum in one fused Numba kernel, without
    storing noise, reports or a clipped copy of ``X`` (a C-contiguous float64 ``X`` is read
    in place; other layouts are copied 4 MiB at a time). The kernel draws NumPy's own
    numbers (a compiled copy of SeedSequence, SFC64 and the Ziggurat, equal bit for bit),
    so the integers are those of ``privatize`` followed by ``add_reports``, whatever the
    chunking; block-aligned tasks run on ``numba.get_num_threads()`` threads (set it with
    ``NUMBA_NUM_THREADS`` or ``numba.set_num_threads``), with the same result for any
    count. Batches of fewer than 2**18 noise draws take NumPy's generators directly (the
    same integers), so a small problem compiles nothing. Without a seed, the streams are
    keyed by fresh operating-system entropy. The d(d+1)/2 + d Gaussian draws per user
    bound the speed.

    References
    ----------
    .. [1] Zhu, Ding, Aggarwal, Xu & Wang, "Improved Analysis of Sparse Linear Regression in
       Local Differential Privacy Model", ICLR 2024, arXiv:2310.07367.
    .. [2] Yang, Lozano & Ravikumar, "Elementary Estimators for High-Dimensional Linear
       Regression", ICML 2014.
    .. [3] Ma, Jia & Yang, "Better Locally Private Sparse Estimation Given Multiple Samples
       Per User", ICML 2024 (ULDP-SL, independent reimplementation of NLDP).

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
    >>> private = LDPSparseLinearRegression(epsilon=2.0, bounds_X=1.0, bounds_y=1.0,
    ...                                     random_state=0).fit(X, y)
    >>> private.n_users_seen_
    20000
    """

    _parameter_constraints: dict = {
        "epsilon": [Interval(Real, 0, np.inf, closed="right")],
        "delta": [Interval(Real, 0, 1, closed="neither")],
        "bounds_X": [None, Interval(Real, 0, None, closed="neither")],
        "bounds_y": [None, Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto", "cv"})],
        "eig_floor": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "l1_radius": [Interval(Real, 0, None, closed="neither")],
        "public_X": ["array-like", None],
        "calibration": [StrOptions({"classic", "analytic"})],
        "simulate_aggregate": ["boolean"],
        "fit_intercept": ["boolean"],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "noise_backend": [StrOptions({"numpy", "opendp"})],
        "random_state": ["random_state"],
        "accountant": [None, HasMethods(["check", "spend"])],
    }

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
        calibration="classic",
        simulate_aggregate=False,
        fit_intercept=False,
        cv=5,
        noise_backend="numpy",
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # privacy noise, by design
        return tags

    # ------------------------------------------------------------------ setup
    def _check_params_combination(self) -> None:
        if self.noise_backend == "opendp" and self.simulate_aggregate:
            raise ValueError(
                "simulate_aggregate=True is a NumPy simulation; use noise_backend='numpy'"
            )

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

    def _check_unchanged(self) -> None:
        """Refuse to add users after a public parameter changed (no silent mismatch)."""
        now = {k: getattr(self, k) for k in self._PUBLIC}
        changed = [k for k, v in self._public_snapshot.items() if now[k] is not v]
        changed = [k for k in changed if not _same(now[k], self._public_snapshot[k])]
        if changed or (self.public_X is None) != (self._S_public is None):
            raise ValueError(
                f"parameters {changed or ['public_X']} changed since the first report; the "
                "public parameters are fixed for a model's lifetime (call fit to start over)"
            )

    def _initialise(self, n: int, d: int) -> None:
        """Fix the public parameters before the first user reports."""
        self._validate_params()
        self._check_params_combination()
        tau1_def, tau2_def = _theory_bounds(n, d)
        if self.bounds_X is None or self.bounds_y is None:
            warnings.warn(
                "bounds_X / bounds_y not given: using the data-independent theory defaults "
                f"tau1 = sqrt(2 ln(2 n d)) = {tau1_def:.4g}, tau2 = sqrt(2 ln(2 n)) = "
                f"{tau2_def:.4g} for standardised data (n = {n}); set them from domain "
                "knowledge, never from the private data",
                UserWarning,
                stacklevel=3,
            )
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
        eps, delta = float(self.epsilon), float(self.delta)
        public = self.public_X is not None
        if public:
            self._mech_xx = None
            self._mech_xy = GaussianMechanism(
                eps, delta, math.sqrt(de) * tau1 * tau2, self.calibration, self.noise_backend
            )
        else:
            self._mech_xx = GaussianMechanism(
                eps / 2, delta / 2, de * tau1**2, self.calibration, self.noise_backend
            )
            self._mech_xy = GaussianMechanism(
                eps / 2,
                delta / 2,
                math.sqrt(de) * tau1 * tau2,
                self.calibration,
                self.noise_backend,
            )
        s1 = 0.0 if public else self._mech_xx.scale
        s2 = self._mech_xy.scale
        self._unit_xx = grid_unit(max(s1, de * tau1**2))
        self._unit_xy = grid_unit(max(s2, math.sqrt(de) * tau1 * tau2))
        n_tri = de * (de + 1) // 2
        k = int(self.cv)
        self._hi_xx = np.zeros((k, n_tri), np.int64)
        self._lo_xx = np.zeros((k, n_tri), np.int64)
        self._hi_xy = np.zeros((k, de), np.int64)
        self._lo_xy = np.zeros((k, de), np.int64)
        self._fold_n = np.zeros(k, np.int64)
        self._runs: list[tuple[int, int]] = []
        self._next_id = 0
        rs = self.random_state
        if rs is None:
            self._entropy = None
        elif isinstance(rs, Integral):
            self._entropy = int(rs)
        else:
            self._entropy = int(check_random_state(rs).randint(2**31 - 1))
        self._S_public = self._public_gram(d) if public else None
        self.accountant_ = self.accountant if self.accountant is not None else BudgetAccountant()
        self.n_users_seen_ = 0
        self._public_snapshot = {k: getattr(self, k) for k in self._PUBLIC}
        self.noise_scale_ = (s1, s2)  # set last: it marks the public parameters as fixed

    def _public_gram(self, d: int) -> np.ndarray:
        P = validate_data(self, self.public_X, reset=False, dtype=np.float64)
        P = self._clip_X(P)
        return (P.T @ P) / P.shape[0]

    def _clip_X(self, X: np.ndarray) -> np.ndarray:
        xt = np.clip(X, -self.bounds_X_, self.bounds_X_)
        if self.fit_intercept:
            c = min(1.0, self.bounds_X_)
            xt = np.hstack([xt, np.full((xt.shape[0], 1), c)])
        return xt

    def _streams(self) -> Any:
        return None if self._entropy is None else UserStreams(self._entropy)

    def _user_ids(self, user_ids: Any, n: int) -> np.ndarray:
        if user_ids is None:
            return np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        ids = np.asarray(user_ids)
        if ids.shape != (n,) or ids.dtype.kind not in "iu" or (n and ids.min() < 0):
            raise ValueError(f"user_ids must be {n} non-negative integers, one per row")
        return ids.astype(np.int64)

    def _charge(self, ids: np.ndarray, spend: bool) -> None:
        eps = float(self.epsilon)
        delta = 0.0 if math.isinf(eps) else float(self.delta)
        if spend:
            self.accountant_.spend(eps, delta, users=ids)
        else:
            self.accountant_.check(eps, delta, users=ids)

    # ------------------------------------------------------------------ client side
    def _noise(self, source: Any, ids: np.ndarray, m: int, stream: int, scale: float) -> Any:
        """Standard normal draws of the users' reports (none when the mechanism is exact)."""
        return None if scale == 0.0 else source.draw(ids, m, stream, "normal")

    def _reports(
        self, xt: np.ndarray, yt: np.ndarray, ids: np.ndarray, source: Any = None
    ) -> tuple[Any, Any]:
        """Per-user reports (upper triangles, vectors), rounded to the fixed-point grid.

        NumPy noise: each statistic is clipped to its mechanism's l2 ball, the user's keyed
        noise added and the sum rounded by one kernel (:func:`gaussian_reports`), the same
        arithmetic as the server's fused sums. OpenDP noise: the mechanism's exact sampler.
        """
        xy = xt * yt[:, None]
        if self.noise_backend == "opendp":
            tri = None
            if self._mech_xx is not None:
                tri = self._mech_xx.randomise(outer_upper(xt), self._streams(), ids, stream=0)
                tri = np.round(tri / self._unit_xx) * self._unit_xx
            v = self._mech_xy.randomise(xy, self._streams(), ids, stream=1)
            return tri, np.round(v / self._unit_xy) * self._unit_xy
        source = _source(self._streams(), "numpy") if source is None else source
        tri = None
        if self._mech_xx is not None:
            mech = self._mech_xx
            z = self._noise(source, ids, _n_upper(xt.shape[1]), 0, mech.scale)
            tri = gaussian_reports(xt, z, mech.l2_bound, mech.scale, self._unit_xx, True)
        mech = self._mech_xy
        z = self._noise(source, ids, xt.shape[1], 1, mech.scale)
        v = gaussian_reports(xy, z, mech.l2_bound, mech.scale, self._unit_xy, False)
        return tri, v

    def _sum_reports(
        self, xt: np.ndarray, yt: np.ndarray, ids: np.ndarray, folds: np.ndarray, source: Any
    ) -> None:
        """Server side of ``fit`` on raw data: per-fold exact sums, no per-user report kept."""
        k = int(self.cv)
        if self._mech_xx is not None:
            mech = self._mech_xx
            z = self._noise(source, ids, _n_upper(xt.shape[1]), 0, mech.scale)
            hi, lo = gaussian_report_sums(
                xt, z, folds, k, mech.l2_bound, mech.scale, self._unit_xx, True
            )
            self._hi_xx, self._lo_xx = normalise_limbs(self._hi_xx + hi, self._lo_xx + lo)
        mech = self._mech_xy
        z = self._noise(source, ids, xt.shape[1], 1, mech.scale)
        hi, lo = gaussian_report_sums(
            xt * yt[:, None], z, folds, k, mech.l2_bound, mech.scale, self._unit_xy, False
        )
        self._hi_xy, self._lo_xy = normalise_limbs(self._hi_xy + hi, self._lo_xy + lo)

    def privatize(self, X, y, user_ids=None):
        """Client side: clip and privatise each user's ``(x, y)`` into the reports ``(M, v)``.

        The accountant is charged ``(epsilon, delta)`` for each user. The public parameters
        (bounds, noise scales) are fixed by the first call (or ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_users, n_features)
            One row per user.
        y : array-like of shape (n_users,)
            Responses.
        user_ids : array-like of int of shape (n_users,), default=None
            User ids keying the noise streams (default: the next unused ids).

        Returns
        -------
        M : ndarray of shape (n_users, d, d)
            Symmetric noisy outer products (``None`` with ``public_X``, where users send
            only ``v``).
        v : ndarray of shape (n_users, d)
            Noisy ``x y``.
        """
        first = not hasattr(self, "noise_scale_")
        X, y = validate_data(self, X, y, reset=first, y_numeric=True, dtype=np.float64)
        if first:
            self._initialise(X.shape[0], X.shape[1])
        self._check_unchanged()
        if self.simulate_aggregate:
            raise ValueError("simulate_aggregate=True makes no per-user reports")
        ids = self._user_ids(user_ids, X.shape[0])
        self._charge(ids, spend=False)
        xt = self._clip_X(X)
        yt = np.clip(y, -self.bounds_y_, self.bounds_y_)
        tri, v = self._reports(xt, yt, ids)
        self._charge(ids, spend=True)
        M = None if tri is None else mirror_upper(tri, xt.shape[1])
        return M, v

    # ------------------------------------------------------------------ server side
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """All-or-nothing update of the sums: on any error the state is restored."""
        saved = [a.copy() for a in (self._hi_xx, self._lo_xx, self._hi_xy, self._lo_xy)]
        try:
            yield
        except BaseException:
            self._hi_xx, self._lo_xx, self._hi_xy, self._lo_xy = saved
            raise

    def _add_limbs(self, fold: int, tri: Any, v: np.ndarray) -> None:
        if tri is not None:
            hi, lo = exact_accumulate(tri, self._unit_xx)
            self._hi_xx[fold], self._lo_xx[fold] = normalise_limbs(
                self._hi_xx[fold] + hi, self._lo_xx[fold] + lo
            )
        hi, lo = exact_accumulate(v, self._unit_xy)
        self._hi_xy[fold], self._lo_xy[fold] = normalise_limbs(
            self._hi_xy[fold] + hi, self._lo_xy[fold] + lo
        )

    def _fold_rows(self, ids: np.ndarray, folds: np.ndarray, f: int) -> Any:
        """Rows of fold ``f``: a strided slice for contiguous ids, a mask otherwise."""
        k = int(self.cv)
        if ids.size and bool(np.all(np.diff(ids) == 1)):
            return slice((f - int(ids[0])) % k, None, k)
        return folds == f

    def _aggregate_raw(self, X: np.ndarray, y: np.ndarray, ids: Any) -> None:
        """Privatise and add users; ``ids`` is a ``range`` (O(1) memory) or an id array."""
        runs = [(ids.start, ids.stop)] if isinstance(ids, range) else _id_runs(ids)
        new_runs = _union_runs(self._runs, runs)  # refuse repeats before any noise
        self._charge(ids, spend=False)
        de = X.shape[1] + int(self.fit_intercept)
        k = int(self.cv)
        with self._transaction():
            counts = self._aggregate_chunks(X, y, ids, de, k)
        self._fold_n += counts
        self._charge(ids, spend=True)
        self._runs = new_runs
        last = ids.stop - 1 if isinstance(ids, range) else int(ids.max())
        self._next_id = max(self._next_id, last + 1)
        self.n_users_seen_ = int(self._fold_n.sum())

    @staticmethod
    def _chunk_ids(ids: Any, start: int, stop: int) -> np.ndarray:
        if isinstance(ids, range):
            return np.arange(ids.start + start, ids.start + min(stop, len(ids)), dtype=np.int64)
        return ids[start:stop]

    def _aggregate_chunks(self, X, y, ids, de: int, k: int) -> np.ndarray:
        """Add the users chunk by chunk (memory independent of n); return the fold counts."""
        counts = np.zeros(k, np.int64)
        if self.simulate_aggregate:
            self._aggregate_simulated(X, y, ids, counts)
            return counts
        numpy_noise = self.noise_backend == "numpy"
        first = _contiguous_start(ids)
        if numpy_noise and first is not None and self._mech_xy.scale > 0:
            self._aggregate_keyed(X, y, first, counts)
            return counts
        # whole noise-stream blocks per chunk: memory O(chunk d^2), independent of n
        n_tri = de * (de + 1) // 2
        block = UserStreams.block_size(n_tri)
        chunk = max(block, (_CHUNK_ENTRIES // (n_tri + de)) // block * block)
        source = _source(self._streams(), "numpy") if numpy_noise else None
        for start in range(0, X.shape[0], chunk):
            sl = slice(start, start + chunk)
            ids_c = self._chunk_ids(ids, start, start + chunk)
            folds_c = ids_c % k
            counts += np.bincount(folds_c, minlength=k)
            xt = self._clip_X(X[sl])
            yt = np.clip(y[sl], -self.bounds_y_, self.bounds_y_)
            if numpy_noise:
                self._sum_reports(xt, yt, ids_c, folds_c, source)
                continue
            tri, v = self._reports(xt, yt, ids_c)
            for f in range(k):
                rows = self._fold_rows(ids_c, folds_c, f)
                if v[rows].shape[0]:
                    self._add_limbs(f, None if tri is None else tri[rows], v[rows])
        return counts

    def _aggregate_keyed(
        self, X: np.ndarray, y: np.ndarray, first: int, counts: np.ndarray
    ) -> None:
        """Users ``first, first + 1, ...`` with NumPy noise drawn inside the fused kernel.

        The kernel clips each user's row (and ``y``), appends the intercept column, draws the
        user's keyed noise (the numbers of :class:`UserStreams`, bit for bit) and sums the
        rounded reports exactly, so the integers are those of the mechanism pipeline,
        whatever the chunking and the thread count. A C-contiguous float64 ``X`` goes in
        whole (no copy); other inputs in chunks of 4 MiB (memory independent of n). Without
        a seed, the streams are keyed by fresh operating-system entropy.
        """
        n = X.shape[0]
        k = int(self.cv)
        seed = self._entropy if self._entropy is not None else np.random.SeedSequence().entropy
        de = X.shape[1] + int(self.fit_intercept)
        clip = {
            "clip_X": float(self.bounds_X_),
            "intercept": min(1.0, self.bounds_X_) if self.fit_intercept else None,
        }
        stats = [(1, self._mech_xy, False, self._unit_xy, "xy")]
        if self._mech_xx is not None:
            stats.insert(0, (0, self._mech_xx, True, self._unit_xx, "xx"))
        whole = X.dtype == np.float64 and X.flags.c_contiguous
        y = np.ascontiguousarray(y, dtype=np.float64)
        for stream, mech, outer, unit, name in stats:
            block = UserStreams.block_size(_n_upper(de) if outer else de)
            # otherwise whole noise-stream blocks of 4 MiB of X per copy, aligned on the ids
            chunk = max(block, (_CHUNK_ENTRIES // 2 // de) // block * block)
            opts = dict(clip) if outer else {**clip, "clip_y": float(self.bounds_y_)}
            pos = 0
            while pos < n:
                stop = n if whole else min(n, ((first + pos) // chunk + 1) * chunk - first)
                if not outer:
                    opts["y"] = y[pos:stop]
                hi, lo = keyed_gaussian_report_sums(
                    X[pos:stop],
                    first + pos,
                    seed,
                    stream,
                    block,
                    k,
                    mech.l2_bound,
                    mech.scale,
                    unit,
                    outer,
                    **opts,
                )
                hi_all, lo_all = getattr(self, f"_hi_{name}"), getattr(self, f"_lo_{name}")
                hi_all, lo_all = normalise_limbs(hi_all + hi, lo_all + lo)
                setattr(self, f"_hi_{name}", hi_all)
                setattr(self, f"_lo_{name}", lo_all)
                pos = stop
        # fold f holds the ids congruent to f modulo k in [first, first + n)
        f = np.arange(k)
        counts += (first + n - 1 - f) // k - (first - 1 - f) // k

    def _aggregate_simulated(
        self, X: np.ndarray, y: np.ndarray, ids: Any, counts: np.ndarray
    ) -> None:
        """Clean per-fold sums (chunked GEMMs), plus one aggregated noise draw per fold."""
        de = X.shape[1] + int(self.fit_intercept)
        k = int(self.cv)
        iu, ju = triu_indices(de)
        gram = np.zeros((k, de, de))
        cross = np.zeros((k, de))
        chunk = max(k, (_CHUNK_ENTRIES // de) // k * k)
        first = ids.start if isinstance(ids, range) else int(ids.min())
        for start in range(0, X.shape[0], chunk):
            sl = slice(start, start + chunk)
            ids_c = self._chunk_ids(ids, start, start + chunk)
            folds_c = ids_c % k
            counts += np.bincount(folds_c, minlength=k)
            xt = self._clip_X(X[sl])
            yt = np.clip(y[sl], -self.bounds_y_, self.bounds_y_)
            for f in range(k):
                rows = self._fold_rows(ids_c, folds_c, f)
                xf = np.ascontiguousarray(xt[rows])
                gram[f] += xf.T @ xf
                cross[f] += xf.T @ yt[rows]
        s1, s2 = self.noise_scale_
        gen = (
            np.random.default_rng()
            if self._entropy is None
            else np.random.Generator(
                np.random.SFC64(np.random.SeedSequence(self._entropy, spawn_key=(7, first)))
            )
        )
        for f in range(k):
            m = int(counts[f])
            if m == 0:
                continue
            tri = None
            if self._mech_xx is not None:
                noise = gen.standard_normal(iu.size) * (s1 * math.sqrt(m))
                tri = (gram[f][iu, ju] + noise)[None, :]
            v = (cross[f] + gen.standard_normal(de) * (s2 * math.sqrt(m)))[None, :]
            self._add_limbs(f, tri, v)

    def add_reports(self, M, v, user_ids=None):
        """Server side: add client reports made by :meth:`privatize` to the running sums.

        The accountant is not charged again (``privatize`` did). Reports are rounded to the
        model's fixed-point grid (a no-op for reports made by ``privatize``).

        Parameters
        ----------
        M : array-like of shape (n_users, d, d) or None
            Noisy outer products (None with ``public_X``); symmetrised as ``(M + M^T)/2``.
        v : array-like of shape (n_users, d)
            Noisy ``x y``.
        user_ids : array-like of int of shape (n_users,), default=None
            The reporting users (default: the next unused ids); they decide the folds.

        Returns
        -------
        self : LDPSparseLinearRegression
            The updated model.
        """
        if not hasattr(self, "noise_scale_"):
            raise ValueError("call privatize (or fit) first: the public parameters are unset")
        self._check_unchanged()
        v = np.asarray(v, dtype=np.float64)
        de = self._hi_xy.shape[1]
        if v.ndim != 2 or v.shape[1] != de or not np.all(np.isfinite(v)):
            raise ValueError(f"v must be a finite array of shape (n_users, {de})")
        n = v.shape[0]
        tri = None
        if self._mech_xx is not None:
            if M is None:
                raise ValueError("M is required (this model has no public_X)")
            M = np.asarray(M, dtype=np.float64)
            if M.shape != (n, de, de) or not np.all(np.isfinite(M)):
                raise ValueError(f"M must be a finite array of shape ({n}, {de}, {de})")
            iu, ju = triu_indices(de)
            tri = ((M + np.swapaxes(M, 1, 2)) / 2)[:, iu, ju]
        ids = self._user_ids(user_ids, n)
        new_runs = _union_runs(self._runs, _id_runs(ids))
        folds = ids % int(self.cv)
        with self._transaction():
            for f in range(int(self.cv)):
                mask = folds == f
                if mask.any():
                    self._add_limbs(f, None if tri is None else tri[mask], v[mask])
        self._fold_n += np.bincount(folds, minlength=int(self.cv))
        self._runs = new_runs
        self._next_id = max(self._next_id, int(ids.max()) + 1) if n else self._next_id
        self.n_users_seen_ = int(self._fold_n.sum())
        self._estimate()
        return self

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Privatise every user's row (user ids 0..n-1) and fit the estimator.

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
        self._initialise(X.shape[0], X.shape[1])
        self._aggregate_raw(X, y, range(X.shape[0]))
        self._estimate()
        return self

    def partial_fit(self, X, y, user_ids=None):
        """Privatise a batch of new users and add their reports to the running sums.

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
            self._initialise(X.shape[0], X.shape[1])
        self._check_unchanged()
        n = X.shape[0]
        ids = range(self._next_id, self._next_id + n) if user_ids is None else None
        self._aggregate_raw(X, y, ids if ids is not None else self._user_ids(user_ids, n))
        self._estimate()
        return self

    def merge(self, other):
        """Add the sums of another model fitted on *different* users (same settings).

        Parameters
        ----------
        other : LDPSparseLinearRegression
            A fitted model with the same public parameters.

        Returns
        -------
        self : LDPSparseLinearRegression
            The merged model (``other`` is unchanged).
        """
        check_is_fitted(self)
        check_is_fitted(other)
        if type(other) is not type(self):
            raise TypeError(f"cannot merge a {type(other).__name__} into {type(self).__name__}")
        mine = (
            self.n_features_in_,
            self.bounds_X_,
            self.bounds_y_,
            self.noise_scale_,
            self._unit_xx,
            self._unit_xy,
            self._hi_xx.shape,
            self.fit_intercept,
        )
        theirs = (
            other.n_features_in_,
            other.bounds_X_,
            other.bounds_y_,
            other.noise_scale_,
            other._unit_xx,
            other._unit_xy,
            other._hi_xx.shape,
            other.fit_intercept,
        )
        if mine != theirs or (self.public_X is None) != (other.public_X is None):
            raise ValueError("models differ in their public parameters and cannot be merged")
        runs = _union_runs(self._runs, other._runs)
        for name in ("xx", "xy"):
            hi, lo = normalise_limbs(
                getattr(self, f"_hi_{name}") + getattr(other, f"_hi_{name}"),
                getattr(self, f"_lo_{name}") + getattr(other, f"_lo_{name}"),
            )
            setattr(self, f"_hi_{name}", hi)
            setattr(self, f"_lo_{name}", lo)
        self._fold_n = self._fold_n + other._fold_n
        self._runs = runs
        self._next_id = max(self._next_id, other._next_id)
        self.n_users_seen_ = int(self._fold_n.sum())
        self._estimate()
        return self

    # ------------------------------------------------------------------ estimate
    def _fold_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-fold sums as float: (cv, d, d) and (cv, d)."""
        de = self._hi_xy.shape[1]
        xy = exact_to_float(self._hi_xy, self._lo_xy, self._unit_xy)
        if self._S_public is not None:
            return np.zeros((len(self._fold_n), de, de)), xy
        tri = exact_to_float(self._hi_xx, self._lo_xx, self._unit_xx)
        return mirror_upper(tri, de), xy

    def _bar(self, S_sum: np.ndarray, b_sum: np.ndarray, n: int) -> tuple[np.ndarray, float, float]:
        """theta_bar = S_r^{-1} b, the floor r and the automatic alpha."""
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
        alpha_auto = (
            inv_norm
            * math.sqrt(2 * math.log(2 * max(d_pen, 1)) / n)
            * (s1 * R + s2 + tau1 * (tau1 * R + tau2))
        )
        return theta_bar, floor, alpha_auto

    def _threshold(self, theta_bar: np.ndarray, alpha: float) -> np.ndarray:
        d_pen = theta_bar.shape[0] - int(self.fit_intercept)
        theta = theta_bar.copy()
        with force_backend("generic"):  # d numbers: nothing to compile
            theta[:d_pen] = prox_l1(theta_bar[:d_pen], alpha)
        return theta

    def _estimate(self) -> None:
        folds_xx, folds_xy = self._fold_stats()
        S_sum, b_sum = folds_xx.sum(axis=0), folds_xy.sum(axis=0)
        n = self.n_users_seen_
        self.sum_xx_ = S_sum if self._S_public is None else self._S_public * n
        self.sum_xy_ = b_sum
        self.cv_alphas_ = self.cv_scores_ = None
        theta_bar, self.eig_floor_, alpha_auto = self._bar(S_sum, b_sum, n)
        if self.alpha == "cv":
            alpha = self._cv_alpha(folds_xx, folds_xy, S_sum, b_sum, theta_bar)
        elif self.alpha == "auto":
            alpha = alpha_auto
        else:
            alpha = float(self.alpha)
        self.alpha_ = float(alpha)
        theta = self._threshold(theta_bar, self.alpha_)
        d = self.n_features_in_
        self.coef_ = theta[:d]
        c = min(1.0, self.bounds_X_)
        self.intercept_ = float(theta[d] * c) if self.fit_intercept else 0.0

    def _cv_alpha(self, folds_xx, folds_xy, S_sum, b_sum, theta_bar) -> float:
        if np.any(self._fold_n == 0):
            raise ValueError(
                f"alpha='cv' needs users in each of the cv={self.cv} folds; got "
                f"n_samples = {self.n_users_seen_} with fold sizes {self._fold_n.tolist()}"
            )
        n = self.n_users_seen_
        d_pen = b_sum.shape[0] - int(self.fit_intercept)
        top = max(float(np.max(np.abs(theta_bar[:d_pen]))) if d_pen else 0.0, 1e-12)
        alphas = np.concatenate([np.geomspace(top, top * 1e-3, _N_ALPHAS), [0.0]])
        scores = np.zeros(alphas.size)
        for j in range(int(self.cv)):
            nj = int(self._fold_n[j])
            S_j = self._S_public if self._S_public is not None else folds_xx[j] / nj
            b_j = folds_xy[j] / nj
            bar_j, _, _ = self._bar(S_sum - folds_xx[j], b_sum - folds_xy[j], n - nj)
            for a, alpha in enumerate(alphas):
                theta = self._threshold(bar_j, float(alpha))
                scores[a] += nj * (theta @ S_j @ theta - 2 * theta @ b_j) / n
        self.cv_alphas_, self.cv_scores_ = alphas, scores
        return float(alphas[int(np.argmin(scores))])

    def predict(self, X):
        """Predict with the current estimate.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            ``X @ coef_ + intercept_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return X @ self.coef_ + self.intercept_
