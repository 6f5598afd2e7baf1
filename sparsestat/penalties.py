"""Penalty objects: value, prox, subdifferential distance and alpha_max over the prox kernels.

A penalty is a small estimator-like object (``get_params`` / ``set_params``), so an estimator
that takes ``penalty=L1_2(alpha=0.1)`` can be tuned with ``GridSearchCV`` over
``penalty__alpha``. Every method works on NumPy arrays and, through the generic kernels, on
CuPy and torch arrays too.

All penalties are separable sums ``h(w) = sum_j h_j(w_j)`` (or over groups for
:class:`GroupL1`) with weight ``alpha``; ``prox(z, step)`` is the prox of ``step * h``.
"""

from __future__ import annotations

import math
import numbers
from abc import ABCMeta, abstractmethod
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from sparsestat._kernels._dispatch import get_namespace
from sparsestat._kernels.cd import PENALTY_CODES
from sparsestat._kernels.prox import (
    lq_threshold,
    prox_cel0,
    prox_group_l1,
    prox_l0,
    prox_l1,
    prox_l1_2,
    prox_lq,
)

__all__ = ["CEL0", "L0", "L1", "L1_2", "GroupL1", "Lq", "Penalty", "make_penalty"]


def _check_alpha(alpha: Any) -> float:
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not math.isfinite(alpha)
        or alpha < 0
    ):
        raise ValueError(f"alpha must be a finite non-negative real number; got {alpha!r}")
    return float(alpha)


def _check_step(step: Any) -> None:
    if not np.all(np.asarray(step, dtype=float) > 0):
        raise ValueError(f"step must be positive; got {step!r}")


class Penalty(BaseEstimator, metaclass=ABCMeta):
    """Base class of the separable penalties.

    A subclass stores its parameters in ``__init__`` (at least ``alpha``), sets
    ``is_convex``, and implements the four methods below. Estimators accept any subclass
    wherever they accept a penalty name.

    Attributes
    ----------
    is_convex : bool
        Whether the penalty is convex (then duality-gap certificates apply).

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.penalties import Penalty, L1
    >>> isinstance(L1(0.1), Penalty)
    True
    """

    is_convex: bool = False

    @abstractmethod
    def value(self, w: Any) -> float:
        """Penalty value ``h(w)`` summed over all entries.

        Parameters
        ----------
        w : array
            Coefficients.

        Returns
        -------
        value : float
            The penalty value.
        """

    @abstractmethod
    def prox(self, z: Any, step: Any = 1.0) -> Any:
        """Prox of ``step * h`` at ``z``.

        Parameters
        ----------
        z : array
            Point at which the prox is taken.
        step : float or array, default=1.0
            Step size (positive).

        Returns
        -------
        x : array
            The prox.
        """

    @abstractmethod
    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        """Distance of ``-grad`` to the subdifferential of ``h`` at ``w``, per coordinate.

        Parameters
        ----------
        w : array
            Coefficients.
        grad : array
            Gradient of the smooth part of the objective at ``w``.

        Returns
        -------
        dist : array
            The distance (zero at a critical point).
        """

    @abstractmethod
    def alpha_max(self, grad: Any, step: float = 1.0) -> float:
        """Smallest ``alpha`` for which zero is a fixed point of the prox-gradient map.

        Parameters
        ----------
        grad : array
            Gradient of the smooth part at zero.
        step : float, default=1.0
            Step of the prox-gradient map.

        Returns
        -------
        alpha_max : float
            The threshold value of ``alpha``.
        """


