"""Proximal operators, elementwise or per group, with Numba and generic array-API versions.

Each public function ``prox_*(z, ...)`` returns ``argmin_x 1/2 (x - z)^2 + h(x)`` applied to
every entry of ``z`` (any shape), as a new array of the same library and dtype. ``t`` is the
product of the step and the penalty weight; it may be a scalar or an array that broadcasts
against ``z``. NumPy input runs through a Numba loop, other libraries (CuPy, torch) through the
generic array-API code; both are registered in :mod:`sparsestat._kernels._dispatch`.

The operators: soft thresholding (l1), hard
thresholding (l0, threshold sqrt(2t), ties to zero), half thresholding (l1/2, Xu et al. 2012,
threshold (3/2) t^(2/3)), general lq for 0 < q < 1 (Marjanovic and Solo 2012, Newton on the
largest root), CEL0 (Soubies, Blanc-Feraud and Aubert 2015, with per-atom norms), group soft
thresholding (l2,1) and the top-k projections.

The scalar Numba functions ``prox_*_scalar`` are meant for other Numba kernels (coordinate
descent) that apply one prox at a time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import device as array_device
from numba import njit

from sparsestat._kernels._dispatch import get_kernel, get_namespace, register

__all__ = [
    "lq_threshold",
    "prox_cel0_scalar",
    "prox_half_scalar",
    "prox_l0_scalar",
    "prox_l1_scalar",
    "prox_lq_scalar",
    "project_abs_topk",
    "project_topk",
    "prox_cel0",
    "prox_group_l1",
    "prox_l0",
    "prox_l1",
    "prox_l1_2",
    "prox_lq",
]

_LQ_NEWTON_ITERS = 30


# ----------------------------------------------------------------------------- closed forms
def lq_threshold(t: Any, q: float) -> tuple[Any, Any]:
    """Threshold tau_q and jump x_j of the lq prox (Marjanovic and Solo 2012).

    For ``prox of t|x|^q``, the result is zero when ``|z| <= tau_q`` and at least ``x_j`` in
    magnitude otherwise: ``tau_q = (2 - q) / (2 (1 - q)) * (2 t (1 - q))^(1 / (2 - q))`` and
    ``x_j = (2 t (1 - q))^(1 / (2 - q))``. For ``q = 1`` both reduce to ``(t, 0)``.

    Parameters
    ----------
    t : float or ndarray
        Step times penalty weight (non-negative).
    q : float
        Exponent in (0, 1].

    Returns
    -------
    tau : float or ndarray
        The threshold.
    jump : float or ndarray
        The smallest nonzero magnitude of the prox.

    Examples
    --------
    >>> from sparsestat._kernels.prox import lq_threshold
    >>> tau, jump = lq_threshold(1.0, 0.5)
    >>> round(float(tau), 12)  # equals (3/2) t^(2/3) for q = 1/2
    1.5
    """
    if q == 1.0:
        return t, 0.0 * t
    jump = (2.0 * t * (1.0 - q)) ** (1.0 / (2.0 - q))
    return (2.0 - q) / (2.0 * (1.0 - q)) * jump, jump


# ----------------------------------------------------------------------------- Numba scalars
@njit(cache=True)
def prox_l1_scalar(z: Any, t: float) -> Any:  # pragma: no cover - compiled
    a = abs(z)
    if a <= t:
        return z - z  # a zero of z's type, without the sign of z
    return z * (1.0 - t / a)


@njit(cache=True)
def prox_l0_scalar(z: Any, t: float) -> Any:  # pragma: no cover - compiled
    if abs(z) > math.sqrt(2.0 * t):
        return z
    return z - z


@njit(cache=True)
def _half_given_threshold(z: float, t: float, thr: float) -> float:  # pragma: no cover
    a = abs(z)
    if t <= 0.0:
        return z
    if a <= thr:
        return 0.0
    # (t / 4) (a / 3)^(-3/2) with a square root instead of a power (3 sqrt(3) / 4 = c0 / t)
    c = 1.299038105676658 * t / (a * math.sqrt(a))
    if c > 1.0:
        c = 1.0
    phi = math.acos(c)
    return (2.0 / 3.0) * z * (1.0 + math.cos(2.0 * math.pi / 3.0 - (2.0 / 3.0) * phi))


@njit(cache=True)
def prox_half_scalar(z: float, t: float) -> float:  # pragma: no cover - compiled
    return _half_given_threshold(z, t, 1.5 * t ** (2.0 / 3.0))


@njit(cache=True)
def _lq_newton(a: float, t: float, q: float, jump: float) -> float:  # pragma: no cover
    """Largest root of ``x + t q x^(q-1) = a`` in ``[jump, a]`` (Newton from ``a``)."""
    x = a
    tq = t * q
    tqq = tq * (q - 1.0)
    for _ in range(_LQ_NEWTON_ITERS):
        p = x ** (q - 1.0)  # one power per step: x^(q-2) = p / x
        x_new = x - (x + tq * p - a) / (1.0 + tqq * p / x)
        if x_new < jump:
            x_new = jump
        if abs(x_new - x) <= 1e-12 * a:
            return x_new
        x = x_new
    return x


@njit(cache=True)
def prox_lq_scalar(z: float, t: float, q: float) -> float:  # pragma: no cover - compiled
    a = abs(z)
    if t <= 0.0:
        return z
    if q >= 1.0:
        return prox_l1_scalar(z, t)
    jump = (2.0 * t * (1.0 - q)) ** (1.0 / (2.0 - q))
    tau = (2.0 - q) / (2.0 * (1.0 - q)) * jump
    if a <= tau:
        return 0.0
    # Newton on g(x) = x + t q x^(q-1) - a from x0 = a: convex increasing on [jump, a].
    return math.copysign(_lq_newton(a, t, q, jump), z)


@njit(cache=True)
def prox_cel0_scalar(z: float, alpha: float, gamma: float, a: float) -> float:  # pragma: no cover
    az = abs(z)
    ga2 = gamma * a * a  # one rounding for both the branch test and the divisor
    if ga2 >= 1.0:
        if az > math.sqrt(2.0 * alpha * gamma):
            return z
        return 0.0
    shrunk = az - math.sqrt(2.0 * alpha) * a * gamma
    if shrunk < 0.0:
        shrunk = 0.0
    shrunk /= 1.0 - ga2
    if shrunk > az:
        shrunk = az
    return math.copysign(shrunk, z)


# ----------------------------------------------------------------------------- Numba loops
# One threshold for the whole array is the common case (a scalar step times a scalar weight):
# it gets a loop of its own with every constant hoisted, branch-free where the operator allows
# it, so that LLVM vectorises it; per-entry parameters take the general loop.
@njit(cache=True)
def _nb_l1(z: Any, t: Any) -> Any:  # pragma: no cover - compiled
    out = np.empty_like(z)
    nt = t.size
    if nt == 1:
        ts = t[0]
        for i in range(z.size):
            out[i] = prox_l1_scalar(z[i], ts)
        return out
    for i in range(z.size):
        out[i] = prox_l1_scalar(z[i], t[i])
    return out


@njit(cache=True)
def _nb_l1_real(z: Any, t: float) -> Any:  # pragma: no cover - compiled
    out = np.empty_like(z)
    for i in range(z.size):
        zi = z[i]
        out[i] = zi - t if zi > t else (zi + t if zi < -t else zi - zi)
    return out


@njit(cache=True)
def _nb_l0(z: Any, t: Any) -> Any:  # pragma: no cover - compiled
    out = np.empty_like(z)
    nt = t.size
    if nt == 1:
        thr = math.sqrt(2.0 * t[0])
        for i in range(z.size):
            zi = z[i]
            out[i] = zi if abs(zi) > thr else zi - zi
        return out
    for i in range(z.size):
        out[i] = prox_l0_scalar(z[i], t[i])
    return out


@njit(cache=True)
def _nb_half(z: Any, t: Any) -> Any:  # pragma: no cover - compiled
    out = np.empty_like(z)
    nt = t.size
    if nt == 1:  # one threshold for the whole array: t^(2/3) once
        thr = 1.5 * t[0] ** (2.0 / 3.0)
        for i in range(z.size):
            out[i] = _half_given_threshold(z[i], t[0], thr)
        return out
    for i in range(z.size):
        out[i] = prox_half_scalar(z[i], t[i])
    return out


_LQ_BLOCK = 256


@njit(cache=True)
def _nb_lq_scalar_t(z: Any, t: float, q: float) -> Any:  # pragma: no cover - compiled
    """lq prox with one ``t``: Newton in lockstep on blocks of the entries above the threshold.

    The entries of a block are independent, so their power evaluations overlap in the CPU
    pipeline instead of waiting on each other (a per-entry loop is latency-bound); a block
    stops when its largest relative step is at most 1e-12.
    """
    out = np.zeros_like(z)
    if t <= 0.0:
        out[:] = z
        return out
    jump = (2.0 * t * (1.0 - q)) ** (1.0 / (2.0 - q))
    tau = (2.0 - q) / (2.0 * (1.0 - q)) * jump
    tq = t * q
    tqq = tq * (q - 1.0)
    qm = q - 1.0
    idx = np.empty(_LQ_BLOCK, np.int64)
    x = np.empty(_LQ_BLOCK)
    a = np.empty(_LQ_BLOCK)
    n = z.size
    i = 0
    while i < n:
        m = 0
        while i < n and m < _LQ_BLOCK:
            ai = abs(z[i])
            if ai > tau:
                idx[m] = i
                a[m] = ai
                x[m] = ai
                m += 1
            i += 1
        for _ in range(_LQ_NEWTON_ITERS):
            worst = 0.0
            for j in range(m):
                xj = x[j]
                p = math.exp(qm * math.log(xj))
                x_new = xj - (xj + tq * p - a[j]) / (1.0 + tqq * p / xj)
                if x_new < jump:
                    x_new = jump
                step = abs(x_new - xj) / a[j]
                if step > worst:
                    worst = step
                x[j] = x_new
            if worst <= 1e-12:
                break
        for j in range(m):
            out[idx[j]] = math.copysign(x[j], z[idx[j]])
    return out


@njit(cache=True)
def _nb_lq(z: Any, t: Any, q: float) -> Any:  # pragma: no cover - compiled
    if q < 1.0 and t.size == 1:
        return _nb_lq_scalar_t(z, t[0], q)
    out = np.empty_like(z)
    nt = t.size
    for i in range(z.size):
        out[i] = prox_lq_scalar(z[i], t[i if nt > 1 else 0], q)
    return out


@njit(cache=True)
def _nb_cel0(z: Any, alpha: Any, gamma: Any, a: Any) -> Any:  # pragma: no cover - compiled
    out = np.empty_like(z)
    nal, nga, na = alpha.size, gamma.size, a.size
    if nal == 1 and nga == 1 and na == 1 and gamma[0] * a[0] * a[0] < 1.0:
        # one soft-type branch for the whole array: sign(z) min(|z|, (|z| - s)_+ / (1 - g a^2))
        g, aa = gamma[0], a[0]
        shift = math.sqrt(2.0 * alpha[0]) * aa * g
        scale = 1.0 / (1.0 - g * aa * aa)
        for i in range(z.size):
            zi = z[i]
            az = abs(zi)
            sh = (az - shift) * scale
            sh = 0.0 if sh < 0.0 else sh
            sh = az if sh > az else sh
            out[i] = sh if zi >= 0.0 else -sh
        return out
    for i in range(z.size):
        out[i] = prox_cel0_scalar(
            z[i], alpha[i if nal > 1 else 0], gamma[i if nga > 1 else 0], a[i if na > 1 else 0]
        )
    return out


@njit(cache=True)
def _nb_group(z: Any, t: Any, groups: Any, n_groups: int) -> Any:  # pragma: no cover
    # z: (n_rows, p) ; groups: (p,) labels in [0, n_groups) ; t: (n_rows or 1,)
    n_rows, p = z.shape
    out = np.empty_like(z)
    norms = np.zeros(n_groups)
    nt = t.size
    for r in range(n_rows):
        norms[:] = 0.0
        for j in range(p):
            v = z[r, j]
            norms[groups[j]] += (v * np.conj(v)).real  # |v|^2 without a power
        tr = t[r if nt > 1 else 0]
        for g in range(n_groups):
            nrm = math.sqrt(norms[g])
            norms[g] = 0.0 if nrm <= tr else 1.0 - tr / nrm
        for j in range(p):
            out[r, j] = z[r, j] * norms[groups[j]]
    return out


@njit(cache=True)
def _nb_group_runs(z: Any, t: Any, starts: Any) -> Any:  # pragma: no cover - compiled
    # groups that are contiguous runs of the last axis (the usual layout): one fused pass per
    # run, no label indirection; starts: (n_runs + 1,) run boundaries
    n_rows, p = z.shape
    out = np.empty_like(z)
    nt = t.size
    for r in range(n_rows):
        tr = t[r if nt > 1 else 0]
        for g in range(starts.size - 1):
            lo, hi = starts[g], starts[g + 1]
            sq = 0.0
            for j in range(lo, hi):
                v = z[r, j]
                sq += (v * np.conj(v)).real
            nrm = math.sqrt(sq)
            scale = 0.0 if nrm <= tr else 1.0 - tr / nrm
            for j in range(lo, hi):
                out[r, j] = z[r, j] * scale
    return out


@njit(cache=True)
def _nb_topk(z: Any, k: int, use_abs: bool) -> Any:  # pragma: no cover - compiled
    # O(p) per row: the k-th largest key by selection, then every key above it and the first
    # (in position order) of the keys equal to it, so exactly k entries are kept. Small k
    # keeps a sorted buffer of the k largest keys (one comparison for most entries); large k
    # partitions a reused buffer.
    n_rows, p = z.shape
    out = np.zeros_like(z)
    if k <= 0:
        return out
    key = np.empty(p)
    top = np.empty(k)
    small = k <= 64
    for r in range(n_rows):
        for j in range(p):
            key[j] = abs(z[r, j]) if use_abs else z[r, j].real
        if small:
            for j in range(k):
                top[j] = -np.inf
            for j in range(p):
                v = key[j]
                if v > top[k - 1]:  # insert into the descending buffer
                    pos = k - 1
                    while pos > 0 and top[pos - 1] < v:
                        top[pos] = top[pos - 1]
                        pos -= 1
                    top[pos] = v
            thr = top[k - 1]
        else:
            thr = np.partition(key, p - k)[p - k]
        n_above = 0
        for j in range(p):
            if key[j] > thr:
                out[r, j] = z[r, j]
                n_above += 1
        n_ties = k - n_above
        for j in range(p):
            if n_ties == 0:
                break
            if key[j] == thr:
                out[r, j] = z[r, j]
                n_ties -= 1
    return out


# ----------------------------------------------------------------------------- helpers
def _as_param(value: Any, like: np.ndarray, name: str) -> np.ndarray:
    """Broadcast a scalar/array parameter for the flat Numba loops (size 1 or z.size)."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 1:
        return arr.reshape(1)
    try:
        return np.ascontiguousarray(np.broadcast_to(arr, like.shape)).ravel()
    except ValueError:
        raise ValueError(
            f"{name} with shape {arr.shape} does not broadcast against z with shape {like.shape}"
        ) from None


