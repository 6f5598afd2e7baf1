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
import numbers
import os
from typing import Any

import numpy as np
from scipy import optimize, special

from sparsestat._kernels.ldp import coordinate_rr_core, duchi_core, stream_block_size

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

_BACKENDS = ("auto", "numpy", "opendp")


# ----------------------------------------------------------------------------- randomness
class UserStreams:
    """Per-user random streams keyed by ``(seed, stream, user id)``.

    Users are grouped in blocks of ``b = block_size(m)`` consecutive ids (``m`` numbers per
    user); each block has its own SFC64 generator seeded by
    ``SeedSequence(seed, spawn_key=(stream, block))``, and user ``i`` gets row ``i % b`` of
    its block's draw. So the numbers a user receives depend on the seed, the stream tag and
    the user id only, not on how users are batched.

    Parameters
    ----------
    seed : int or sequence of int
        Entropy of the streams (non-negative).

    Attributes
    ----------
    BLOCK : int
        Largest number of users per block (1024).

    Notes
    -----
    Drawing for a batch touches every block it intersects. For consecutive ids, blocks
    inside the batch are drawn straight into the output, and the last partially used block
    of each (stream, m, kind) is kept (at most 2**17 numbers, not pickled), so consecutive
    batches do not draw it twice. Whoever knows ``seed`` can recompute every
    user's noise: use seeded streams for simulations, never in a deployment.

    References
    ----------
    .. [1] O'Neill, NumPy ``SeedSequence`` (``spawn_key`` for independent streams), after
       Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.privacy import UserStreams
    >>> s = UserStreams(0)
    >>> a = s.draw(np.arange(5), 3, stream=0)
    >>> b = s.draw(np.array([3, 4]), 3, stream=0)
    >>> bool(np.array_equal(a[3:], b))
    True
    """

    BLOCK = 1024
    _BLOCK_ENTRIES = 1 << 17

    def __init__(self, seed: Any) -> None:
        self.seed = seed
        self._last: dict[tuple[int, int, str], tuple[int, np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"UserStreams(seed={self.seed!r})"

    @classmethod
    def block_size(cls, m: int) -> int:
        """Users per block for ``m`` numbers per user (at most 2**17 numbers per block).

        Parameters
        ----------
        m : int
            Numbers drawn per user.

        Returns
        -------
        b : int
            Block size, a function of ``m`` only.
        """
        return stream_block_size(m)

    def draw(self, user_ids: Any, m: int, stream: int, kind: str = "normal") -> np.ndarray:
        """Draw ``m`` numbers for each user.

        Parameters
        ----------
        user_ids : array-like of int, shape (n,)
            Non-negative user ids (repeats get identical rows).
        m : int
            Numbers per user.
        stream : int
            Stream tag (different tags give independent numbers).
        kind : {"normal", "uniform", "laplace"}, default="normal"
            Standard normal, uniform on [0, 1), or standard Laplace.

        Returns
        -------
        out : ndarray of shape (n, m)
            Row ``r`` depends on ``(seed, stream, user_ids[r])`` only.
        """
        ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
        if ids.size and ids.min() < 0:
            raise ValueError("user ids must be non-negative")
        out = np.empty((ids.size, m))
        if ids.size == 0 or m == 0:
            return out
        size = self.block_size(m)
        if ids[-1] - ids[0] == ids.size - 1 and np.all(np.diff(ids) == 1):
            self._draw_run(int(ids[0]), out, size, int(stream), kind)
            return out
        blocks = ids // size
        order = np.argsort(blocks, kind="stable")
        uniq, starts = np.unique(blocks[order], return_index=True)
        ends = np.append(starts[1:], ids.size)
        for b, s, e in zip(uniq, starts, ends):
            block = self._block(int(b), size, m, int(stream), kind)
            rows = order[s:e]
            out[rows] = block[ids[rows] - int(b) * size]
        return out

    def _generator(self, stream: int, block: int) -> np.random.Generator:
        seq = np.random.SeedSequence(self.seed, spawn_key=(stream, block))
        return np.random.Generator(np.random.SFC64(seq))

    def _block(self, b: int, size: int, m: int, stream: int, kind: str) -> np.ndarray:
        """The whole draw of block ``b``; the last one per (stream, m, kind) is kept."""
        key = (stream, m, kind)
        last = self._last
        if key in last and last[key][0] == b:
            return last[key][1]
        block = _draw(self._generator(stream, b), (size, m), kind)
        last[key] = (b, block)
        return block

    def _draw_run(self, first: int, out: np.ndarray, size: int, stream: int, kind: str) -> None:
        """Rows of the consecutive users ``first, first + 1, ...`` into ``out``.

        Blocks that lie inside the run are drawn straight into ``out``; the partial blocks
        at its ends are drawn whole (and the last one kept for the next run).
        """
        n, m = out.shape
        pos = 0
        while pos < n:
            user = first + pos
            b, r = divmod(user, size)
            take = min(size - r, n - pos)
            if r == 0 and take == size and kind in _FILL:
                _FILL[kind](self._generator(stream, b), out[pos : pos + size])
            else:
                out[pos : pos + take] = self._block(b, size, m, stream, kind)[r : r + take]
            pos += take

    def __getstate__(self) -> dict:
        return {"seed": self.seed}  # the block cache is not part of the state

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["seed"])


_FILL = {
    "normal": lambda gen, out: gen.standard_normal(out=out),
    "uniform": lambda gen, out: gen.random(out=out),
}


def _draw(gen: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    if kind == "normal":
        return gen.standard_normal(shape)
    if kind == "uniform":
        return gen.random(shape)
    if kind == "laplace":
        return gen.laplace(0.0, 1.0, shape)
    raise ValueError(f"unknown kind {kind!r}")


class _SequentialSource:
    """Rows drawn in order from one generator (no per-user keying)."""

    def __init__(self, gen: np.random.Generator) -> None:
        self.gen = gen

    def draw(self, user_ids: Any, m: int, stream: int, kind: str = "normal") -> np.ndarray:
        return _draw(self.gen, (len(user_ids), m), kind)


class _OSSource:
    """Uniforms from the operating system's CSPRNG (for the discrete mechanisms' coins)."""

    def draw(self, user_ids: Any, m: int, stream: int, kind: str = "uniform") -> np.ndarray:
        if kind != "uniform":
            raise ValueError("the OS source draws uniforms only")
        n = len(user_ids) * m
        words = np.frombuffer(os.urandom(8 * n), dtype=np.uint64)
        return ((words >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(-1, m)


class PrivacyCheckError(RuntimeError):
    """OpenDP's privacy map of a measurement does not meet the budget the mechanism claims.

    Raised when the measurement is built, before any user's data is randomised.

    Examples
    --------
    >>> from sparsestat.privacy import PrivacyCheckError
    >>> issubclass(PrivacyCheckError, RuntimeError)
    True
    """


def sampler(noise_backend: str, simulation: bool) -> str:
    """The sampler a call uses: ``"opendp"`` (exact, fresh entropy) or ``"numpy"`` (simulation).

    Parameters
    ----------
    noise_backend : {"auto", "numpy", "opendp"}
        The mechanism's or estimator's setting.
    simulation : bool
        Whether the caller declared a simulation.

    Returns
    -------
    name : {"opendp", "numpy"}
        ``"auto"`` gives OpenDP for client reports and NumPy for simulations.

    Raises
    ------
    ValueError
        ``noise_backend="numpy"`` outside a simulation.

    Examples
    --------
    >>> from sparsestat.privacy.mechanisms import sampler
    >>> sampler("auto", simulation=False), sampler("auto", simulation=True)
    ('opendp', 'numpy')
    """
    if noise_backend not in _BACKENDS:
        raise ValueError(f"noise_backend must be one of {_BACKENDS}; got {noise_backend!r}")
    if noise_backend == "auto":
        return "numpy" if simulation else "opendp"
    if noise_backend == "numpy" and not simulation:
        raise ValueError(
            "noise_backend='numpy' is for simulations only: NumPy's samplers leave "
            "floating-point artefacts that can rule out neighbouring inputs (Mironov 2012), so "
            "their reports carry no formal guarantee. Client reports use OpenDP's exact "
            "samplers (noise_backend='auto' or 'opendp'); pass simulation=True to run a "
            "simulation knowingly"
        )
    return noise_backend


def _source(random_state: Any, noise_backend: str, simulation: bool = False) -> Any:
    if random_state is not None and not simulation:
        raise ValueError(
            "a client report draws fresh operating-system entropy on every call; a "
            f"random_state ({random_state!r}) would let whoever knows it regenerate and "
            "subtract the noise. Pass simulation=True to declare a simulation (its reports "
            "carry no formal guarantee), or leave random_state=None"
        )
    if sampler(noise_backend, simulation) == "opendp":
        if random_state is not None:
            raise ValueError(
                "noise_backend='opendp' draws fresh entropy only; random_state must be None"
            )
        return _OSSource()
    if random_state is None:
        return _SequentialSource(np.random.default_rng())
    if isinstance(random_state, UserStreams):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return UserStreams(int(random_state))
    if isinstance(random_state, np.random.Generator):
        return _SequentialSource(random_state)
    if isinstance(random_state, np.random.RandomState):
        words = random_state.randint(0, 2**32, size=4, dtype=np.uint64)
        return _SequentialSource(np.random.default_rng([int(w) for w in words]))
    raise TypeError(
        "random_state must be None, an int, a numpy Generator / RandomState or UserStreams; "
        f"got {type(random_state).__name__}"
    )


def opendp_available() -> bool:
    """Whether the optional ``opendp`` package can be imported.

    Returns
    -------
    available : bool
        True when client reports (OpenDP's exact samplers) can be made.

    Examples
    --------
    >>> from sparsestat.privacy import opendp_available
    >>> isinstance(opendp_available(), bool)
    True
    """
    try:
        import opendp.prelude  # noqa: F401
    except ImportError:
        return False
    return True


def _opendp() -> Any:
    try:
        import opendp.prelude as dp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "client reports use OpenDP's exact samplers, from the optional 'opendp' package: "
            "pip install 'sparsestat[opendp]' (or declare a simulation with simulation=True)"
        ) from exc
    dp.enable_features("contrib")
    return dp


def _lattice_exponent(sensitivity: float, n_entries: int) -> int:
    """k of OpenDP's 2**k noise lattice: the rounding of the input to it adds at most a
    relative 1e-12 to the sensitivity (far inside the calibration margin), and sampling on
    it is three to four times faster than on OpenDP's default (finest) lattice."""
    return math.floor(math.log2(sensitivity * 1e-12 / (2.0 * max(n_entries, 1))))


# ----------------------------------------------------------------------------- calibration
def _check_eps(epsilon: Any, name: str = "epsilon") -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {epsilon!r}")
    epsilon = float(epsilon)
    if not epsilon > 0:  # also rejects nan
        raise ValueError(f"{name} must be > 0 (np.inf means no privacy); got {epsilon!r}")
    return epsilon


def _check_delta(delta: Any) -> float:
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real):
        raise TypeError(f"delta must be a real number; got {delta!r}")
    delta = float(delta)
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1) for the Gaussian mechanism; got {delta!r}")
    return delta


def _check_bound(bound: Any, name: str) -> float:
    if isinstance(bound, bool) or not isinstance(bound, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {bound!r}")
    bound = float(bound)
    if not (math.isfinite(bound) and bound > 0):
        raise ValueError(f"{name} must be positive and finite; got {bound!r}")
    return bound


#: Relative margin added to the analytic sigma after the bisection: it covers the rounding
#: of the privacy profile's evaluation in float64 (below 1e-11 relative on a grid of 140
#: (epsilon, delta) points, checked against 50-digit arithmetic in the tests).
_SIGMA_MARGIN = 1e-9
#: Relative (and absolute) margins taken off epsilon for the Laplace scale and the keep
#: probability, so that the floating-point values still meet epsilon (OpenDP's maps check it).
_EPS_MARGIN = 2.0**-40
_EPS_FLOOR = 2.0**-44


def gaussian_delta(mu: float, epsilon: float) -> float:
    """Exact delta(epsilon) of a Gaussian mechanism with ``mu = sensitivity / sigma``.

    Parameters
    ----------
    mu : float
        Sensitivity over noise standard deviation (> 0).
    epsilon : float
        Privacy parameter (>= 0, may be very large).

    Returns
    -------
    delta : float
        ``Phi(mu/2 - epsilon/mu) - e^epsilon Phi(-mu/2 - epsilon/mu)`` (Balle & Wang 2018,
        Theorem 8), the second term evaluated in log space (no overflow).

    Examples
    --------
    >>> from sparsestat.privacy.mechanisms import gaussian_delta
    >>> round(gaussian_delta(1.0, 0.0), 4)   # the total variation of N(0,1) and N(1,1)
    0.3829
    """
    a, b = mu / 2.0, epsilon / mu
    # epsilon + log Phi(-a - b) <= 0 for every mu > 0 (a + b >= sqrt(2 epsilon)): no overflow
    return float(special.ndtr(a - b) - math.exp(epsilon + special.log_ndtr(-a - b)))


def _analytic_delta(sigma: float, sensitivity: float, epsilon: float) -> float:
    """delta(eps) of the Gaussian mechanism (Balle & Wang 2018, Theorem 8)."""
    return gaussian_delta(sensitivity / sigma, epsilon)


def gaussian_sigma(
    sensitivity: float, epsilon: float, delta: float, calibration: str = "analytic"
) -> float:
    """Noise standard deviation of the Gaussian mechanism for (epsilon, delta)-DP.

    Parameters
    ----------
    sensitivity : float
        l2 sensitivity of the released vector (> 0).
    epsilon : float
        Privacy parameter; ``np.inf`` gives 0 (no noise, no privacy).
    delta : float
        Privacy parameter in (0, 1).
    calibration : {"analytic", "classic"}, default="analytic"
        "analytic": the smallest sigma whose exact privacy profile meets (epsilon, delta)
        (Balle & Wang 2018), found by bisection and rounded up with a relative margin of
        1e-9, valid for every epsilon. "classic": ``sensitivity * sqrt(2 ln(1.25/delta)) /
        epsilon`` (Dwork & Roth, Theorem A.1), valid only for ``epsilon <= 1`` (a larger
        epsilon raises ``ValueError`` rather than being coerced).

    Returns
    -------
    sigma : float
        The noise standard deviation.

    Notes
    -----
    The analytic sigma is never larger than the classic one where both apply. O(1).

    References
    ----------
    .. [1] Dwork & Roth, "The Algorithmic Foundations of Differential Privacy", 2014.
    .. [2] Balle & Wang, "Improving the Gaussian Mechanism for Differential Privacy:
       Analytical Calibration and Optimal Denoising", ICML 2018.

    Examples
    --------
    >>> from sparsestat.privacy import gaussian_sigma
    >>> round(gaussian_sigma(1.0, 1.0, 1e-5, calibration="classic"), 4)
    4.8448
    >>> round(gaussian_sigma(1.0, 1.0, 1e-5), 4)
    3.7305
    """
    sensitivity = _check_bound(sensitivity, "sensitivity")
    epsilon = _check_eps(epsilon)
    delta = _check_delta(delta)
    if calibration not in ("classic", "analytic"):
        raise ValueError(f"calibration must be 'classic' or 'analytic'; got {calibration!r}")
    if math.isinf(epsilon):
        return 0.0
    if calibration == "classic":
        if epsilon > 1:
            raise ValueError(
                f"the classic Gaussian calibration is valid for epsilon <= 1 only (got "
                f"{epsilon}); use calibration='analytic'"
            )
        return sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon

    def excess(log_sigma: float) -> float:
        return _analytic_delta(math.exp(log_sigma), sensitivity, epsilon) - delta

    lo, hi = math.log(sensitivity) - 10.0, math.log(sensitivity) + 10.0
    while excess(lo) < 0:
        lo -= 10.0
    while excess(hi) > 0:
        hi += 10.0
    log_sigma = optimize.brentq(excess, lo, hi, xtol=1e-14, rtol=1e-15, maxiter=500)
    sigma = math.exp(log_sigma)
    while _analytic_delta(sigma, sensitivity, epsilon) > delta:  # round up, never down
        sigma = math.nextafter(sigma, math.inf) * (1 + 1e-15)
    return sigma * (1.0 + _SIGMA_MARGIN)


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
        self.epsilon = _check_eps(epsilon)
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
        source = _source(random_state, self.noise_backend, simulation)
        return self._randomise(clipped, source, ids, stream)

    def _randomise(self, X: np.ndarray, source: Any, ids: np.ndarray, stream: int) -> np.ndarray:
        raise NotImplementedError


class GaussianMechanism(_Mechanism):
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
        self.delta = _check_delta(delta)
        self.l2_bound = _check_bound(l2_bound, "l2_bound")
        self.calibration = calibration
        self.sensitivity = 2.0 * self.l2_bound
        self.scale = gaussian_sigma(self.sensitivity, self.epsilon, self.delta, calibration)

    def opendp_measurement(self, m: int) -> Any:
        """OpenDP's Gaussian measurement for rows of ``m`` numbers, built and checked once.

        Parameters
        ----------
        m : int
            Numbers per row.

        Returns
        -------
        measurement : opendp.mod.Measurement
            ``make_gaussian`` on a sized vector domain with the l2 distance.

        Raises
        ------
        PrivacyCheckError
            When OpenDP's privacy map at the sensitivity does not meet (epsilon, delta).
        """
        meas = self._measurements.get(m)
        if meas is not None:
            return meas
        dp = _opendp()
        space = (
            dp.vector_domain(dp.atom_domain(T=float, nan=False), size=int(m)),
            dp.l2_distance(T=float),
        )
        k = _lattice_exponent(self.sensitivity, m)
        meas = dp.m.make_gaussian(*space, scale=self.scale, k=k)
        rho = float(meas.map(self.sensitivity))
        achieved = gaussian_delta(math.sqrt(2.0 * rho), self.epsilon)
        if not achieved <= self.delta:
            raise PrivacyCheckError(
                f"OpenDP's privacy map gives rho = {rho!r} at sensitivity {self.sensitivity}, "
                f"i.e. delta = {achieved!r} at epsilon = {self.epsilon}, above the claimed "
                f"delta = {self.delta}"
            )
        self._measurements[m] = meas
        return meas

    def _clip(self, X: np.ndarray) -> np.ndarray:
        norms = np.sqrt(np.einsum("ij,ij->i", X, X))
        factor = self.l2_bound / np.maximum(norms, self.l2_bound)
        return X * factor[:, None]

    def _randomise(self, X: np.ndarray, source: Any, ids: np.ndarray, stream: int) -> np.ndarray:
        if self.scale == 0.0:
            return X
        if isinstance(source, _OSSource):
            meas = self.opendp_measurement(X.shape[1])
            return np.array([meas(row.tolist()) for row in X], dtype=np.float64).reshape(X.shape)
        return X + self.scale * source.draw(ids, X.shape[1], stream, "normal")


class LaplaceMechanism(_Mechanism):
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

    def __init__(self, epsilon: float, l1_bound: float, noise_backend: str = "auto") -> None:
        self._init_common(epsilon, noise_backend)
        self.l1_bound = _check_bound(l1_bound, "l1_bound")
        self.sensitivity = 2.0 * self.l1_bound
        if math.isinf(self.epsilon):
            self.scale = 0.0
        else:
            self.scale = self.sensitivity / self.epsilon * (1.0 + _EPS_MARGIN)

    def opendp_measurement(self, m: int) -> Any:
        """OpenDP's Laplace measurement for rows of ``m`` numbers, built and checked once.

        Parameters
        ----------
        m : int
            Numbers per row.

        Returns
        -------
        measurement : opendp.mod.Measurement
            ``make_laplace`` on a sized vector domain with the l1 distance.

        Raises
        ------
        PrivacyCheckError
            When OpenDP's privacy map at the sensitivity exceeds epsilon.
        """
        meas = self._measurements.get(m)
        if meas is not None:
            return meas
        dp = _opendp()
        space = (
            dp.vector_domain(dp.atom_domain(T=float, nan=False), size=int(m)),
            dp.l1_distance(T=float),
        )
        k = _lattice_exponent(self.sensitivity, m)
        meas = dp.m.make_laplace(*space, scale=self.scale, k=k)
        achieved = float(meas.map(self.sensitivity))
        if not achieved <= self.epsilon:
            raise PrivacyCheckError(
                f"OpenDP's privacy map gives epsilon = {achieved!r} at sensitivity "
                f"{self.sensitivity}, above the claimed epsilon = {self.epsilon}"
            )
        self._measurements[m] = meas
        return meas

    def _clip(self, X: np.ndarray) -> np.ndarray:
        norms = np.abs(X).sum(axis=1)
        factor = self.l1_bound / np.maximum(norms, self.l1_bound)
        return X * factor[:, None]

    def _randomise(self, X: np.ndarray, source: Any, ids: np.ndarray, stream: int) -> np.ndarray:
        if self.scale == 0.0:
            return X
        if isinstance(source, _OSSource):
            meas = self.opendp_measurement(X.shape[1])
            return np.array([meas(row.tolist()) for row in X], dtype=np.float64).reshape(X.shape)
        return X + self.scale * source.draw(ids, X.shape[1], stream, "laplace")


def _keep_probability(epsilon: float) -> float:
    """e^eps / (e^eps + 1), computed without overflow and rounded down (never more likely
    to keep than epsilon allows): ``1 - p`` is at least the exact flip probability at a
    slightly smaller epsilon (a relative 2**-40 and an absolute 2**-44 less)."""
    if math.isinf(epsilon):
        return 1.0
    eps = max(epsilon - epsilon * _EPS_MARGIN - _EPS_FLOOR, epsilon / 2)
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
        dp = _opendp()
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
        if isinstance(source, _OSSource) and p < 1.0:
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
        self.bound = _check_bound(bound, "bound")
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
        self.bound = _check_bound(bound, "bound")
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