class L1(Penalty):
    """The l1 penalty ``alpha * sum_j |w_j|`` (the Lasso).

    Parameters
    ----------
    alpha : float, default=1.0
        Penalty weight, non-negative.

    Attributes
    ----------
    is_convex : bool
        True.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.penalties import L1
    >>> pen = L1(alpha=0.5)
    >>> pen.value(np.array([1.0, -2.0]))
    1.5
    >>> pen.prox(np.array([1.0, -0.2]), step=1.0)
    array([0.5, 0. ])
    """

    is_convex = True

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def value(self, w: Any) -> float:
        """Return ``alpha * sum |w|``.

        Parameters
        ----------
        w : array
            Coefficients (real or complex).

        Returns
        -------
        value : float
            The penalty value.
        """
        xp = get_namespace(w)
        return _check_alpha(self.alpha) * float(xp.sum(xp.abs(w)))

    def prox(self, z: Any, step: Any = 1.0) -> Any:
        """Soft thresholding at ``step * alpha``.

        Parameters
        ----------
        z : array
            Point at which the prox is taken.
        step : float or array, default=1.0
            Step size (positive).

        Returns
        -------
        x : array
            The prox.
        """
        _check_step(step)
        return prox_l1(z, step * _check_alpha(self.alpha))

    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        """Per-coordinate distance of ``-grad`` to ``alpha * d|w|``.

        Parameters
        ----------
        w : array
            Real coefficients.
        grad : array
            Gradient of the smooth part at ``w``.

        Returns
        -------
        dist : array
            ``|grad + alpha sign(w)|`` where ``w != 0``, ``max(|grad| - alpha, 0)`` elsewhere.
        """
        xp = get_namespace(w, grad)
        a = _check_alpha(self.alpha)
        return xp.where(
            w != 0, xp.abs(grad + a * xp.sign(w)), xp.maximum(xp.abs(grad) - a, 0.0 * grad)
        )

    def alpha_max(self, grad: Any, step: float = 1.0) -> float:
        """``max |grad|``: zero is optimal for every ``alpha`` at least this large.

        Parameters
        ----------
        grad : array
            Gradient of the smooth part at zero (e.g. ``-X.T @ y``).
        step : float, default=1.0
            Unused for the convex l1 penalty; kept for a common signature.

        Returns
        -------
        alpha_max : float
            The smallest alpha giving the all-zero solution.
        """
        xp = get_namespace(grad)
        return float(xp.max(xp.abs(grad)))

    def kernel_spec(self) -> tuple[int, float, float, None]:
        """Code and parameters handed to the coordinate-descent kernels.

        Returns
        -------
        parameters : tuple
            ``(code, alpha, q, atom_norms)``: the integer code of
            :data:`sparsestat._kernels.cd.PENALTY_CODES`, the weight, the exponent (1) and
            None.
        """
        return PENALTY_CODES["l1"], _check_alpha(self.alpha), 1.0, None