def _flat_call(kernel: Any, z: np.ndarray, *params: Any) -> np.ndarray:
    z = np.asarray(z)
    if z.dtype.kind not in "fc":
        z = z.astype(np.float64)
    zc = np.ascontiguousarray(z)
    return kernel(zc.ravel(), *params).reshape(z.shape)


def _param(xp: Any, value: Any, z: Any) -> Any:
    """A parameter for the generic kernels: Python scalars as they are (they keep the dtype of
    ``z``), arrays converted to the library, device and real precision of ``z``."""
    if isinstance(value, int | float) or np.ndim(value) == 0 and not hasattr(value, "device"):
        return float(value)
    dtype = z.dtype
    if xp.isdtype(dtype, "complex floating"):
        dtype = xp.float32 if dtype == xp.complex64 else xp.float64
    if type(value).__module__.split(".")[0] not in ("numpy", type(z).__module__.split(".")[0]):
        value = np.asarray(value)
    return xp.asarray(value, dtype=dtype, device=array_device(z))


def _real_only(z: Any, name: str) -> None:
    if getattr(z, "dtype", None) is not None and "complex" in str(z.dtype):
        raise TypeError(f"{name} is defined for real input only; got dtype {z.dtype}")


# ----------------------------------------------------------------------------- l1
@register("prox_l1", "generic")
def _prox_l1_generic(z: Any, t: Any) -> Any:
    xp = get_namespace(z)
    t = _param(xp, t, z)
    a = xp.abs(z)
    safe = xp.where(a > 0, a, xp.ones_like(a))
    return xp.where(a > t, z * (1.0 - t / safe), xp.zeros_like(z))


