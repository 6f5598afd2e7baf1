"""Local randomisers, vectorised over users: Gaussian, Laplace, l-infinity (Duchi) and RR.

Every mechanism takes one report per row (one row per user), **clips each row to the
mechanism's norm ball first** and only then randomises; the sensitivity is computed from the
clipping bound (replace-one neighbours: two inputs inside a ball of radius ``b`` differ by at
most ``2 b``), never supplied by the caller. Inputs are validated (finite, 2-D); nothing is
coerced silently.

Client reports and simulations
------------------------------
``randomise(values)`` is a **client report**: its noise comes from OpenDP's exact samplers
(optional extra ``opendp``), which add the noise to the clipped value and round once,
defeating the floating-point attacks on naive samplers (Mironov 2012), with fresh
operating-system entropy on every call; a seed is refused. When the OpenDP measurement is
built, its privacy map is checked against the claimed budget (:class:`PrivacyCheckError`
otherwise). The discrete mechanisms draw their Bernoulli choice with OpenDP's exact
randomised response and their other coins from the operating system's CSPRNG.

``randomise(values, simulation=True)`` declares a **simulation**: the fast NumPy samplers
(millions of users per second), reproducible with ``random_state``, which may be

* an int: **per-user streams** keyed by ``(seed, stream, user id)`` (:class:`UserStreams`);
  the noise of user ``i`` is the same however the users are batched. Whoever knows the seed
  can subtract the noise;
* a :class:`numpy.random.Generator` or ``RandomState``: rows drawn in order (a
  ``RandomState`` seeds a generator with 128 bits drawn from it);
* None: fresh operating-system entropy (128 bits).

Simulated reports carry **no formal guarantee**: besides a known seed, NumPy's Laplace and
Ziggurat samplers leave floating-point artefacts that can rule out neighbouring inputs.

``noise_backend`` chooses the sampler: ``"auto"`` (the default) uses OpenDP for client
reports and NumPy for simulations, ``"opendp"`` uses OpenDP for both (fresh entropy only,
so ``random_state`` must be None), and ``"numpy"`` uses NumPy and is accepted for
simulations only. OpenDP runs at about 1e4 to 2e4 samples per second.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from sparsestat._kernels.ldp import coordinate_rr_core, duchi_core
from sparsestat.privacy._calibration import (
    EPS_FLOOR,
    EPS_MARGIN,
    check_bound,
    check_delta,
    check_eps,
    gaussian_delta,
    gaussian_sigma,
    lattice_exponent,
)
from sparsestat.privacy._randomness import (
    OSSource,
    PrivacyCheckError,
    UserStreams,
    load_opendp,
    make_source,
    opendp_available,
    sampler,
)

__all__ = [
    "CoordinateRRMechanism",
    "DuchiLinfMechanism",
    "GaussianMechanism",
    "LaplaceMechanism",
    "PrivacyCheckError",
    "UserStreams",
    "gaussian_delta",
    "gaussian_sigma",
    "opendp_available",
    "sampler",
]


def _check_reports(values: Any, name: str = "values") -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float64)  # no copy for float64 input; never written to
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (one row per user); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _user_ids(user_ids: Any, n: int) -> np.ndarray:
    if user_ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(user_ids)
    if ids.shape != (n,) or (n and ids.dtype.kind not in "iu"):
        raise ValueError(f"user_ids must be {n} integers, one per row")
    return ids.astype(np.int64)


# ----------------------------------------------------------------------------- mechanisms
class _Mechanism:
    """Shared validation; subclasses define ``_clip`` and ``_randomise``."""

    def _init_common(self, epsilon: Any, noise_backend: str) -> None:
        self.epsilon = check_eps(epsilon)
        sampler(noise_backend, simulation=True)  # validates the name
        self.noise_backend = noise_backend
        self._measurements: dict[Any, Any] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_measurements"] = {}  # OpenDP objects are rebuilt (and re-checked) on use
        return state

    def clip(self, values: Any) -> np.ndarray:
        """Validate ``values`` (one row per user) and clip every row to the mechanism's ball.

        Parameters
        ----------
        values : array-like of shape (n_users, m)
            Raw reports.

        Returns
        -------
        clipped : ndarray of shape (n_users, m)
            A new float64 array; the caller's array is not modified.
        """
        return self._clip(_check_reports(values))

    def randomise(
        self,
        values: Any,
        random_state: Any = None,
        user_ids: Any = None,
        stream: int = 0,
        *,
        simulation: bool = False,
    ) -> np.ndarray:
        """Clip each row, then randomise it: one local report per user.

        Parameters
        ----------
        values : array-like of shape (n_users, m)
            One raw report per user.
        random_state : None, int, Generator, RandomState or UserStreams, default=None
            Simulations only (see the module notes); an int keys per-user streams. A client
            report (``simulation=False``) refuses any value but None.
        user_ids : array-like of int of shape (n_users,), default=None
            User ids for per-user streams (default ``0 .. n_users - 1``).
        stream : int, default=0
            Stream tag, so that two mechanisms applied to the same users draw
            independent noise.
        simulation : bool, default=False
            False: a client report, exact sampler (OpenDP) and fresh operating-system
            entropy. True: a simulation with the fast NumPy samplers (``noise_backend``
            "auto" or "numpy"), reproducible with ``random_state``; its output carries
            **no formal guarantee**.

        Returns
        -------
        reports : ndarray of shape (n_users, m) or (n_users, m_out)
            The privatised reports.
        """
        clipped = self.clip(values)
        ids = _user_ids(user_ids, clipped.shape[0])
        source = make_source(random_state, self.noise_backend, simulation)
        return self._randomise(clipped, source, ids, stream)

    def _randomise(self, X: np.ndarray, source: Any, ids: np.ndarray, stream: int) -> np.ndarray:
        raise NotImplementedError


class _Additive(_Mechanism):
    """Noise added to the clipped row: OpenDP's exact sampler, or NumPy's (``_KIND``)."""

    _KIND = "normal"
    scale: float

    def _build(self, dp: Any, m: int) -> tuple[Any, str | None]:
        raise NotImplementedError

    def opendp_measurement(self, m: int) -> Any:
        """OpenDP's measurement for rows of ``m`` numbers, built and checked once.

        The noise lattice has spacing ``2**k``, with ``k`` chosen so that rounding the input
        to it adds at most a relative 1e-12 to the sensitivity.

        Parameters
        ----------
        m : int
            Numbers per row.

        Returns
        -------
        measurement : opendp.mod.Measurement
            The measurement on a sized vector domain.

        Raises
        ------
        PrivacyCheckError
            When OpenDP's privacy map at the sensitivity does not meet the claimed budget.
        """
        meas = self._measurements.get(m)
        if meas is None:
            meas, problem = self._build(load_opendp(), m)
            if problem is not None:
                raise PrivacyCheckError(problem)
            self._measurements[m] = meas
        return meas

    def _randomise(self, X: np.ndarray, source: Any, ids: np.ndarray, stream: int) -> np.ndarray:
        if self.scale == 0.0:
            return X
        if isinstance(source, OSSource):
            meas = self.opendp_measurement(X.shape[1])
            return np.array([meas(row.tolist()) for row in X], dtype=np.float64).reshape(X.shape)
        return X + self.scale * source.draw(ids, X.shape[1], stream, self._KIND)


class GaussianMechanism(_Additive):
    """Gaussian mechanism on rows clipped to an l2 ball: (epsilon, delta)-LDP per user.

    Parameters
    ----------
    epsilon : float
        Privacy parameter (> 0; ``np.inf`` disables the noise).
    delta : float
        Privacy parameter in (0, 1).
    l2_bound : float
        Rows are scaled into the l2 ball of this radius before the noise is added.
    calibration : {"analytic", "classic"}, default="analytic"
        How sigma is derived, see :func:`gaussian_sigma`.
    noise_backend : {"auto", "opendp", "numpy"}, default="auto"
        Sampler (see the module notes): OpenDP for client reports, NumPy for simulations.

    Attributes
    ----------
    sensitivity : float
        ``2 * l2_bound``, the l2 distance between two clipped rows at most.
    scale : float
        The noise standard deviation sigma.

    Notes
    -----
    OpenDP's Gaussian measurement is built on a noise lattice of spacing ``2**k`` with
    ``k`` chosen so that rounding the input to it adds at most a relative 1e-12 to the
    sensitivity; its privacy map (rho-zCDP) is read back and the exact privacy profile of a
    Gaussian with ``mu = sqrt(2 rho)`` must meet ``(epsilon, delta)``, or
    :class:`PrivacyCheckError` is raised before any data is randomised. O(n m) time for n
    users with m numbers each.

    References
    ----------
    .. [1] Dwork & Roth, "The Algorithmic Foundations of Differential Privacy", 2014.
    .. [2] Balle & Wang, ICML 2018 (analytic calibration).
    .. [3] Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential Privacy",
       NeurIPS 2020 (the exact sampler used by OpenDP).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.privacy import GaussianMechanism
    >>> mech = GaussianMechanism(1.0, 1e-5, l2_bound=1.0)
    >>> mech.sensitivity
    2.0
    >>> mech.randomise(np.zeros((4, 3)), random_state=0, simulation=True).shape
    (4, 3)
    """

    def __init__(
        self,
        epsilon: float,
        delta: float,
        l2_bound: float,
        calibration: str = "analytic",
        noise_backend: str = "auto",
    ) -> None:
        self._init_common(epsilon, noise_backend)
        self.delta = check_delta(delta)
        self.l2_bound = check_bound(l2_bound, "l2_bound")
        self.calibration = calibration
        self.sensitivity = 2.0 * self.l2_bound
        self.scale = gaussian_sigma(self.sensitivity, self.epsilon, self.delta, calibration)

    def _build(self, dp: Any, m: int) -> tuple[Any, str | None]:
        """``make_gaussian`` on a sized vector domain with the l2 distance, and its check."""
        space = (
            dp.vector_domain(dp.atom_domain(T=float, nan=False), size=int(m)),
            dp.l2_distance(T=float),
        )
        meas = dp.m.make_gaussian(*space, scale=self.scale, k=lattice_exponent(self.sensitivity, m))
        rho = float(meas.map(self.sensitivity))
        achieved = gaussian_delta(math.sqrt(2.0 * rho), self.epsilon)
        if achieved <= self.delta:
            return meas, None
        return meas, (
            f"OpenDP's privacy map gives rho = {rho!r} at sensitivity {self.sensitivity}, i.e. "
            f"delta = {achieved!r} at epsilon = {self.epsilon}, above the claimed delta = "
            f"{self.delta}"
        )

    def _clip(self, X: np.ndarray) -> np.ndarray:
        norms = np.sqrt(np.einsum("ij,ij->i", X, X))
        factor = self.l2_bound / np.maximum(norms, self.l2_bound)
        return X * factor[:, None]


class LaplaceMechanism(_Additive):
    """Laplace mechanism on rows clipped to an l1 ball: pure epsilon-LDP per user.

    Parameters
    ----------
    epsilon : float
        Privacy parameter (> 0; ``np.inf`` disables the noise).
    l1_bound : float
        Rows are scaled into the l1 ball of this radius before the noise is added.
    noise_backend : {"auto", "opendp", "numpy"}, default="auto"
        Sampler (see the module notes): OpenDP for client reports, NumPy for simulations.

    Attributes
    ----------
    sensitivity : float
        ``2 * l1_bound``.
    scale : float
        Laplace scale ``sensitivity / epsilon``, rounded up by a relative ``2**-40`` so that
        the floating-point scale still meets epsilon (OpenDP's map is checked against it).

    Notes
    -----
    O(n m) time.

    References
    ----------
    .. [1] Dwork, McSherry, Nissim & Smith, "Calibrating Noise to Sensitivity in Private
       Data Analysis", TCC 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.privacy import LaplaceMechanism
    >>> round(LaplaceMechanism(0.5, l1_bound=1.0).scale, 9)
    4.0
    """

    _KIND = "laplace"

    def __init__(self, epsilon: float, l1_bound: float, noise_backend: str = "auto") -> None:
        self._init_common(epsilon, noise_backend)
        self.l1_bound = check_bound(l1_bound, "l1_bound")
        self.sensitivity = 2.0 * self.l1_bound
        if math.isinf(self.epsilon):
            self.scale = 0.0
        else:
            self.scale = self.sensitivity / self.epsilon * (1.0 + EPS_MARGIN)

    def _build(self, dp: Any, m: int) -> tuple[Any, str | None]:
        """``make_laplace`` on a sized vector domain with the l1 distance, and its check."""
        space = (
            dp.vector_domain(dp.atom_domain(T=float, nan=False), size=int(m)),
            dp.l1_distance(T=float),
        )
        meas = dp.m.make_laplace(*space, scale=self.scale, k=lattice_exponent(self.sensitivity, m))
        achieved = float(meas.map(self.sensitivity))
        if achieved <= self.epsilon:
            return meas, None
        return meas, (
            f"OpenDP's privacy map gives epsilon = {achieved!r} at sensitivity "
            f"{self.sensitivity}, above the claimed epsilon = {self.epsilon}"
        )

    def _clip(self, X: np.ndarray) -> np.ndarray:
        norms = np.abs(X).sum(axis=1)
        factor = self.l1_bound / np.maximum(norms, self.l1_bound)
        return X * factor[:, None]


def _keep_probability(epsilon: float) -> float:
    """e^eps / (e^eps + 1), computed without overflow and rounded down (never more likely
    to keep than epsilon allows): ``1 - p`` is at least the exact flip probability at a
    slightly smaller epsilon (a relative 2**-40 and an absolute 2**-44 less)."""
    if math.isinf(epsilon):
        return 1.0
    eps = max(epsilon - epsilon * EPS_MARGIN - EPS_FLOOR, epsilon / 2)
    # beyond epsilon ~ 36.7 the flip probability stays at 2**-53, the smallest that 1 - p
    # can hold: the coin is then more private than claimed, never less
    flip = max(float(special.expit(-eps)), 2.0**-53)
    p = 1.0 - flip  # 1 - p is exact in float64 for p in [0.5, 1] (Sterbenz)
    while 1.0 - p < flip:
        p = math.nextafter(p, 0.0)
    return p


class _Discrete(_Mechanism):
    """Shared by the l-infinity mechanism and coordinate RR: the keep coin."""

    @property
    def keep_probability(self) -> float:
        """Probability of reporting on the side of the input (randomised response).

        ``e^eps / (e^eps + 1)`` rounded down to a float (the flip probability rounded up),
        so that the likelihood ratio ``p / (1 - p)`` never exceeds ``e^epsilon``; 1 for
        ``epsilon = inf``.
        """
        return _keep_probability(self.epsilon)

    @property
    def gain(self) -> float:
        """``1 / (2 p - 1)``, the factor that makes the report unbiased."""
        return 1.0 / (2.0 * self.keep_probability - 1.0)

    def opendp_measurement(self, m: int = 1) -> Any:
        """OpenDP's exact randomised response of the keep coin, built and checked once.

        Parameters
        ----------
        m : int, default=1
            Unused (one coin per user); kept for a uniform interface.

        Returns
        -------
        measurement : opendp.mod.Measurement
            ``make_randomized_response_bool(prob=keep_probability)``.

        Raises
        ------
        PrivacyCheckError
            When OpenDP's privacy map exceeds epsilon.
        """
        meas = self._measurements.get("rr")
        if meas is not None:
            return meas
        dp = load_opendp()
        meas = dp.m.make_randomized_response_bool(prob=self.keep_probability)
        achieved = float(meas.map(1))
        if not achieved <= self.epsilon:
            raise PrivacyCheckError(
                f"OpenDP's privacy map of the keep coin gives epsilon = {achieved!r}, above "
                f"the claimed epsilon = {self.epsilon}"
            )
        self._measurements["rr"] = meas
        return meas

    def _keep_coins(self, u: np.ndarray, source: Any) -> np.ndarray:
        """Bernoulli(p) decisions: exact OpenDP randomised response, or ``u < p``."""
        p = self.keep_probability
        if isinstance(source, OSSource) and p < 1.0:
            rr = self.opendp_measurement()
            return np.array([rr(True) for _ in range(u.shape[0])], dtype=bool)
        return u[:, 0] < p

    def rounding_probability(self, X: Any) -> np.ndarray:
        """P(rounded entry = +1) of each clipped entry: ``1/2 + x / (2 bound)``.

        Parameters
        ----------
        X : ndarray of shape (n_users, d)
            Clipped rows.

        Returns
        -------
        q : ndarray of shape (n_users, d)
            Probabilities in [0, 1].
        """
        return 0.5 + np.asarray(X, dtype=np.float64) / (2.0 * self.bound)


class DuchiLinfMechanism(_Discrete):
    """The l-infinity mechanism of Duchi, Jordan & Wainwright: pure epsilon-LDP, unbiased.

    Each row ``g`` is clipped to ``[-bound, bound]^d``. With ``d'`` the smallest odd
    number >= d (padding coordinates are 0), the user draws ``V`` in ``{-1, 1}^{d'}`` with
    ``P(V_j = 1) = 1/2 + g_j / (2 bound)``, then with probability ``p = keep_probability``
    (``e^eps / (e^eps + 1)``) reports a uniform ``z`` in ``{-B, B}^{d'}`` with ``<z, V> > 0``
    and otherwise a uniform ``z`` with ``<z, V> < 0``; the padding is dropped. ``E z = g``
    and ``|z_j| = B``.

    Parameters
    ----------
    epsilon : float
        Privacy parameter (> 0; ``np.inf`` keeps the randomised rounding only).
    bound : float
        l-infinity clipping bound of the rows.
    noise_backend : {"auto", "opendp", "numpy"}, default="auto"
        Sampler (see the module notes): client reports draw the keep coin with OpenDP's
        exact randomised response and the other coins from the operating system.

    Attributes
    ----------
    scale : float
        The output magnitude ``B = bound / (2 p - 1) 2^{d'-1} / binom(d'-1, (d'-1)/2)``; set
        by the first call (it depends on d). Use :meth:`output_scale` for a given d.

    Notes
    -----
    The construction is reconstructed from Duchi et al. [1]_ (not specified there in this
    form; chosen here because it is unbiased with a closed-form B). Given ``V`` the output
    has probability ``p / 2^{d'-1}`` or ``(1 - p) / 2^{d'-1}``, so the likelihood ratio of
    any output over two inputs is at most ``p / (1 - p) <= e^eps``; the tests enumerate this
    exactly for d <= 5, from the mechanism's own probabilities. O(n d) time.

    References
    ----------
    .. [1] Duchi, Jordan & Wainwright, "Minimax Optimal Procedures for Locally Private
       Estimation", JASA 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.privacy import DuchiLinfMechanism
    >>> mech = DuchiLinfMechanism(1.0, bound=1.0)
    >>> z = mech.randomise(np.zeros((2, 3)), random_state=0, simulation=True)
    >>> bool(np.allclose(np.abs(z), mech.output_scale(3)))
    True
    """

    def __init__(self, epsilon: float, bound: float, noise_backend: str = "auto") -> None:
        self._init_common(epsilon, noise_backend)
        self.bound = check_bound(bound, "bound")
        self.scale = math.nan

    def output_scale(self, d: int) -> float:
        """The magnitude B of every output entry for dimension ``d``.

        Parameters
        ----------
        d : int
            Dimension of the rows.

        Returns
        -------
        B : float
            Output magnitude.
        """
        dd = d if d % 2 else d + 1
        log_c = (dd - 1) * math.log(2.0) - special.gammaln(dd) + 2 * special.gammaln((dd + 1) / 2)
        return self.bound * self.gain * math.exp(log_c)

    def _clip(self, X: np.ndarray) -> np.ndarray:
        return np.clip(X, -self.bound, self.bound)

    def _randomise(self, X: np.ndarray, source: Any, ids: np.ndarray, stream: int) -> np.ndarray:
        n, d = X.shape
        dd = d if d % 2 else d + 1
        q = np.full((n, dd), 0.5)
        q[:, :d] = self.rounding_probability(X)
        V = np.where(source.draw(ids, dd, 3 * stream, "uniform") < q, 1.0, -1.0)
        keep = self._keep_coins(source.draw(ids, 1, 3 * stream + 1, "uniform"), source)
        signs = np.where(source.draw(ids, dd, 3 * stream + 2, "uniform") < 0.5, 1.0, -1.0)
        self.scale = self.output_scale(d)
        return self.scale * duchi_core(V, keep, signs)[:, :d]


class CoordinateRRMechanism(_Discrete):
    """Coordinate randomised response: pure epsilon-LDP, unbiased, one coordinate per user.

    Each row ``g`` is clipped to ``[-bound, bound]^d``; the user samples a coordinate ``j``
    uniformly, rounds ``g_j`` to ``b = +-1`` with ``P(b = 1) = 1/2 + g_j/(2 bound)``, keeps
    ``b`` with probability ``p = keep_probability`` (``e^eps/(e^eps + 1)``, else flips it)
    and reports ``C b e_j`` with ``C = d bound / (2 p - 1)``, so that ``E z = g``.

    Parameters
    ----------
    epsilon : float
        Privacy parameter (> 0; ``np.inf`` keeps the sampling and rounding only).
    bound : float
        l-infinity clipping bound of the rows.
    noise_backend : {"auto", "opendp", "numpy"}, default="auto"
        Sampler (see the module notes).

    Attributes
    ----------
    scale : float
        ``C`` of the last call (it depends on d).

    Notes
    -----
    The reported coordinate is independent of the data, and the bit is randomised response
    on a rounded value, so any output's likelihood ratio is at most ``p / (1 - p) <=
    e^eps`` (a construction not specified by the paper; chosen here as the alternative to
    the l-infinity mechanism with the same rate). O(n d) time (the output is returned
    dense).

    References
    ----------
    .. [1] Warner, "Randomized response", JASA 1965.
    .. [2] Duchi, Jordan & Wainwright, JASA 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.privacy import CoordinateRRMechanism
    >>> mech = CoordinateRRMechanism(1.0, bound=1.0)
    >>> z = mech.randomise(np.zeros((3, 4)), random_state=0, simulation=True)
    >>> (z != 0).sum(axis=1).tolist()
    [1, 1, 1]
    """

    def __init__(self, epsilon: float, bound: float, noise_backend: str = "auto") -> None:
        self._init_common(epsilon, noise_backend)
        self.bound = check_bound(bound, "bound")
        self.scale = math.nan

    def _clip(self, X: np.ndarray) -> np.ndarray:
        return np.clip(X, -self.bound, self.bound)

    def _randomise(self, X: np.ndarray, source: Any, ids: np.ndarray, stream: int) -> np.ndarray:
        n, d = X.shape
        u = source.draw(ids, 3, stream, "uniform")
        coord = np.minimum((u[:, 0] * d).astype(np.int64), d - 1)
        g = X[np.arange(n), coord]
        bit = np.where(u[:, 1] < self.rounding_probability(g), 1.0, -1.0)
        keep = self._keep_coins(u[:, 2:3], source)
        self.scale = d * self.bound * self.gain
        return self.scale * coordinate_rr_core(coord, bit, keep, d)