class L0(Penalty):
    """The l0 penalty ``alpha * #{j : w_j != 0}``.

    Parameters
    ----------
    alpha : float, default=1.0
        Penalty weight, non-negative.

    Attributes
    ----------
    is_convex : bool
        False.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.penalties import L0
    >>> L0(alpha=0.5).prox(np.array([0.9, 1.1]), step=1.0)  # threshold sqrt(2 * 0.5) = 1
    array([0. , 1.1])
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def value(self, w: Any) -> float:
        """Return ``alpha`` times the number of nonzero entries.

        Parameters
        ----------
        w : array
            Coefficients.

        Returns
        -------
        value : float
            The penalty value.
        """
        xp = get_namespace(w)
        return _check_alpha(self.alpha) * float(xp.sum(xp.astype(w != 0, xp.float64)))

    def prox(self, z: Any, step: Any = 1.0) -> Any:
        """Hard thresholding at ``sqrt(2 step alpha)``.

        Parameters
        ----------
        z : array
            Point at which the prox is taken.
        step : float or array, default=1.0
            Step size (positive).

        Returns
        -------
        x : array
            The prox.
        """
        _check_step(step)
        return prox_l0(z, step * _check_alpha(self.alpha))

    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        """Distance to the limiting subdifferential: ``|grad|`` on the support, 0 off it.

        Parameters
        ----------
        w : array
            Coefficients.
        grad : array
            Gradient of the smooth part at ``w``.

        Returns
        -------
        dist : array
            Per-coordinate distance.
        """
        xp = get_namespace(w, grad)
        return xp.where(w != 0, xp.abs(grad), 0.0 * xp.abs(grad))

    def alpha_max(self, grad: Any, step: float = 1.0) -> float:
        """``step * max(grad^2) / 2``: zero is a prox-gradient fixed point beyond it.

        Parameters
        ----------
        grad : array
            Gradient of the smooth part at zero.
        step : float, default=1.0
            Step of the prox-gradient map.

        Returns
        -------
        alpha_max : float
            The smallest alpha for which zero is a fixed point.
        """
        xp = get_namespace(grad)
        g = float(xp.max(xp.abs(grad)))
        return step * g * g / 2.0

    def kernel_spec(self) -> tuple[int, float, float, None]:
        """Code and parameters handed to the coordinate-descent kernels.

        Returns
        -------
        parameters : tuple
            ``(code, alpha, q, atom_norms)`` (``q`` unused, ``atom_norms`` None).
        """
        return PENALTY_CODES["l0"], _check_alpha(self.alpha), 0.5, None


class Lq(Penalty):
    """The lq quasi-norm penalty ``alpha * sum_j |w_j|^q`` for ``0 < q <= 1``.

    Parameters
    ----------
    alpha : float, default=1.0
        Penalty weight, non-negative.
    q : float, default=0.5
        Exponent in (0, 1]; ``q = 1`` is the l1 penalty.

    Attributes
    ----------
    is_convex : bool
        True only when ``q == 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.penalties import Lq
    >>> Lq(alpha=1.0, q=0.5).value(np.array([4.0, 0.0, 1.0]))
    3.0
    """

    def __init__(self, alpha: float = 1.0, q: float = 0.5):
        self.alpha = alpha
        self.q = q

    @property
    def is_convex(self) -> bool:  # type: ignore[override]
        """Whether the penalty is convex (``q == 1``)."""
        return self._q() == 1.0

    def _q(self) -> float:
        q = self.q
        if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0.0 < q <= 1.0:
            raise ValueError(f"q must be a real number in (0, 1]; got {q!r}")
        return float(q)

    def value(self, w: Any) -> float:
        """Return ``alpha * sum |w|^q``.

        Parameters
        ----------
        w : array
            Coefficients.

        Returns
        -------
        value : float
            The penalty value.
        """
        xp = get_namespace(w)
        return _check_alpha(self.alpha) * float(xp.sum(xp.abs(w) ** self._q()))

    def prox(self, z: Any, step: Any = 1.0) -> Any:
        """The lq thresholding of :func:`sparsestat._kernels.prox.prox_lq`.

        Parameters
        ----------
        z : array
            Point at which the prox is taken.
        step : float or array, default=1.0
            Step size (positive).

        Returns
        -------
        x : array
            The prox.
        """
        _check_step(step)
        return prox_lq(z, step * _check_alpha(self.alpha), self._q())

    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        """``|grad + alpha q |w|^(q-1) sign(w)|`` on the support, 0 off it (for q < 1).

        Parameters
        ----------
        w : array
            Real coefficients.
        grad : array
            Gradient of the smooth part at ``w``.

        Returns
        -------
        dist : array
            Per-coordinate distance.
        """
        q = self._q()
        a = _check_alpha(self.alpha)
        if q == 1.0:
            return L1(a).subdiff_distance(w, grad)
        xp = get_namespace(w, grad)
        aw = xp.abs(w)
        safe = xp.where(aw > 0, aw, xp.ones_like(aw))
        on = xp.abs(grad + a * q * safe ** (q - 1.0) * xp.sign(w))
        return xp.where(w != 0, on, 0.0 * on)

    def alpha_max(self, grad: Any, step: float = 1.0) -> float:
        """Smallest ``alpha`` with ``tau_q(step * alpha) >= step * max|grad|``.

        Parameters
        ----------
        grad : array
            Gradient of the smooth part at zero.
        step : float, default=1.0
            Step of the prox-gradient map.

        Returns
        -------
        alpha_max : float
            The smallest alpha for which zero is a fixed point.
        """
        q = self._q()
        xp = get_namespace(grad)
        g = float(xp.max(xp.abs(grad)))
        if q == 1.0:
            return g
        # tau = c * (2 t (1 - q))^(1/(2-q)), c = (2-q)/(2(1-q)); solve tau = step * g for t.
        c = float(lq_threshold(1.0, q)[0]) / float(lq_threshold(1.0, q)[1])
        t = (step * g / c) ** (2.0 - q) / (2.0 * (1.0 - q))
        return t / step

    def kernel_spec(self) -> tuple[int, float, float, None]:
        """Code and parameters handed to the coordinate-descent kernels.

        Returns
        -------
        parameters : tuple
            ``(code, alpha, q, atom_norms)`` (``atom_norms`` None).
        """
        return PENALTY_CODES["lq"], _check_alpha(self.alpha), self._q(), None


class L1_2(Lq):
    """The l1/2 penalty ``alpha * sum_j |w_j|^(1/2)`` with the closed-form half thresholding.

    Parameters
    ----------
    alpha : float, default=1.0
        Penalty weight, non-negative.

    Attributes
    ----------
    is_convex : bool
        False.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.penalties import L1_2
    >>> L1_2(alpha=1.0).prox(np.array([1.0, 4.0])).round(6)
    array([0.      , 3.741508])
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _q(self) -> float:
        return 0.5

    def prox(self, z: Any, step: Any = 1.0) -> Any:
        """Half thresholding (Xu et al. 2012) at ``t = step * alpha``.

        Parameters
        ----------
        z : array
            Point at which the prox is taken.
        step : float or array, default=1.0
            Step size (positive).

        Returns
        -------
        x : array
            The prox.
        """
        _check_step(step)
        return prox_l1_2(z, step * _check_alpha(self.alpha))

    def kernel_spec(self) -> tuple[int, float, float, None]:
        """Code and parameters handed to the coordinate-descent kernels.

        Returns
        -------
        parameters : tuple
            ``(code, alpha, q, atom_norms)`` with the closed-form half-thresholding code.
        """
        return PENALTY_CODES["l1/2"], _check_alpha(self.alpha), 0.5, None