@register("prox_l1", "numba")
def _prox_l1_numba(z: Any, t: Any) -> Any:
    zz = np.asarray(z)
    tt = _as_param(t, zz, "t")
    if tt.size == 1 and zz.dtype.kind == "f":
        return _flat_call(_nb_l1_real, zz, float(tt[0]))
    return _flat_call(_nb_l1, zz, tt)


def prox_l1(z: Any, t: Any) -> Any:
    """Soft thresholding, the prox of ``t * |x|`` (complex input shrinks the modulus).

    Parameters
    ----------
    z : array
        Input (NumPy, CuPy or torch), real or complex.
    t : float or array
        Threshold, broadcastable against ``z``.

    Returns
    -------
    x : array
        ``z * max(1 - t / |z|, 0)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.prox import prox_l1
    >>> prox_l1(np.array([-2.0, 0.5, 3.0]), 1.0)
    array([-1.,  0.,  2.])
    """
    return get_kernel("prox_l1", z)(z, t)


# ----------------------------------------------------------------------------- l0
@register("prox_l0", "generic")
def _prox_l0_generic(z: Any, t: Any) -> Any:
    xp = get_namespace(z)
    t = _param(xp, t, z)
    thr = (2.0 * t) ** 0.5
    return xp.where(xp.abs(z) > thr, z, xp.zeros_like(z))


