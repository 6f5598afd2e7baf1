"""Privacy parameters: calibration of the noise, checks of the parameters, refit warnings."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

from scipy import optimize, special

__all__ = [
    "EPS_FLOOR",
    "EPS_MARGIN",
    "check_bound",
    "check_delta",
    "check_eps",
    "gaussian_delta",
    "gaussian_sigma",
    "lattice_exponent",
    "warn_refit",
]


def lattice_exponent(sensitivity: float, n_entries: int) -> int:
    """k of OpenDP's 2**k noise lattice: the rounding of the input to it adds at most a
    relative 1e-12 to the sensitivity (far inside the calibration margin), and sampling on
    it is faster than on OpenDP's default (finest) lattice (the speed-up is not measured by
    a benchmark here)."""
    return math.floor(math.log2(sensitivity * 1e-12 / (2.0 * max(n_entries, 1))))


def check_eps(epsilon: Any, name: str = "epsilon") -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {epsilon!r}")
    epsilon = float(epsilon)
    if not epsilon > 0:  # also rejects nan
        raise ValueError(f"{name} must be > 0 (np.inf means no privacy); got {epsilon!r}")
    return epsilon


def check_delta(delta: Any) -> float:
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real):
        raise TypeError(f"delta must be a real number; got {delta!r}")
    delta = float(delta)
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1) for the Gaussian mechanism; got {delta!r}")
    return delta


def check_bound(bound: Any, name: str) -> float:
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
EPS_MARGIN = 2.0**-40
EPS_FLOOR = 2.0**-44


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
    sensitivity = check_bound(sensitivity, "sensitivity")
    epsilon = check_eps(epsilon)
    delta = check_delta(delta)
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


def warn_refit(accountant: Any, users: str) -> None:
    """Warn that a refit charges the same users again (basic composition).

    Parameters
    ----------
    accountant : BudgetAccountant or object with ``check`` / ``spend``
        The accountant of the model being refitted.
    users : str
        Which users are charged again (for the message).
    """
    spent = getattr(accountant, "max_spent", None)
    already = "" if spent is None else f" (so far, epsilon={spent[0]}, delta={spent[1]})"
    warnings.warn(
        f"refitting charges {users} again: each fit of the same users spends their budget "
        f"once more{already}. Pass one shared accountant=BudgetAccountant(epsilon=..., "
        "delta=...) to cap the total",
        UserWarning,
        stacklevel=3,
    )


def warn_if_noise(
    noise: float, signal: float, n_users: int, what: str, stacklevel: int = 4
) -> None:
    """Warn that a private estimate is mostly noise, and about how many users would do.

    Parameters
    ----------
    noise : float
        The predicted error (or noise level) of the estimate at ``n_users`` users.
    signal : float
        The size of the estimate it is compared with.
    n_users : int
        Users aggregated.
    what : str
        What the two numbers are (for the message).
    stacklevel : int, default=4
        Passed to :func:`warnings.warn` (counted from this function).

    Notes
    -----
    The noise falls like ``1 / sqrt(n)``, so ``n (noise / signal)^2`` users bring it below
    the signal. Nothing is said when ``noise`` is 0 (no privacy noise) or below ``signal``.
    """
    if noise <= 0 or noise < signal:
        return
    needed = math.ceil(n_users * (noise / max(signal, 1e-300)) ** 2)
    warnings.warn(
        f"{what}: the estimate is mostly noise. The noise falls like 1/sqrt(n): at least "
        f"about {needed:.3g} users would be needed (or a larger epsilon, tighter bounds, or "
        "public covariates where the estimator takes them)",
        UserWarning,
        stacklevel=stacklevel,
    )