class CEL0(Penalty):
    """The continuous exact l0 relaxation ``sum_j phi_j(w_j)`` (Soubies et al. 2015).

    ``phi_j(x) = alpha - (a_j^2 / 2) (|x| - sqrt(2 alpha) / a_j)^2`` for
    ``|x| <= sqrt(2 alpha) / a_j`` and ``alpha`` beyond, where ``a_j`` is the norm of the
    j-th column (atom) of the design. With the design's column norms it has the same global
    minimisers as the l0-penalised least-squares problem.

    Parameters
    ----------
    alpha : float, default=1.0
        Penalty weight, non-negative.
    atom_norms : array-like of shape (n_features,) or None, default=None
        Column norms ``a_j`` of the design (broadcast along the last axis); None means 1.

    Attributes
    ----------
    is_convex : bool
        False.

    References
    ----------
    .. [1] E. Soubies, L. Blanc-Feraud, G. Aubert, "A continuous exact l0 penalty (CEL0) for
       least squares regularized problem", SIAM J. Imaging Sciences 8(3), 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.penalties import CEL0
    >>> pen = CEL0(alpha=0.5)
    >>> pen.value(np.array([0.0, 5.0]))  # phi saturates at alpha beyond sqrt(2 alpha)
    0.5
    """

    def __init__(self, alpha: float = 1.0, atom_norms: Any = None):
        self.alpha = alpha
        self.atom_norms = atom_norms

    def _a(self) -> Any:
        if self.atom_norms is None:
            return 1.0
        a = np.asarray(self.atom_norms, dtype=np.float64)
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError("atom_norms must be finite and non-negative")
        return a

    def value(self, w: Any) -> float:
        """Return ``sum_j phi_j(w_j)``.

        Parameters
        ----------
        w : array
            Real coefficients (the last axis matches ``atom_norms``).

        Returns
        -------
        value : float
            The penalty value.
        """
        alpha = _check_alpha(self.alpha)
        w_np = np.abs(np.asarray(w, dtype=np.float64))
        a = np.broadcast_to(self._a(), w_np.shape)
        r2a = math.sqrt(2.0 * alpha)
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = w_np * a <= r2a
            phi = np.where(inside, alpha - 0.5 * (a * w_np - r2a) ** 2, alpha)
        return float(np.sum(phi))

    def prox(self, z: Any, step: Any = 1.0) -> Any:
        """The CEL0 prox of :func:`sparsestat._kernels.prox.prox_cel0`.

        Parameters
        ----------
        z : array
            Point at which the prox is taken.
        step : float or array, default=1.0
            Step size (positive).

        Returns
        -------
        x : array
            The prox.
        """
        _check_step(step)
        a = self._a()
        if not isinstance(a, float) and not isinstance(z, np.ndarray):
            xp = get_namespace(z)
            a = xp.asarray(a, dtype=z.dtype)
        return prox_cel0(z, _check_alpha(self.alpha), step, a)

    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        """Distance of ``-grad`` to the (Clarke) subdifferential of the CEL0 penalty.

        Parameters
        ----------
        w : array
            Real coefficients.
        grad : array
            Gradient of the smooth part at ``w``.

        Returns
        -------
        dist : array
            Per-coordinate distance.
        """
        alpha = _check_alpha(self.alpha)
        w_np = np.asarray(w, dtype=np.float64)
        g = np.asarray(grad, dtype=np.float64)
        a = np.broadcast_to(self._a(), w_np.shape)
        r2a = math.sqrt(2.0 * alpha)
        deriv = np.where(a * np.abs(w_np) <= r2a, (a * r2a - a * a * np.abs(w_np)), 0.0)
        on = np.abs(g + deriv * np.sign(w_np))
        off = np.maximum(np.abs(g) - a * r2a, 0.0)
        return np.where(w_np != 0, on, off)

    def alpha_max(self, grad: Any, step: float = 1.0) -> float:
        """Smallest ``alpha`` for which zero is a prox-gradient fixed point.

        Parameters
        ----------
        grad : array
            Gradient of the smooth part at zero.
        step : float, default=1.0
            Step of the prox-gradient map.

        Returns
        -------
        alpha_max : float
            ``max_j grad_j^2 / (2 a_j^2)`` where ``step a_j^2 < 1``, ``step grad_j^2 / 2``
            where the prox is a hard threshold.
        """
        g = np.abs(np.asarray(grad, dtype=np.float64))
        a = np.broadcast_to(self._a(), g.shape)
        with np.errstate(divide="ignore"):
            soft = np.where(a > 0, g**2 / (2.0 * a**2), np.where(g > 0, np.inf, 0.0))
        hard = step * g**2 / 2.0
        return float(np.max(np.where(step * a**2 < 1.0, soft, hard)))

    def kernel_spec(self) -> tuple[int, float, float, Any]:
        """Code and parameters handed to the coordinate-descent kernels.

        Returns
        -------
        parameters : tuple
            ``(code, alpha, q, atom_norms)`` (``q`` unused; the atom norms or None).
        """
        a = None if self.atom_norms is None else self._a()
        return PENALTY_CODES["cel0"], _check_alpha(self.alpha), 0.5, a