@register("prox_l0", "numba")
def _prox_l0_numba(z: Any, t: Any) -> Any:
    return _flat_call(_nb_l0, z, _as_param(t, np.asarray(z), "t"))


def prox_l0(z: Any, t: Any) -> Any:
    """Hard thresholding, the prox of ``t * 1[x != 0]``: keeps ``z`` where ``|z| > sqrt(2 t)``.

    Ties (``|z| == sqrt(2 t)``) go to zero.

    Parameters
    ----------
    z : array
        Input, real or complex.
    t : float or array
        Step times penalty weight, broadcastable against ``z``.

    Returns
    -------
    x : array
        The hard-thresholded input.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.prox import prox_l0
    >>> prox_l0(np.array([-2.0, 1.0, 1.5]), 0.5)  # threshold 1
    array([-2. ,  0. ,  1.5])
    """
    return get_kernel("prox_l0", z)(z, t)


# ----------------------------------------------------------------------------- l1/2
@register("prox_l1_2", "generic")
def _prox_l1_2_generic(z: Any, t: Any) -> Any:
    xp = get_namespace(z)
    t = _param(xp, t, z)
    a = xp.abs(z)
    thr = 1.5 * t ** (2.0 / 3.0)
    keep = a > thr
    safe = xp.where(keep, a, xp.ones_like(a) * 3.0)
    c = xp.clip((t / 4.0) * (safe / 3.0) ** (-1.5), -1.0, 1.0)
    phi = xp.acos(c)
    val = (2.0 / 3.0) * z * (1.0 + xp.cos(2.0 * math.pi / 3.0 - (2.0 / 3.0) * phi))
    return xp.where(keep, val, xp.zeros_like(z))


