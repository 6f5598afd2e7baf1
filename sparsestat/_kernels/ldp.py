"""Kernels for local differential privacy: per-user statistics, exact aggregation, samplers' cores.

Everything here is vectorised over users (the first axis) and written against the array API,
so it runs on NumPy, CuPy and PyTorch alike. The kernels take their random numbers as
inputs (the privacy mechanisms in :mod:`sparsestat.privacy.mechanisms` draw them and pass
them in), which keeps the maps from randomness to output deterministic and auditable (the
privacy tests enumerate them exhaustively for small dimensions). The one exception,
:func:`keyed_gaussian_report_sums`, takes the *keys* of the users' NumPy noise streams
instead and draws exactly those numbers itself (:mod:`sparsestat._kernels.sfc64`), so that
the noise of millions of users is never stored; its generic version draws them with NumPy.

Exact aggregation
-----------------
User reports are summed in fixed point: each report is rounded to a grid of spacing
``unit`` (a power of two chosen from public quantities only; rounding is post-processing, so
it costs no privacy), and the integers are accumulated in two int64 limbs,
``value = hi * 2**31 + lo`` with ``0 <= lo < 2**31``. Integer addition is associative, so
sums over users come out bit-for-bit the same in any order and any partition into batches,
machines or dask chunks.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
from numba import njit

from sparsestat._kernels._dispatch import get_kernel, get_namespace, register
from sparsestat._kernels.sfc64 import fill_normals, seed_states

__all__ = [
    "GRID_BITS",
    "LIMB_BITS",
    "coordinate_rr_core",
    "duchi_core",
    "exact_accumulate",
    "exact_to_float",
    "floored_solve",
    "gaussian_report_sums",
    "gaussian_reports",
    "grid_unit",
    "keyed_gaussian_report_sums",
    "mirror_upper",
    "outer_upper",
    "prepared_rows",
    "stream_block_size",
    "triu_indices",
]

#: Bits of the fixed-point grid below the scale of a report (relative resolution 2**-50).
GRID_BITS = 50
#: Bits of the low limb of the two-limb integer accumulator.
LIMB_BITS = 31
_LIMB = 1 << LIMB_BITS
_MAX_Q = 2.0**90


#: Largest number of users per block of a keyed noise stream, and numbers per block at most.
STREAM_BLOCK = 1024
STREAM_BLOCK_ENTRIES = 1 << 17


def stream_block_size(m: int) -> int:
    """Users per block of a keyed noise stream with ``m`` numbers per user.

    Parameters
    ----------
    m : int
        Numbers drawn per user.

    Returns
    -------
    b : int
        ``max(1, min(1024, 2**17 // m))``, a function of ``m`` only.
    """
    return max(1, min(STREAM_BLOCK, STREAM_BLOCK_ENTRIES // max(int(m), 1)))


def triu_indices(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the upper triangle (diagonal included), row-major order."""
    iu, ju = np.triu_indices(d)
    return iu, ju


def outer_upper(X: Any) -> Any:
    """Upper triangles of the per-user outer products ``x_i x_i^T``.

    Parameters
    ----------
    X : array of shape (n, d)
        One row per user.

    Returns
    -------
    T : array of shape (n, d * (d + 1) // 2)
        ``T[i] = (x_i x_i^T)[iu, ju]`` with ``iu, ju = triu_indices(d)``. Time and memory
        O(n d^2).
    """
    xp = get_namespace(X)
    iu, ju = triu_indices(int(X.shape[1]))
    iu_x = xp.asarray(iu)
    ju_x = xp.asarray(ju)
    return xp.take(X, iu_x, axis=1) * xp.take(X, ju_x, axis=1)


def mirror_upper(T: Any, d: int) -> Any:
    """Symmetric matrices from their upper triangles: (n, d(d+1)/2) -> (n, d, d).

    Parameters
    ----------
    T : array of shape (n, d * (d + 1) // 2) or (d * (d + 1) // 2,)
        Upper triangles in the order of :func:`triu_indices`.
    d : int
        Matrix size.

    Returns
    -------
    M : array of shape (n, d, d) or (d, d)
        Exactly symmetric matrices.
    """
    xp = get_namespace(T)
    iu, ju = triu_indices(d)
    # position of (i, j) in the packed triangle, for every (i, j)
    pos = np.empty((d, d), dtype=np.int64)
    pos[iu, ju] = np.arange(iu.size)
    pos[ju, iu] = np.arange(iu.size)
    flat = xp.asarray(pos.reshape(-1))
    out = xp.take(T, flat, axis=-1)
    return xp.reshape(out, (*T.shape[:-1], d, d))


def grid_unit(scale: float) -> float:
    """Spacing of the fixed-point grid for reports of size about ``scale`` (a power of two).

    Parameters
    ----------
    scale : float
        A public bound on the size of one report entry (noise standard deviation or
        clipping bound, whichever is larger). Must be positive and finite.

    Returns
    -------
    unit : float
        ``2**(floor(log2(scale)) - GRID_BITS)``.
    """
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be positive and finite; got {scale!r}")
    return float(2.0 ** (int(np.floor(np.log2(scale))) - GRID_BITS))


def exact_accumulate(values: Any, unit: float) -> tuple[Any, Any]:
    """Round reports to the grid and sum them over users exactly, in two int64 limbs.

    Parameters
    ----------
    values : array of shape (n, m)
        One report per row (float64).
    unit : float
        Grid spacing (a power of two, from :func:`grid_unit`).

    Returns
    -------
    hi, lo : arrays of shape (m,), int64
        Normalised limbs of ``sum_i round(values[i] / unit)``: ``0 <= lo < 2**31``.

    Raises
    ------
    OverflowError
        When the integers could overflow the accumulator (a sum of more than ``2**90``
        grid units, about ``2**40`` times the report scale); nothing is wrapped silently.

    Notes
    -----
    Each rounded entry ``q`` is split in floating point, exactly, into
    ``hi = floor(q / 2**31)`` and ``lo = q - hi * 2**31`` before the integer sums, so single
    rows far above the report scale (pre-aggregated sums) are fine too. O(n m); for float64
    NumPy input the compiled version does it in one pass over ``values`` (the integer sums,
    hence the limbs, are the same).
    """
    return get_kernel("exact_accumulate", values)(values, unit)


@register("exact_accumulate", "generic")
def _exact_accumulate_generic(values: Any, unit: float) -> tuple[Any, Any]:
    xp = get_namespace(values)
    q = xp.round(values / unit)
    if values.shape[0] and float(xp.max(xp.sum(xp.abs(q), axis=0))) >= _MAX_Q:
        raise OverflowError("reports too large for the fixed-point accumulator")
    hi_f = xp.floor(q / float(_LIMB))
    lo_f = q - hi_f * float(_LIMB)
    hi = xp.sum(xp.astype(hi_f, xp.int64), axis=0, dtype=xp.int64)
    lo = xp.sum(xp.astype(lo_f, xp.int64), axis=0, dtype=xp.int64)
    return normalise_limbs(hi, lo)


@njit(cache=True, nogil=True)
def _exact_accumulate_impl(
    values: np.ndarray, unit: float
) -> tuple[np.ndarray, np.ndarray, float]:  # pragma: no cover - compiled
    n, m = values.shape
    hi = np.zeros(m, dtype=np.int64)
    lo = np.zeros(m, dtype=np.int64)
    size = np.zeros(m)  # sum of |q| per column, for the overflow check
    limb = float(_LIMB)
    for i in range(n):
        for j in range(m):
            q = np.rint(values[i, j] / unit)  # as np.round: halves to even
            size[j] += abs(q)
            h = np.floor(q / limb)
            hi[j] += np.int64(h)
            lo[j] += np.int64(q - h * limb)
    return hi, lo, size.max() if n > 0 and m > 0 else 0.0


@register("exact_accumulate", "numba")
def _exact_accumulate_numba(values: np.ndarray, unit: float) -> tuple[np.ndarray, np.ndarray]:
    if values.dtype != np.float64 or values.ndim != 2:
        return _exact_accumulate_generic(values, unit)
    hi, lo, size = _exact_accumulate_impl(np.ascontiguousarray(values), float(unit))
    if size >= _MAX_Q:
        raise OverflowError("reports too large for the fixed-point accumulator")
    return normalise_limbs(hi, lo)


def normalise_limbs(hi: Any, lo: Any) -> tuple[Any, Any]:
    """Move the carries of ``lo`` into ``hi`` so that ``0 <= lo < 2**31`` (same integer)."""
    xp = get_namespace(hi, lo)
    carry = xp.bitwise_right_shift(lo, LIMB_BITS)
    return hi + carry, lo - xp.bitwise_left_shift(carry, LIMB_BITS)


def exact_to_float(hi: Any, lo: Any, unit: float) -> Any:
    """The float64 value ``(hi * 2**31 + lo) * unit`` of an exact accumulator.

    A deterministic function of the normalised limbs, so equal integer sums give
    bit-identical floats.
    """
    xp = get_namespace(hi, lo)
    hi, lo = normalise_limbs(hi, lo)
    return (xp.astype(hi, xp.float64) * float(_LIMB) + xp.astype(lo, xp.float64)) * unit


def floored_solve(S: Any, b: Any, floor: float) -> tuple[Any, Any]:
    """Solve ``S_r theta = b`` with ``S_r = U diag(max(lam, floor)) U^T`` (no explicit inverse).

    Parameters
    ----------
    S : array of shape (d, d)
        Symmetric matrix (symmetrised again here).
    b : array of shape (d,) or (d, m)
        Right-hand side(s).
    floor : float
        Eigenvalue floor ``r > 0``.

    Returns
    -------
    theta : array like ``b``
        ``S_r^{-1} b`` through the eigenbasis. O(d^3).
    inv_inf_norm : float
        ``||S_r^{-1}||_{inf -> inf}`` (largest absolute row sum of the inverse).
    """
    xp = get_namespace(S, b)
    S = (S + S.T) / 2.0
    lam, U = xp.linalg.eigh(S)
    inv = 1.0 / xp.maximum(lam, floor)
    coords = U.T @ b
    coords = coords * (inv if b.ndim == 1 else inv[:, None])
    theta = U @ coords
    S_inv = (U * inv[None, :]) @ U.T
    return theta, float(xp.max(xp.sum(xp.abs(S_inv), axis=1)))


def duchi_core(V: Any, keep: Any, signs: Any) -> Any:
    """Output of the l-infinity mechanism given its randomness (unit scale).

    Parameters
    ----------
    V : array of shape (n, d') with entries +-1, d' odd
        The randomised-rounding vectors.
    keep : bool array of shape (n,)
        True: the output lies in the half-space ``<z, V> > 0``; False: in ``<z, V> < 0``.
    signs : array of shape (n, d') with entries +-1
        A uniform sign vector, flipped when it lies on the wrong side.

    Returns
    -------
    z : array of shape (n, d')
        Entries +-1; uniform on the chosen half-space when ``signs`` is uniform.
    """
    xp = get_namespace(V, signs)
    side = xp.sum(signs * V, axis=1) > 0
    flip = side != keep
    return xp.where(flip[:, None], -signs, signs)


def coordinate_rr_core(coord: Any, bit: Any, keep: Any, d: int) -> Any:
    """Output of coordinate randomised response given its randomness (unit scale).

    Parameters
    ----------
    coord : int array of shape (n,)
        The sampled coordinate of each user.
    bit : array of shape (n,) with entries +-1
        The randomised rounding of ``g[coord]``.
    keep : bool array of shape (n,)
        Whether the bit is reported truthfully (else flipped).
    d : int
        Dimension.

    Returns
    -------
    z : array of shape (n, d)
        ``+-1`` at ``coord``, zero elsewhere.
    """
    xp = get_namespace(bit)
    out = xp.where(keep, bit, -bit)
    cols = xp.arange(d)
    return xp.where(cols[None, :] == coord[:, None], out[:, None], xp.zeros_like(out)[:, None])


# ----------------------------------------------------------------------------- Gaussian reports
# Clip to an l2 ball, add Gaussian noise, round to the fixed-point grid: the report of one
# user for a vector statistic (``outer=False``: the row itself) or for the upper triangle of
# its outer product (``outer=True``). The squared norm is summed left to right over the
# entries, in this order on every backend, so that all of them clip identically.


def _statistic(X: Any, outer: bool) -> Any:
    return outer_upper(X) if outer else X


def _ball_clip_generic(T: Any, bound: float) -> Any:
    xp = get_namespace(T)
    ss = xp.zeros(T.shape[:1], dtype=T.dtype)
    for j in range(int(T.shape[1])):  # sequential order, reproduced by the Numba kernels
        ss = ss + T[:, j] * T[:, j]
    factor = bound / xp.maximum(xp.sqrt(ss), xp.asarray(bound, dtype=T.dtype))
    return T * factor[:, None]


def _noisy_generic(X: Any, z: Any, bound: float, scale: float, outer: bool) -> Any:
    T = _ball_clip_generic(_statistic(X, outer), bound)
    return T if scale == 0.0 else T + scale * z


@register("gaussian_reports", "generic")
def _gaussian_reports_generic(
    X: Any, z: Any, bound: float, scale: float, unit: float, outer: bool
) -> Any:
    xp = get_namespace(X)
    return xp.round(_noisy_generic(X, z, bound, scale, outer) / unit) * unit


@register("gaussian_report_sums", "generic")
def _gaussian_report_sums_generic(
    X: Any,
    z: Any,
    folds: Any,
    n_folds: int,
    bound: float,
    scale: float,
    unit: float,
    outer: bool,
) -> tuple[Any, Any]:
    xp = get_namespace(X)
    values = _noisy_generic(X, z, bound, scale, outer)
    m = int(values.shape[1])
    hi = xp.zeros((n_folds, m), dtype=xp.int64)
    lo = xp.zeros((n_folds, m), dtype=xp.int64)
    his, los = [], []
    for f in range(n_folds):
        rows = values[folds == f]
        h, l = exact_accumulate(rows, unit) if rows.shape[0] else (hi[f], lo[f])
        his.append(h)
        los.append(l)
    return xp.stack(his), xp.stack(los)


#: Relative margin of the cheap "inside the ball" test (covers the rounding of both norms).
_BALL_MARGIN = 2.0**-20
#: Users per call of the fused sums: keeps every float partial sum below 2**53 (exact).
_SUM_ROWS = 1 << 21
#: Bound on |z| of NumPy's Ziggurat: its tail returns r + xx with xx <= 53 ln(2) / r.
_Z_MAX = 14.0


@njit(nogil=True, inline="always")
def _clip_factor(x: Any, outer: bool, t: Any, bound: float) -> float:  # pragma: no cover
    """Write the statistic of row ``x`` into ``t``; return ``bound / max(||t||, bound)``.

    The norm is summed left to right over ``t``, as in the generic kernel. For the outer
    product, ``||t||^2 = (||x||^4 + sum x^4) / 2`` is computed first in O(d): when it is
    below ``bound^2`` by a relative margin of 2**-20 (far more than the rounding of either
    computation), the left-to-right norm is certainly <= bound and the factor is exactly 1,
    so the O(d^2) sequential sum is skipped.
    """
    d = x.shape[0]
    if outer:
        s2 = 0.0
        s4 = 0.0
        p = 0
        for a in range(d):
            xa = x[a]
            sq = xa * xa
            s2 += sq
            s4 += sq * sq
            for b in range(a, d):
                t[p] = xa * x[b]
                p += 1
        if (s2 * s2 + s4) * 0.5 * (1.0 + _BALL_MARGIN) < bound * bound:
            return 1.0
    else:
        for a in range(d):
            t[a] = x[a]
    ss = 0.0
    for p in range(d * (d + 1) // 2 if outer else d):
        ss += t[p] * t[p]
    norm = math.sqrt(ss)
    return bound / (norm if norm > bound else bound)  # no call to the max overload


@njit(cache=True, nogil=True)
def _reports_numba_impl(
    X: Any, z: Any, bound: float, scale: float, unit: float, outer: bool
) -> Any:  # pragma: no cover - compiled
    n, d = X.shape
    m = d * (d + 1) // 2 if outer else d
    out = np.empty((n, m))
    t = np.empty(m)
    inv_unit = 1.0 / unit
    for i in range(n):
        factor = _clip_factor(X[i], outer, t, bound)
        for p in range(m):
            val = t[p] * factor
            if scale != 0.0:
                val = val + scale * z[i, p]
            out[i, p] = np.rint(val * inv_unit) * unit
    return out


@njit(cache=True, nogil=True)
def _sums_numba_impl(
    X: Any,
    z: Any,
    folds: Any,
    bound: float,
    scale: float,
    unit: float,
    outer: bool,
    hi: Any,
    lo: Any,
    habs: Any,
) -> None:  # pragma: no cover - compiled
    """Float accumulators of integers: exact while every partial sum stays below 2**53.

    ``lo`` adds at most 2**21 values in [0, 2**31); ``habs`` bounds the partial sums of
    ``hi`` (checked by the caller).
    """
    n = X.shape[0]
    m = hi.shape[1]
    t = np.empty(m)
    inv_unit = 1.0 / unit
    limb = float(1 << 31)
    inv_limb = 1.0 / limb
    for i in range(n):
        factor = _clip_factor(X[i], outer, t, bound)
        f = folds[i]
        if scale != 0.0:
            for p in range(m):
                t[p] = t[p] * factor + scale * z[i, p]
        else:
            for p in range(m):
                t[p] = t[p] * factor
        for p in range(m):
            q = np.rint(t[p] * inv_unit)
            h = np.floor(q * inv_limb)
            hi[f, p] += h
            lo[f, p] += q - h * limb
            habs[p] += abs(h)


@njit(cache=True, nogil=True)
def _keyed_sums_impl(
    X: Any,
    y: Any,
    first_id: int,
    block_size: int,
    states: Any,
    n_folds: int,
    clip: Any,
    bound: float,
    scale: float,
    unit: float,
    outer: bool,
    hi: Any,
    lo: Any,
    buf: Any,
) -> None:  # pragma: no cover - compiled
    """:func:`_sums_numba_impl` with the rows prepared and the noise drawn here.

    Row ``i`` is user ``first_id + i``. Its statistic's input is ``X[i]`` clipped to
    ``[-clip[0], clip[0]]``, followed by ``clip[2]`` when ``clip[3] != 0`` (an intercept
    column), all times ``y[i]`` clipped to ``[-clip[1], clip[1]]`` when ``y`` has a row per
    user (``y.size == X.shape[0]``). Its numbers are row ``(first_id + i) % block_size`` of
    the draw of its block, whose generator starts in ``states[j]`` for the ``j``-th block
    from the first row's (:func:`~sparsestat._kernels.sfc64.seed_states`); the first block
    is advanced past the users before ``first_id``. The fold of a user is its id modulo
    ``n_folds``. The float limbs stay exact by the caller's a-priori bound. ``buf`` is
    scratch space of at least ``d' + 2 m`` numbers (the caller allocates it, so that no
    allocation routine is compiled here).
    """
    n, d = X.shape
    de = d + (1 if clip[3] != 0.0 else 0)
    m = de * (de + 1) // 2 if outer else de  # hi and lo may have padding columns
    with_y = y.shape[0] == n and n > 0
    row, t, z = buf[:de], buf[de : de + m], buf[de + m : de + 2 * m]
    inv_unit = 1.0 / unit
    limb = float(1 << 31)
    inv_limb = 1.0 / limb
    first_block = first_id // block_size
    i = 0
    while i < n:
        user = first_id + i
        block = user // block_size
        stop = (block + 1) * block_size - first_id
        stop = n if stop > n else stop
        j = block - first_block
        a, b, c, w = states[j, 0], states[j, 1], states[j, 2], states[j, 3]
        for r in range(i - (user - block * block_size), stop):  # from the block's first user
            a, b, c, w = fill_normals(z, a, b, c, w)
            if r < i:  # a user before first_id: its numbers are skipped
                continue
            # np.clip of finite values, written out (no min / max overloads to compile)
            for k in range(d):
                v = X[r, k]
                row[k] = -clip[0] if v < -clip[0] else (clip[0] if v > clip[0] else v)
            if de > d:
                row[d] = clip[2]
            if with_y:
                v = y[r]
                v = -clip[1] if v < -clip[1] else (clip[1] if v > clip[1] else v)
                for k in range(de):
                    row[k] *= v
            factor = _clip_factor(row, outer, t, bound)
            f = (first_id + r) % n_folds
            hi_f, lo_f = hi[f], lo[f]
            for p in range(m):
                q = np.rint((t[p] * factor + scale * z[p]) * inv_unit)
                h = np.floor(q * inv_limb)
                hi_f[p] += h
                lo_f[p] += q - h * limb
        i = stop


@register("gaussian_reports", "numba")
def _gaussian_reports_numba(
    X: Any, z: Any, bound: float, scale: float, unit: float, outer: bool
) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float64)
    z = np.ascontiguousarray(z, dtype=np.float64) if scale != 0.0 else np.zeros((1, 1))
    return _reports_numba_impl(X, z, float(bound), float(scale), float(unit), bool(outer))


@register("gaussian_report_sums", "numba")
def _gaussian_report_sums_numba(
    X: Any,
    z: Any,
    folds: Any,
    n_folds: int,
    bound: float,
    scale: float,
    unit: float,
    outer: bool,
) -> tuple[np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(X, dtype=np.float64)
    d = X.shape[1]
    m = d * (d + 1) // 2 if outer else d
    z = np.ascontiguousarray(z, dtype=np.float64) if scale != 0.0 else np.zeros((1, 1))
    folds = np.ascontiguousarray(folds, dtype=np.int64)
    if folds.size and (folds.min() < 0 or folds.max() >= n_folds):
        raise ValueError(f"folds must lie in [0, {n_folds})")
    args = (float(bound), float(scale), float(unit), bool(outer))
    hi = np.zeros((n_folds, m), np.int64)
    lo = np.zeros((n_folds, m), np.int64)
    for start in range(0, X.shape[0], _SUM_ROWS):
        sl = slice(start, start + _SUM_ROWS)
        hi_f = np.zeros((n_folds, m))
        lo_f = np.zeros((n_folds, m))
        habs = np.zeros(m)
        _sums_numba_impl(X[sl], z[sl] if scale != 0.0 else z, folds[sl], *args, hi_f, lo_f, habs)
        if not np.all(habs < 2.0**52):  # huge (or non-finite) entries: the generic path decides
            return _gaussian_report_sums_generic(X, z, folds, n_folds, bound, scale, unit, outer)
        hi, lo = normalise_limbs(hi + hi_f.astype(np.int64), lo + lo_f.astype(np.int64))
    return hi, lo


def _keyed_normals(seed: Any, stream: int, first_id: int, n: int, m: int, block_size: int) -> Any:
    """Rows ``first_id .. first_id + n - 1`` of the keyed streams, drawn by NumPy itself."""
    z = np.empty((n, m))
    pos = 0
    while pos < n:
        block, r = divmod(first_id + pos, block_size)
        take = min(block_size - r, n - pos)
        seq = np.random.SeedSequence(seed, spawn_key=(stream, block))
        draw = np.random.Generator(np.random.SFC64(seq)).standard_normal((r + take, m))
        z[pos : pos + take] = draw[r:]
        pos += take
    return z


def prepared_rows(X: Any, y: Any, clip_X: float, clip_y: float, intercept: Any) -> Any:
    """The statistic's input rows: clipped X, the intercept column, times clipped y.

    Parameters
    ----------
    X : array of shape (n, d)
        Raw rows.
    y : array of shape (n,) or None
        Raw responses (None: the rows are not multiplied).
    clip_X, clip_y : float
        Coordinatewise clipping bounds (inf: none).
    intercept : float or None
        Value of an appended constant column, if any.

    Returns
    -------
    rows : array of shape (n, d) or (n, d + 1)
        The prepared rows; the input is never modified (it is returned as is only when
        nothing is clipped, appended or multiplied). O(n d).
    """
    xp = get_namespace(X)
    xt = xp.clip(X, -clip_X, clip_X) if math.isfinite(clip_X) else X
    if intercept is not None:
        col = xp.full((int(X.shape[0]), 1), float(intercept), dtype=X.dtype)
        xt = xp.concat([xt, col], axis=1)
    if y is not None:
        yt = xp.clip(y, -clip_y, clip_y) if math.isfinite(clip_y) else y
        xt = xt * yt[:, None]
    return xt


@register("keyed_gaussian_report_sums", "generic")
def _keyed_sums_generic(
    X: Any,
    first_id: int,
    seed: Any,
    stream: int,
    block_size: int,
    n_folds: int,
    bound: float,
    scale: float,
    unit: float,
    outer: bool,
    n_threads: int | None = None,
    y: Any = None,
    clip_X: float = math.inf,
    clip_y: float = math.inf,
    intercept: float | None = None,
) -> tuple[Any, Any]:
    xp = get_namespace(X)
    X = prepared_rows(X, y, clip_X, clip_y, intercept)
    n, de = int(X.shape[0]), int(X.shape[1])
    m = de * (de + 1) // 2 if outer else de
    z = xp.asarray(_keyed_normals(seed, stream, first_id, n, m, block_size))
    folds = xp.asarray(np.arange(first_id, first_id + n, dtype=np.int64) % n_folds)
    return _gaussian_report_sums_generic(X, z, folds, n_folds, bound, scale, unit, outer)


def _split_at_blocks(first_id: int, n: int, block_size: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous row ranges, cut at block boundaries, of about equal numbers of blocks."""
    first_block = first_id // block_size
    last_block = (first_id + n - 1) // block_size
    n_blocks = last_block - first_block + 1
    parts = max(1, min(parts, n_blocks))
    cuts = [0]
    for j in range(1, parts):
        cuts.append((first_block + (n_blocks * j) // parts) * block_size - first_id)
    cuts.append(n)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


#: Tasks per thread of the keyed sums (dynamic scheduling: a thread slowed down by other
#: processes takes fewer of them).
_TASKS_PER_THREAD = 8
#: Fewest noise draws per task (users x numbers per user; thread start-up and accumulators
#: cost about as much as 2000 users at d = 20, i.e. 5e5 draws).
_MIN_TASK_DRAWS = 1 << 21
#: Fewest noise draws (users x numbers per user) for which the compiled kernel runs; smaller
#: batches take the generic version (the same integers, NumPy's own generators; at most a
#: few MiB of temporaries), so that a small problem compiles nothing (the kernel's
#: compilation, once per installation, takes seconds).
_COMPILED_MIN_DRAWS = 1 << 18


@register("keyed_gaussian_report_sums", "numba")
def _keyed_sums_numba(
    X: Any,
    first_id: int,
    seed: Any,
    stream: int,
    block_size: int,
    n_folds: int,
    bound: float,
    scale: float,
    unit: float,
    outer: bool,
    n_threads: int | None = None,
    y: Any = None,
    clip_X: float = math.inf,
    clip_y: float = math.inf,
    intercept: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    n_threads = numba.get_num_threads() if n_threads is None else int(n_threads)
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, d = X.shape
    de = d + int(intercept is not None)
    m = de * (de + 1) // 2 if outer else de
    hi = np.zeros((n_folds, m), np.int64)
    lo = np.zeros((n_folds, m), np.int64)
    if n == 0:
        return hi, lo
    generic = (X, first_id, seed, stream, block_size, n_folds, bound, scale, unit, outer)
    options = {"y": y, "clip_X": clip_X, "clip_y": clip_y, "intercept": intercept}
    if n * m < _COMPILED_MIN_DRAWS:
        return _keyed_sums_generic(*generic, **options)
    # A priori bound of every rounded entry |q|: the statistic lies in the l2 ball of radius
    # ``bound`` (2 bound covers the rounding of the clip factor) and every Ziggurat output
    # is below 14 in absolute value (the tail's largest value is r - ln(2**-53) / r, about
    # 13.7); the float limbs are exact while each task's sum of |h| stays below 2**52.
    q_max = (2.0 * abs(bound) + _Z_MAX * abs(scale)) / unit + 1.0
    if not (math.isfinite(q_max) and _SUM_ROWS * (q_max / float(_LIMB) + 1.0) < 2.0**52):
        return _keyed_sums_generic(*generic, **options)
    y_arr = np.zeros(0) if y is None else np.ascontiguousarray(y, dtype=np.float64)
    clip = np.array(
        [clip_X, clip_y, 0.0 if intercept is None else intercept, float(intercept is not None)]
    )
    first_block = first_id // block_size
    states = seed_states(
        seed, (int(stream),), np.arange(first_block, (first_id + n - 1) // block_size + 1)
    )
    block_size, n_folds = int(block_size), int(n_folds)
    params = (float(bound), float(scale), float(unit), bool(outer))
    parts = 1 if n_threads <= 1 else n_threads * _TASKS_PER_THREAD
    ranges = []
    for start in range(0, n, _SUM_ROWS):  # exact float limbs: at most 2**21 users per task
        stop = min(n, start + _SUM_ROWS)
        parts_here = max(1, min(parts, (stop - start) * m // _MIN_TASK_DRAWS))
        ranges += [
            (start + a, start + b)
            for a, b in _split_at_blocks(first_id + start, stop - start, block_size, parts_here)
        ]
    # one padded array per task: no two threads write into the same cache line
    width = -(-m // 8) * 8 + 8
    acc = [np.zeros((2, n_folds, width)) for _ in ranges]
    bufs = [np.empty(de + 2 * m + 8) for _ in ranges]

    def work(j: int) -> None:
        a, b = ranges[j]
        st = states[(first_id + a) // block_size - first_block :]
        rows_y = y_arr[a:b] if y_arr.size else y_arr
        hi_j, lo_j = acc[j][0], acc[j][1]
        _keyed_sums_impl(
            X[a:b],
            rows_y,
            first_id + a,
            block_size,
            st,
            n_folds,
            clip,
            *params,
            hi_j,
            lo_j,
            bufs[j],
        )

    if n_threads > 1 and len(ranges) > 1:
        with ThreadPoolExecutor(max_workers=min(n_threads, len(ranges))) as pool:
            list(pool.map(work, range(len(ranges))))
    else:
        for j in range(len(ranges)):
            work(j)
    for task in acc:
        if not np.all(np.isfinite(task)):  # the generic path decides
            return _keyed_sums_generic(*generic, **options)
        limbs = task[:, :, :m].astype(np.int64)  # integers below 2**52: exact
        hi, lo = normalise_limbs(hi + limbs[0], lo + limbs[1])
    return hi, lo


def keyed_gaussian_report_sums(
    X: Any,
    first_id: int,
    seed: Any,
    stream: int,
    block_size: int,
    n_folds: int,
    bound: float,
    scale: float,
    unit: float,
    outer: bool,
    n_threads: int | None = None,
    *,
    y: Any = None,
    clip_X: float = math.inf,
    clip_y: float = math.inf,
    intercept: float | None = None,
) -> tuple[Any, Any]:
    """Per-fold exact sums of Gaussian reports of consecutive users, noise drawn in the kernel.

    The users are ``first_id, first_id + 1, ...`` (one row of ``X`` each); user ``u`` gets
    row ``u % block_size`` of ``Generator(SFC64(SeedSequence(seed, spawn_key=(stream,
    u // block_size)))).standard_normal((block_size, m))`` as its noise, and fold
    ``u % n_folds``. The result is the integers of :func:`gaussian_report_sums` with that
    noise passed in, whatever the thread count.

    Parameters
    ----------
    X : array of shape (n, d)
        One row per user (raw: the clipping below happens in the kernel).
    first_id : int
        Id of the first row's user (>= 0).
    seed : int or sequence of int
        Entropy of the streams.
    stream : int
        Stream tag (first element of the spawn key).
    block_size : int
        Users per stream block.
    n_folds : int
        Number of folds.
    bound, scale, unit, outer
        As in :func:`gaussian_reports` (``scale > 0``).
    n_threads : int or None, default=None
        Threads of the Numba version (None: ``numba.get_num_threads()``, which follows
        ``NUMBA_NUM_THREADS`` and ``numba.set_num_threads``). The users are cut at block
        boundaries into up to ``8 n_threads`` tasks (of at least ``2**21`` draws), taken by the
        threads as they become free, each with its own accumulators; the integer sums are
        added at the end (exact, so the result does not depend on the split).
    y : array of shape (n,) or None, default=None
        When given, each input row (intercept column included) is multiplied by the user's
        ``y`` clipped to ``[-clip_y, clip_y]`` (the statistic ``x y``).
    clip_X, clip_y : float, default=inf
        Coordinatewise clipping bounds of ``X`` and ``y``, applied first.
    intercept : float or None, default=None
        When given, a constant column of this value is appended to the clipped ``X``.

    Returns
    -------
    hi, lo : int64 arrays of shape (n_folds, m)
        Normalised limbs of each fold's sum, ``m`` from the prepared rows' width ``d'``
        (``d' (d' + 1) / 2`` with ``outer``, else ``d'``).

    Notes
    -----
    The Numba version reproduces NumPy's SeedSequence, SFC64 and Ziggurat bit for bit
    (:mod:`sparsestat._kernels.sfc64`), prepares each row in place and never stores the
    noise: O(n m) time, O(n_folds m) memory per task, no copy of ``X`` when it is a
    C-contiguous float64 array. Batches of fewer than ``2**18`` draws (``n m``) take the
    generic version instead (the same integers; nothing is compiled for small problems). A
    task starting inside a block first draws the earlier users' numbers of that block. The
    generic version draws the blocks with NumPy and calls the generic
    :func:`gaussian_report_sums` (O(n m) memory).
    """
    return get_kernel("keyed_gaussian_report_sums", X)(
        X,
        first_id,
        seed,
        stream,
        block_size,
        n_folds,
        bound,
        scale,
        unit,
        outer,
        n_threads,
        y,
        clip_X,
        clip_y,
        intercept,
    )


def gaussian_reports(X: Any, z: Any, bound: float, scale: float, unit: float, outer: bool) -> Any:
    """Per-user Gaussian-mechanism reports on the fixed-point grid.

    For each user (row of ``X``) the statistic ``t`` (the row, or the upper triangle of its
    outer product) is scaled into the l2 ball of radius ``bound`` (``t * bound /
    max(||t||, bound)``, the squared norm summed left to right), then
    ``t + scale * z`` is rounded to the grid of spacing ``unit``.

    Parameters
    ----------
    X : array of shape (n, d)
        One (already coordinatewise-clipped) row per user.
    z : array of shape (n, m)
        Standard normal draws, ``m = d (d + 1) / 2`` with ``outer`` else ``d``; ignored when
        ``scale == 0``.
    bound : float
        l2 clipping radius of the statistic.
    scale : float
        Noise standard deviation (0 for no noise).
    unit : float
        Grid spacing, a power of two (:func:`grid_unit`).
    outer : bool
        Whether the statistic is the upper triangle of ``x x^T``.

    Returns
    -------
    reports : array of shape (n, m)
        The rounded reports. O(n m) time.
    """
    return get_kernel("gaussian_reports", X, z)(X, z, bound, scale, unit, outer)


def gaussian_report_sums(
    X: Any,
    z: Any,
    folds: Any,
    n_folds: int,
    bound: float,
    scale: float,
    unit: float,
    outer: bool,
) -> tuple[Any, Any]:
    """Per-fold exact sums of the reports of :func:`gaussian_reports`, without forming them.

    Parameters
    ----------
    X : array of shape (n, d)
        One (already coordinatewise-clipped) row per user.
    z : array of shape (n, m)
        Standard normal draws (ignored when ``scale == 0``).
    folds : int array of shape (n,)
        Fold of each user, in ``[0, n_folds)``.
    n_folds : int
        Number of folds.
    bound, scale, unit, outer
        As in :func:`gaussian_reports`.

    Returns
    -------
    hi, lo : int64 arrays of shape (n_folds, m)
        Normalised limbs (:func:`exact_accumulate`) of each fold's sum of the rounded
        reports: the same integers as summing the output of :func:`gaussian_reports`.

    Raises
    ------
    OverflowError
        As :func:`exact_accumulate`.

    Notes
    -----
    The Numba version (NumPy input) fuses the outer product, clipping, noise, rounding and
    the integer sums in one pass over the users, with O(n_folds m) memory: no per-user report
    is stored. It sums the integer limbs in float64, which is exact while the partial sums
    stay below 2**53 (checked; a batch with entries far outside the noise's range goes to
    the generic path, which gives the same integers or raises). O(n m) time.
    """
    return get_kernel("gaussian_report_sums", X, z)(X, z, folds, n_folds, bound, scale, unit, outer)