class GroupL1(Penalty):
    """The group-lasso penalty ``alpha * sum_g ||w_g||_2`` over groups of the last axis.

    Parameters
    ----------
    alpha : float, default=1.0
        Penalty weight, non-negative.
    groups : array-like of int of shape (n_features,) or None, default=None
        Group label of each coordinate; None puts every coordinate in its own group (l1).

    Attributes
    ----------
    is_convex : bool
        True.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.penalties import GroupL1
    >>> pen = GroupL1(alpha=1.0, groups=[0, 0, 1])
    >>> pen.value(np.array([3.0, 4.0, -1.0]))
    6.0
    """

    is_convex = True

    def __init__(self, alpha: float = 1.0, groups: Any = None):
        self.alpha = alpha
        self.groups = groups

    def _groups(self, p: int) -> np.ndarray:
        if self.groups is None:
            return np.arange(p)
        g = np.asarray(self.groups)
        if g.shape != (p,):
            raise ValueError(f"groups must have shape ({p},) to match w; got {g.shape}")
        return g

    def _group_norms(self, v: Any) -> np.ndarray:
        v_np = np.abs(np.asarray(v))
        g = self._groups(v_np.shape[-1])
        onehot = (g[:, None] == np.arange(int(g.max()) + 1)[None, :]).astype(np.float64)
        return np.sqrt((v_np**2) @ onehot)  # type: ignore[no-any-return]

    def value(self, w: Any) -> float:
        """Return ``alpha * sum_g ||w_g||``.

        Parameters
        ----------
        w : array
            Coefficients (groups along the last axis).

        Returns
        -------
        value : float
            The penalty value.
        """
        return _check_alpha(self.alpha) * float(np.sum(self._group_norms(w)))

    def prox(self, z: Any, step: Any = 1.0) -> Any:
        """Group soft thresholding at ``step * alpha``.

        Parameters
        ----------
        z : array
            Point at which the prox is taken.
        step : float or array, default=1.0
            Step size (positive).

        Returns
        -------
        x : array
            The prox.
        """
        _check_step(step)
        return prox_group_l1(z, step * _check_alpha(self.alpha), self._groups(z.shape[-1]))

    def subdiff_distance(self, w: Any, grad: Any) -> Any:
        """Per-group distance of ``-grad`` to ``alpha * d||w_g||``.

        Parameters
        ----------
        w : array of shape (n_features,)
            Coefficients.
        grad : array of shape (n_features,)
            Gradient of the smooth part at ``w``.

        Returns
        -------
        dist : ndarray of shape (n_groups,)
            ``||grad_g + alpha w_g / ||w_g||||`` on active groups, ``max(||grad_g|| - alpha, 0)``
            on inactive ones.
        """
        a = _check_alpha(self.alpha)
        w_np = np.asarray(w, dtype=np.float64)
        g_np = np.asarray(grad, dtype=np.float64)
        labels = self._groups(w_np.shape[-1])
        wn = self._group_norms(w_np)
        gn = self._group_norms(g_np)
        safe = np.where(wn > 0, wn, 1.0)
        on = self._group_norms(g_np + a * w_np / safe[labels])
        return np.where(wn > 0, on, np.maximum(gn - a, 0.0))

    def alpha_max(self, grad: Any, step: float = 1.0) -> float:
        """The largest group norm of ``grad``.

        Parameters
        ----------
        grad : array
            Gradient of the smooth part at zero.
        step : float, default=1.0
            Unused for this convex penalty; kept for a common signature.

        Returns
        -------
        alpha_max : float
            The smallest alpha giving the all-zero solution.
        """
        return float(np.max(self._group_norms(grad)))