@register("prox_l1_2", "numba")
def _prox_l1_2_numba(z: Any, t: Any) -> Any:
    return _flat_call(_nb_half, z, _as_param(t, np.asarray(z), "t"))


def prox_l1_2(z: Any, t: Any) -> Any:
    """Half thresholding, the prox of ``t * |x|^(1/2)`` (Xu et al. 2012).

    Zero when ``|z| <= (3/2) t^(2/3)``; otherwise
    ``(2/3) z (1 + cos(2 pi / 3 - (2/3) phi))`` with
    ``phi = arccos((t / 4) (|z| / 3)^(-3/2))``.

    Parameters
    ----------
    z : array
        Real input.
    t : float or array
        Step times penalty weight, broadcastable against ``z``.

    Returns
    -------
    x : array
        The half-thresholded input.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.prox import prox_l1_2
    >>> prox_l1_2(np.array([1.0, 4.0]), 1.0).round(6)
    array([0.      , 3.741508])
    """
    _real_only(z, "prox_l1_2")
    return get_kernel("prox_l1_2", z)(z, t)


# ----------------------------------------------------------------------------- lq
@register("prox_lq", "generic")
def _prox_lq_generic(z: Any, t: Any, q: float) -> Any:
    xp = get_namespace(z)
    t = _param(xp, t, z)
    if q >= 1.0:
        return _prox_l1_generic(z, t)
    a = xp.abs(z)
    tau, jump = lq_threshold(t, q)
    keep = a > tau
    x = xp.where(keep, a, xp.ones_like(a))
    jump_b = xp.where(keep, jump * xp.ones_like(a), xp.zeros_like(a))
    for _ in range(_LQ_NEWTON_ITERS):
        g = x + t * q * x ** (q - 1.0) - xp.where(keep, a, xp.ones_like(a))
        dg = 1.0 + t * q * (q - 1.0) * x ** (q - 2.0)
        x = xp.maximum(x - g / dg, jump_b)
    return xp.where(keep, xp.sign(z) * x, xp.zeros_like(z))


