"""Per-user privacy budget accounting for local differential privacy.

In the local model every user randomises their own data, so the guarantee is per user:
reports of *different* users compose in parallel (charging a million users once costs each
of them ``epsilon`` once), while repeated reports of the *same* user compose sequentially
(basic composition: the epsilons and deltas add up).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["BudgetAccountant", "BudgetError"]


class BudgetError(ValueError):
    """Raised when a charge would take some user past their privacy budget.

    It subclasses ``ValueError``; nothing is charged when it is raised.

    Examples
    --------
    >>> from sparsestat.privacy import BudgetAccountant, BudgetError
    >>> acc = BudgetAccountant(epsilon=1.0)
    >>> try:
    ...     acc.spend(2.0, 0.0, users=[0])
    ... except BudgetError:
    ...     print("refused")
    refused
    """


def _check_amount(epsilon: Any, delta: Any) -> tuple[float, float]:
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError(f"epsilon must be a real number; got {epsilon!r}")
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real):
        raise TypeError(f"delta must be a real number; got {delta!r}")
    epsilon, delta = float(epsilon), float(delta)
    if math.isnan(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be >= 0; got {epsilon!r}")
    if math.isnan(delta) or not 0 <= delta <= 1:
        raise ValueError(f"delta must be in [0, 1]; got {delta!r}")
    return epsilon, delta


def _runs(users: Any) -> tuple[np.ndarray, np.ndarray]:
    """Half-open runs [start, stop) covering ``users``; a user listed twice is in two runs."""
    if isinstance(users, range):
        if users.step != 1:
            users = np.arange(users.start, users.stop, users.step)
        else:
            if len(users) == 0:
                return np.empty(0, np.int64), np.empty(0, np.int64)
            return np.array([users.start], np.int64), np.array([users.stop], np.int64)
    ids = np.asarray(users)
    if ids.ndim == 0:
        ids = ids.reshape(1)
    if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
        raise TypeError("users must be a range or a 1-D array of integer user ids")
    if ids.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    ids = ids.astype(np.int64)
    if np.all(np.diff(ids) == 1):  # the common case: one contiguous batch, no sort needed
        return ids[:1].copy(), ids[-1:] + 1
    ids = np.sort(ids)
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    starts = ids[np.concatenate(([0], breaks))]
    stops = ids[np.concatenate((breaks - 1, [ids.size - 1]))] + 1
    return starts, stops


class BudgetAccountant:
    """Per-user (epsilon, delta) budget with parallel and sequential composition.

    Each user has the same total budget ``(epsilon, delta)``. A charge names the users it
    applies to: charging a set of distinct users costs each of them once (parallel
    composition, because each user's report depends on that user's data only); charging a
    user again adds up (basic sequential composition). A charge that would take any user
    past the budget is refused with :class:`BudgetError` and changes nothing.

    Spending is stored as a piecewise-constant function of the user id, so charging a
    contiguous range of a million users costs O(1) memory.

    Parameters
    ----------
    epsilon : float, default=inf
        Total epsilon each user may spend.
    delta : float, default=1.0
        Total delta each user may spend.

    Attributes
    ----------
    n_charges : int
        Number of accepted charges.

    Notes
    -----
    This differs on purpose from diffprivlib's accountant, which counts spending per
    *call* (central model). Here a model fitted once on n users costs each user
    ``(epsilon, delta)`` once, however many batches (``partial_fit``), machines or dask
    chunks the reports arrive in. Budgets are compared with a relative slack of 1e-12 so that
    spending exactly the budget in several float steps is accepted. Basic composition is
    used (no advanced composition), which is conservative.

    References
    ----------
    .. [1] Dwork & Roth, "The Algorithmic Foundations of Differential Privacy", 2014
       (composition theorems).
    .. [2] IBM diffprivlib, ``diffprivlib.accountant.BudgetAccountant`` (the check / spend
       interface).

    Examples
    --------
    >>> from sparsestat.privacy import BudgetAccountant
    >>> acc = BudgetAccountant(epsilon=1.0, delta=1e-5)
    >>> acc.spend(0.5, 1e-6, users=range(1000))   # 1000 users, once each
    >>> acc   # spent by, and left to, the most charged user
    BudgetAccountant(epsilon=1.0, delta=1e-05, spent=(0.5, 1e-06), left=(0.5, 9e-06), charges=1)
    >>> acc.spend(0.5, 9e-6, users=range(1000))
    >>> acc.spent(7)
    (1.0, 1e-05)
    >>> acc.remaining(5000)                      # user 5000 has not reported yet
    (1.0, 1e-05)
    >>> acc.check(0.5, 0.0, users=[3])
    Traceback (most recent call last):
    ...
    sparsestat.privacy.accountant.BudgetError: ...
    """

    _SLACK = 1e-12

    def __init__(self, epsilon: float = math.inf, delta: float = 1.0) -> None:
        self.epsilon, self.delta = _check_amount(epsilon, delta)
        # segment i covers user ids [points[i], points[i+1]); the last one goes to +inf
        self._points = np.array([np.iinfo(np.int64).min], dtype=np.int64)
        self._eps = np.zeros(1)
        self._delta = np.zeros(1)
        self.n_charges = 0

    def __repr__(self) -> str:
        """The budget, what the most charged user spent and what that user has left."""
        eps, delta = self.max_spent
        left = (max(self.epsilon - eps, 0.0), max(self.delta - delta, 0.0))
        return (
            f"BudgetAccountant(epsilon={self.epsilon!r}, delta={self.delta!r}, "
            f"spent=({eps:.6g}, {delta:.6g}), left=({left[0]:.6g}, {left[1]:.6g}), "
            f"charges={self.n_charges})"
        )

    # ------------------------------------------------------------------ queries
    def spent(self, user: int) -> tuple[float, float]:
        """The (epsilon, delta) spent so far by ``user``.

        Parameters
        ----------
        user : int
            User id.

        Returns
        -------
        spent : tuple of float
            Epsilon and delta spent.
        """
        i = int(np.searchsorted(self._points, int(user), side="right")) - 1
        return float(self._eps[i]), float(self._delta[i])

    def remaining(self, user: int) -> tuple[float, float]:
        """The (epsilon, delta) still available to ``user``.

        Parameters
        ----------
        user : int
            User id.

        Returns
        -------
        remaining : tuple of float
            Epsilon and delta left (never negative).
        """
        e, d = self.spent(user)
        return max(self.epsilon - e, 0.0), max(self.delta - d, 0.0)

    @property
    def max_spent(self) -> tuple[float, float]:
        """The largest (epsilon, delta) spent by any single user (the worst-case guarantee)."""
        return float(self._eps.max()), float(self._delta.max())

    # ------------------------------------------------------------------ charges
    def _levels_after(
        self, epsilon: float, delta: float, users: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        starts, stops = _runs(users)
        if starts.size == 0:
            return self._points, self._eps, self._delta
        points = np.union1d(self._points, np.concatenate((starts, stops)))
        old = np.searchsorted(self._points, points, side="right") - 1
        s_sorted, e_sorted = np.sort(starts), np.sort(stops)
        count = np.searchsorted(s_sorted, points, side="right") - np.searchsorted(
            e_sorted, points, side="right"
        )
        charged = count > 0
        if math.isinf(epsilon):  # avoid 0 * inf = nan for the users not charged
            eps = np.where(charged, math.inf, self._eps[old])
        else:
            eps = self._eps[old] + count * epsilon
        dlt = self._delta[old] + count * delta
        return points, eps, dlt

    def _fits(self, eps: np.ndarray, dlt: np.ndarray) -> bool:
        e_ok = math.isinf(self.epsilon) or float(eps.max()) <= self.epsilon * (1 + self._SLACK)
        d_ok = float(dlt.max()) <= self.delta * (1 + self._SLACK) + 1e-300
        return e_ok and d_ok

    def check(self, epsilon: float, delta: float, users: Any) -> bool:
        """Raise :class:`BudgetError` if charging ``users`` would exceed their budget.

        Parameters
        ----------
        epsilon : float
            Epsilon of the charge (per listed user; a user listed twice is charged twice).
        delta : float
            Delta of the charge.
        users : range or array-like of int
            The user ids charged.

        Returns
        -------
        ok : bool
            True when the charge fits (otherwise :class:`BudgetError` is raised).
        """
        epsilon, delta = _check_amount(epsilon, delta)
        _, eps, dlt = self._levels_after(epsilon, delta, users)
        if not self._fits(eps, dlt):
            raise BudgetError(
                f"charging (epsilon={epsilon}, delta={delta}) would take some user to "
                f"(epsilon={float(eps.max())}, delta={float(dlt.max())}), past the budget "
                f"(epsilon={self.epsilon}, delta={self.delta})"
            )
        return True

    def spend(self, epsilon: float, delta: float, users: Any) -> None:
        """Charge ``users`` (epsilon, delta) each, or raise :class:`BudgetError` and charge none.

        Parameters
        ----------
        epsilon : float
            Epsilon of the charge.
        delta : float
            Delta of the charge.
        users : range or array-like of int
            The user ids charged (a user listed k times is charged k times).
        """
        epsilon, delta = _check_amount(epsilon, delta)
        points, eps, dlt = self._levels_after(epsilon, delta, users)
        if not self._fits(eps, dlt):
            self.check(epsilon, delta, users)  # raises with the message
        keep = np.ones(points.size, dtype=bool)
        keep[1:] = (eps[1:] != eps[:-1]) | (dlt[1:] != dlt[:-1])
        self._points, self._eps, self._delta = points[keep], eps[keep], dlt[keep]
        self.n_charges += 1