_BY_NAME = {
    "l1": L1,
    "l0": L0,
    "l1/2": L1_2,
    "l1_2": L1_2,
    "lq": Lq,
    "cel0": CEL0,
    "group_l1": GroupL1,
}


def make_penalty(penalty: Any, alpha: float = 1.0, q: float = 0.5, **kwargs: Any) -> Penalty:
    """Turn a penalty name (or a :class:`Penalty`) into a penalty object.

    Parameters
    ----------
    penalty : {"l1", "l0", "l1/2", "l1_2", "lq", "cel0", "group_l1"} or Penalty
        Name of the penalty (``"l1_2"`` is another spelling of ``"l1/2"``, after the class
        :class:`L1_2`), or a penalty object (returned unchanged).
    alpha : float, default=1.0
        Penalty weight used when ``penalty`` is a name.
    q : float, default=0.5
        Exponent used for ``"lq"``.
    **kwargs : dict
        Extra constructor arguments (``atom_norms`` for CEL0, ``groups`` for GroupL1).

    Returns
    -------
    penalty : Penalty
        The penalty object.

    Examples
    --------
    >>> from sparsestat.penalties import make_penalty
    >>> make_penalty("lq", alpha=0.1, q=0.3)
    Lq(alpha=0.1, q=0.3)
    """
    if isinstance(penalty, Penalty):
        return penalty
    if penalty not in _BY_NAME:
        raise ValueError(f"penalty must be one of {sorted(_BY_NAME)} or a Penalty; got {penalty!r}")
    cls = _BY_NAME[penalty]
    params: dict[str, Any] = {"alpha": alpha, **kwargs}
    if cls is Lq:
        params["q"] = q
    return cls(**params)  # type: ignore[no-any-return]