@register("prox_lq", "numba")
def _prox_lq_numba(z: Any, t: Any, q: float) -> Any:
    return _flat_call(_nb_lq, z, _as_param(t, np.asarray(z), "t"), float(q))


def prox_lq(z: Any, t: Any, q: float) -> Any:
    """The prox of ``t * |x|^q`` for ``0 < q <= 1`` (Marjanovic and Solo 2012).

    Zero when ``|z| <= tau_q`` (see :func:`lq_threshold`); otherwise ``sign(z) x*`` with
    ``x*`` the largest root of ``x + t q x^(q-1) = |z|``, found by Newton's method from
    ``|z|`` (monotone on that branch) and clipped at the jump ``x_j``. ``q = 1`` is soft
    thresholding; ``q = 1/2`` equals :func:`prox_l1_2`.

    Parameters
    ----------
    z : array
        Real input.
    t : float or array
        Step times penalty weight, broadcastable against ``z``.
    q : float
        Exponent in (0, 1].

    Returns
    -------
    x : array
        The thresholded input.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.prox import prox_lq, prox_l1_2
    >>> z = np.array([1.0, 2.0, 4.0])
    >>> bool(np.allclose(prox_lq(z, 1.0, 0.5), prox_l1_2(z, 1.0)))
    True
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q must be in (0, 1]; got {q!r}")
    _real_only(z, "prox_lq")
    return get_kernel("prox_lq", z)(z, t, q)


# ----------------------------------------------------------------------------- CEL0
@register("prox_cel0", "generic")
def _prox_cel0_generic(z: Any, alpha: Any, gamma: Any, a: Any) -> Any:
    xp = get_namespace(z)
    alpha, gamma, a = (_param(xp, v, z) for v in (alpha, gamma, a))
    az = xp.abs(z)
    zero = xp.zeros_like(z)
    ga2 = gamma * a * a
    hard = xp.where(az > (2.0 * alpha * gamma) ** 0.5, z, zero)
    shift = (2.0 * alpha) ** 0.5 * a * gamma
    if isinstance(ga2, float):  # one branch for the whole array
        if ga2 >= 1.0:
            return hard
        return xp.sign(z) * xp.minimum(az, xp.maximum(az - shift, zero) / (1.0 - ga2))
    denom = xp.where(ga2 < 1.0, 1.0 - ga2, xp.ones_like(ga2 + az))
    shrunk = xp.minimum(az, xp.maximum(az - shift, zero) / denom)
    return xp.where(ga2 >= 1.0, hard, xp.sign(z) * shrunk)


@register("prox_cel0", "numba")
def _prox_cel0_numba(z: Any, alpha: Any, gamma: Any, a: Any) -> Any:
    zz = np.asarray(z)
    return _flat_call(
        _nb_cel0,
        zz,
        _as_param(alpha, zz, "alpha"),
        _as_param(gamma, zz, "gamma"),
        _as_param(a, zz, "a"),
    )


def prox_cel0(z: Any, alpha: Any, gamma: Any, a: Any) -> Any:
    """The prox of ``gamma * phi_CEL0`` with weight ``alpha`` and atom norm ``a``.

    ``phi(x) = alpha - (a^2 / 2) (|x| - sqrt(2 alpha) / a)^2`` for ``|x| <= sqrt(2 alpha) / a``
    and ``alpha`` beyond (Soubies, Blanc-Feraud and Aubert 2015). When ``gamma a^2 < 1`` the
    prox is ``sign(z) min(|z|, max(|z| - sqrt(2 alpha) a gamma, 0) / (1 - a^2 gamma))``; when
    ``gamma a^2 >= 1`` it is the hard threshold at ``sqrt(2 alpha gamma)``.

    Parameters
    ----------
    z : array
        Real input.
    alpha : float or array
        Penalty weight.
    gamma : float or array
        Step size.
    a : float or array
        Atom (column) norms, broadcastable against ``z`` (typically along the last axis).

    Returns
    -------
    x : array
        The thresholded input.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.prox import prox_cel0
    >>> prox_cel0(np.array([0.5, 3.0]), alpha=0.5, gamma=0.5, a=1.0)
    array([0., 3.])
    """
    _real_only(z, "prox_cel0")
    return get_kernel("prox_cel0", z)(z, alpha, gamma, a)


# ----------------------------------------------------------------------------- group l1
def _check_groups(groups: Any, p: int) -> tuple[np.ndarray, int]:
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != p:
        raise ValueError(f"groups must be a 1-D array of length {p} (the last axis of z)")
    if g.dtype.kind not in "iu" or (g.size and g.min() < 0):
        raise ValueError("groups must hold non-negative integer labels")
    return g.astype(np.int64), int(g.max()) + 1 if g.size else 0


@register("prox_group_l1", "generic")
def _prox_group_l1_generic(z: Any, t: Any, groups: Any) -> Any:
    xp = get_namespace(z)
    t = _param(xp, t, z)
    if not isinstance(t, float):
        t = xp.reshape(t, (*z.shape[:-1], 1))  # one threshold per leading index
    g, n_groups = _check_groups(groups, z.shape[-1])
    onehot_np = (g[:, None] == np.arange(n_groups)[None, :]).astype(np.float64)
    absz = xp.abs(z)
    onehot = xp.asarray(onehot_np, dtype=absz.dtype, device=array_device(z))
    norms = (absz * absz) @ onehot
    norms = norms**0.5
    safe = xp.where(norms > 0, norms, xp.ones_like(norms))
    scale = xp.where(norms > t, 1.0 - t / safe, xp.zeros_like(norms))
    return z * (scale @ xp.permute_dims(onehot, (1, 0)))


@register("prox_group_l1", "numba")
def _prox_group_l1_numba(z: Any, t: Any, groups: Any) -> Any:
    zz = np.asarray(z)
    if zz.dtype.kind not in "fc":
        zz = zz.astype(np.float64)
    g, n_groups = _check_groups(groups, zz.shape[-1])
    z2 = np.ascontiguousarray(zz.reshape(-1, zz.shape[-1]))
    tt = np.asarray(t, dtype=np.float64)
    if tt.size == 1:
        tt = tt.reshape(1)
    else:
        tt = np.ascontiguousarray(np.broadcast_to(tt, zz.shape[:-1])).ravel()
    change = np.flatnonzero(np.diff(g)) + 1
    if g.size and np.unique(g).size == change.size + 1:  # every group is one contiguous run
        starts = np.concatenate([[0], change, [g.size]]).astype(np.int64)
        return _nb_group_runs(z2, tt, starts).reshape(zz.shape)
    return _nb_group(z2, tt, g, n_groups).reshape(zz.shape)


def prox_group_l1(z: Any, t: Any, groups: Any) -> Any:
    """Group soft thresholding, the prox of ``t * sum_g ||x_g||_2`` along the last axis.

    Parameters
    ----------
    z : array of shape (..., p)
        Input, real or complex.
    t : float or array
        Threshold; a scalar or one value per leading index (shape ``z.shape[:-1]``).
    groups : array of int of shape (p,)
        Group label of each coordinate of the last axis.

    Returns
    -------
    x : array
        Each group scaled by ``max(1 - t / ||z_g||, 0)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.prox import prox_group_l1
    >>> prox_group_l1(np.array([3.0, 4.0, 0.1]), 1.0, np.array([0, 0, 1]))
    array([2.4, 3.2, 0. ])
    """
    return get_kernel("prox_group_l1", z)(z, t, groups)


# ----------------------------------------------------------------------------- top-k
def _check_k(k: Any, p: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k must be a non-negative integer; got {k!r}")
    return min(int(k), p)


def _topk_generic(z: Any, k: int, use_abs: bool) -> Any:
    xp = get_namespace(z)
    key = -xp.abs(z) if use_abs else -z
    order = xp.argsort(key, axis=-1, stable=True)
    ranks = xp.argsort(order, axis=-1, stable=True)
    return xp.where(ranks < k, z, xp.zeros_like(z))


def _topk_numba(z: Any, k: int, use_abs: bool) -> Any:
    zz = np.asarray(z)
    if zz.dtype.kind not in "fc":
        zz = zz.astype(np.float64)
    z2 = np.ascontiguousarray(zz.reshape(-1, zz.shape[-1]))
    return _nb_topk(z2, k, use_abs).reshape(zz.shape)


register("project_topk", "generic")(lambda z, k: _topk_generic(z, k, False))
register("project_topk", "numba")(lambda z, k: _topk_numba(z, k, False))
register("project_abs_topk", "generic")(lambda z, k: _topk_generic(z, k, True))
register("project_abs_topk", "numba")(lambda z, k: _topk_numba(z, k, True))


def project_topk(z: Any, k: int) -> Any:
    """Keep the ``k`` largest values along the last axis and zero the rest.

    Ties are broken by position (the earlier entry wins), so exactly ``min(k, p)`` entries
    per row are kept.

    Parameters
    ----------
    z : array of shape (..., p)
        Real input.
    k : int
        Number of entries kept per row.

    Returns
    -------
    x : array
        ``z`` with all but the ``k`` largest entries of each row set to zero.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.prox import project_topk
    >>> project_topk(np.array([[3.0, -5.0, 1.0, 2.0]]), 2)
    array([[3., 0., 0., 2.]])
    """
    _real_only(z, "project_topk")
    return get_kernel("project_topk", z)(z, _check_k(k, z.shape[-1]))


def project_abs_topk(z: Any, k: int) -> Any:
    """Keep the ``k`` entries of largest magnitude along the last axis, zero the rest.

    This is the Euclidean projection onto k-sparse vectors (the IHT step).

    Parameters
    ----------
    z : array of shape (..., p)
        Input, real or complex.
    k : int
        Number of entries kept per row.

    Returns
    -------
    x : array
        ``z`` with all but its ``k`` largest-magnitude entries per row set to zero.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat._kernels.prox import project_abs_topk
    >>> project_abs_topk(np.array([3.0, -5.0, 1.0, 2.0]), 2)
    array([ 3., -5.,  0.,  0.])
    """
    return get_kernel("project_abs_topk", z)(z, _check_k(k, z.shape[-1]))
