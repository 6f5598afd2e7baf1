"""Kernels of the sparse (top-k) path of sparse autoencoders: selection and sparse backward.

Codes are flat triplets sorted by row: ``values`` (nnz,), ``rows`` (nnz,) and ``cols``
(nnz,) (the latent of each entry). The backward of the decoder ``x_hat = z @ D`` and of the
selected encoder entries ``v = (xc @ W.T + b)[rows, cols]`` touch only the ``nnz`` selected
rows of ``D`` / ``W``: O(nnz * d) work instead of the O(B * F * d) of the dense products.
The Numba versions fuse each backward into one pass with no (nnz, d) temporaries.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from sparsestat._kernels._dispatch import get_namespace, register

__all__ = [
    "flat_topk",
    "masked_topk",
    "row_topk",
    "sparse_decode_backward",
    "sparse_encode_backward",
    "sparse_step_grads",
]


# --------------------------------------------------------------------------- row top-k
@register("sae_row_topk", "generic")
def row_topk(rank: Any, k: int) -> Any:
    """Column indices of the ``k`` largest entries of each row (in no particular order).

    Parameters
    ----------
    rank : array of shape (B, F)
        Scores; any array-API library.
    k : int
        Entries per row, ``1 <= k <= F``.

    Returns
    -------
    indices : integer array of shape (B, k)
        Column indices; among equal values the earlier column is kept (-inf entries only if
        a row has fewer than ``k`` finite ones).

    Notes
    -----
    Generic version: a stable descending argsort, O(B F log F). The Numba version keeps a
    size-k min-heap per row (ordered by value, then position), O(B F) for typical data
    (O(B F log k) worst case); both keep the same entries, ties included.

    Examples
    --------
    >>> import numpy as np
    >>> sorted(row_topk(np.array([[0.1, 3.0, -1.0, 2.0]]), 2)[0].tolist())
    [1, 3]
    """
    xp = get_namespace(rank)
    order = xp.argsort(rank, axis=1, descending=True, stable=True)
    return order[:, : int(k)]


@njit(cache=True, inline="always")
def _before(v1: float, i1: int, v2: float, i2: int) -> bool:  # pragma: no cover - compiled
    # heap order: smaller value first; among equal values the later position goes first
    # (is evicted first), so ties keep the earlier position, as a stable argsort does
    return v1 < v2 or (v1 == v2 and i1 > i2)


@njit(cache=True)
def _row_topk_numba(rank: np.ndarray, k: int) -> np.ndarray:  # pragma: no cover
    B, F = rank.shape
    out = np.empty((B, k), dtype=np.int64)
    heap = np.empty(k, dtype=rank.dtype)
    for b in range(B):
        idx = out[b]
        n = 0
        for j in range(F):
            v = rank[b, j]
            if n < k:  # sift up into a min-heap
                p = n
                n += 1
                while p > 0:
                    q = (p - 1) // 2
                    if not _before(v, j, heap[q], idx[q]):
                        break
                    heap[p] = heap[q]
                    idx[p] = idx[q]
                    p = q
                heap[p] = v
                idx[p] = j
            elif v > heap[0]:  # replace the root, sift down (j is later than every kept one)
                p = 0
                while True:
                    c = 2 * p + 1
                    if c >= k:
                        break
                    if c + 1 < k and _before(heap[c + 1], idx[c + 1], heap[c], idx[c]):
                        c += 1
                    if not _before(heap[c], idx[c], v, j):
                        break
                    heap[p] = heap[c]
                    idx[p] = idx[c]
                    p = c
                heap[p] = v
                idx[p] = j
    return out


@register("sae_row_topk", "numba")
def _row_topk(rank: np.ndarray, k: int) -> np.ndarray:
    return _row_topk_numba(np.ascontiguousarray(rank), int(k))


@register("sae_flat_topk", "generic")
def flat_topk(values: Any, k: int) -> Any:
    """Positions of the ``k`` largest entries of a 1-D array, in increasing order.

    Parameters
    ----------
    values : array of shape (n,)
        Scores (a flattened (B, F) block for BatchTopK); any array-API library.
    k : int
        Number of entries, ``1 <= k <= n``.

    Returns
    -------
    positions : integer array of shape (k,)
        Sorted ascending, so that row-major positions come grouped by row.

    Notes
    -----
    Generic version: a stable descending argsort, O(n log n). The fast version finds the
    k-th largest value with NumPy's ``np.partition`` (introselect, O(n)) and collects the
    positions in one compiled ordered scan, so no sort is needed. Both keep the first
    positions among values tied at the threshold.

    Examples
    --------
    >>> import numpy as np
    >>> flat_topk(np.array([0.5, 3.0, -1.0, 2.0, 2.5]), 3).tolist()
    [1, 3, 4]
    """
    xp = get_namespace(values)
    order = xp.argsort(values, descending=True, stable=True)[: int(k)]
    return xp.sort(order)


@njit(cache=True)
def _flat_topk_scan(values: np.ndarray, thr: float, k: int) -> np.ndarray:  # pragma: no cover
    n = values.shape[0]
    above = 0
    for i in range(n):
        if values[i] > thr:
            above += 1
    ties = k - above  # entries equal to the threshold to keep (the first ones)
    out = np.empty(k, dtype=np.int64)
    m = 0
    for i in range(n):
        v = values[i]
        if v > thr:
            out[m] = i
            m += 1
        elif v == thr and ties > 0:
            out[m] = i
            m += 1
            ties -= 1
    return out


@register("sae_flat_topk", "numba")
def _flat_topk(values: np.ndarray, k: int) -> np.ndarray:
    # NumPy's introselect (C) finds the threshold several times faster than Numba's
    # np.partition; the ordered scan is compiled. The k-th largest is taken as the k-th
    # smallest of the negated values: np.partition with kth near the end of an array with
    # many equal values (the zeros of a ReLU) degrades on NumPy 2.x (80x slower on a
    # 512 x 128 block), the cause of a BatchTopK step costing twice a TopK step
    # (benchmarks/bench_sae_kernels.py)
    values = np.ascontiguousarray(values)
    k = int(k)
    negated = -values  # the one copy; partitioned in place
    negated.partition(k - 1)
    return _flat_topk_scan(values, -negated[k - 1], k)


# --------------------------------------------------------------------------- masked top-k
@register("sae_masked_topk", "generic")
def masked_topk(values: Any, columns: Any, k: int, signed: bool) -> tuple[Any, Any]:
    """Per row, the ``k`` largest nonzero codes among the given columns, as flat (rows, cols).

    The codes are ``relu(values)`` (``|values|`` ranks and any nonzero value counts when
    ``signed``); entries whose code is 0 are left out, since they contribute nothing to a
    reconstruction or its gradient (the AuxK term of a sparse autoencoder, over dead
    latents whose pre-activations are mostly negative).

    Parameters
    ----------
    values : array of shape (B, F)
        Pre-activations; any array-API library.
    columns : integer array of shape (m,)
        The columns that may be selected (e.g. the dead latents), increasing.
    k : int
        Entries per row at most, ``1 <= k <= m``.
    signed : bool
        Rank by ``|values|`` (AbsTopK) instead of ``relu(values)``.

    Returns
    -------
    rows : integer array of shape (nnz,)
        Row of each entry, non-decreasing.
    cols : integer array of shape (nnz,)
        Its column (an element of ``columns``).

    Notes
    -----
    O(B m) for the compiled version (a size-k heap per row that zero codes never enter);
    the generic one sorts each row, O(B m log m). Both keep the earlier column among equal
    values.

    Examples
    --------
    >>> import numpy as np
    >>> rows, cols = masked_topk(np.array([[-1.0, 3.0, 2.0], [-2.0, -1.0, 0.5]]),
    ...                          np.array([0, 2]), 1, False)
    >>> rows.tolist(), cols.tolist()
    ([0, 1], [2, 2])
    """
    xp = get_namespace(values, columns)
    sub = xp.take(values, columns, axis=1)
    zero = xp.zeros_like(sub)
    rank = xp.abs(sub) if signed else xp.where(sub > 0, sub, zero)
    order = xp.argsort(rank, axis=1, descending=True, stable=True)[:, : int(k)]
    chosen = xp.take_along_axis(rank, order, axis=1)
    keep = xp.reshape(chosen > 0, (-1,))
    n_rows = order.shape[0]
    rows = xp.reshape(
        xp.broadcast_to(xp.arange(n_rows, device=order.device)[:, None], order.shape), (-1,)
    )
    flat = xp.reshape(order, (-1,))
    picked = xp.nonzero(keep)[0]
    return xp.take(rows, picked), xp.take(columns, xp.take(flat, picked))


@njit(cache=True)
def _masked_topk_numba(
    values: np.ndarray, columns: np.ndarray, k: int, signed: bool
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    B = values.shape[0]
    m = columns.shape[0]
    out_rows = np.empty(B * k, dtype=np.int64)
    out_cols = np.empty(B * k, dtype=np.int64)
    heap = np.empty(k, dtype=values.dtype)
    idx = np.empty(k, dtype=np.int64)
    nnz = 0
    for b in range(B):
        n = 0
        for t in range(m):
            v = values[b, columns[t]]
            if signed:
                v = abs(v)
            if not v > 0:  # a zero code (or NaN) never enters
                continue
            if n < k:
                p = n
                n += 1
                while p > 0:
                    q = (p - 1) // 2
                    if not _before(v, t, heap[q], idx[q]):
                        break
                    heap[p] = heap[q]
                    idx[p] = idx[q]
                    p = q
                heap[p] = v
                idx[p] = t
            elif v > heap[0]:
                p = 0
                while True:
                    c = 2 * p + 1
                    if c >= k:
                        break
                    if c + 1 < k and _before(heap[c + 1], idx[c + 1], heap[c], idx[c]):
                        c += 1
                    if not _before(heap[c], idx[c], v, t):
                        break
                    heap[p] = heap[c]
                    idx[p] = idx[c]
                    p = c
                heap[p] = v
                idx[p] = t
        for i in range(n):
            out_rows[nnz] = b
            out_cols[nnz] = columns[idx[i]]
            nnz += 1
    return out_rows[:nnz].copy(), out_cols[:nnz].copy()


@register("sae_masked_topk", "numba")
def _masked_topk(
    values: np.ndarray, columns: np.ndarray, k: int, signed: bool
) -> tuple[np.ndarray, np.ndarray]:
    return _masked_topk_numba(
        np.ascontiguousarray(values), np.ascontiguousarray(columns, np.int64), int(k), bool(signed)
    )


# --------------------------------------------------------------------------- backward passes
def _segment_sum(xp: Any, keys: Any, contrib: Any, n_out: int) -> Any:
    """``out[j] = sum of contrib[i] with keys[i] == j`` by sorting and cumulative sums."""
    order = xp.argsort(keys, stable=True)
    sk = xp.take(keys, order)
    c = xp.astype(xp.take(contrib, order, axis=0), xp.float64)
    zero = xp.zeros((1,) + tuple(c.shape[1:]), dtype=xp.float64, device=c.device)
    csum = xp.concat([zero, xp.cumulative_sum(c, axis=0)], axis=0)
    grid = xp.arange(n_out, dtype=sk.dtype, device=sk.device)
    lo = xp.searchsorted(sk, grid, side="left")
    hi = xp.searchsorted(sk, grid, side="right")
    out = xp.take(csum, hi, axis=0) - xp.take(csum, lo, axis=0)
    return xp.astype(out, contrib.dtype)


@register("sae_sparse_decode_backward", "generic")
def sparse_decode_backward(
    grad: Any, values: Any, rows: Any, cols: Any, decoder: Any
) -> tuple[Any, Any]:
    """Gradients of ``x_hat = z @ decoder`` for flat sparse codes ``z``.

    Parameters
    ----------
    grad : array of shape (B, d)
        Gradient of the loss with respect to ``x_hat``.
    values : array of shape (nnz,)
        Code values.
    rows, cols : integer arrays of shape (nnz,)
        Their rows and latents.
    decoder : array of shape (F, d)
        Decoder rows.

    Returns
    -------
    grad_values : array of shape (nnz,)
        ``<grad[rows_i], decoder[cols_i]>``.
    grad_decoder : array of shape (F, d)
        ``sum_i values_i * grad[rows_i]`` accumulated into row ``cols_i``.

    Notes
    -----
    O(nnz d). The generic version sums segments in float64 after sorting by latent.

    Examples
    --------
    >>> import numpy as np
    >>> gv, gd = sparse_decode_backward(np.ones((1, 2)), np.array([2.0]), np.array([0]),
    ...                                 np.array([1]), np.eye(2))
    >>> gv.tolist(), gd.tolist()
    ([1.0], [[0.0, 0.0], [2.0, 2.0]])
    """
    xp = get_namespace(grad, decoder)
    g_rows = xp.take(grad, rows, axis=0)
    g_vals = xp.sum(g_rows * xp.take(decoder, cols, axis=0), axis=1)
    g_dec = _segment_sum(xp, cols, values[:, None] * g_rows, decoder.shape[0])
    return g_vals, g_dec


@njit(cache=True)
def _decode_backward_numba(
    grad: np.ndarray, values: np.ndarray, rows: np.ndarray, cols: np.ndarray, decoder: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    nnz = rows.shape[0]
    d = grad.shape[1]
    g_vals = np.empty(nnz, dtype=grad.dtype)
    g_dec = np.zeros(decoder.shape, dtype=grad.dtype)
    for i in range(nnz):
        r = rows[i]
        c = cols[i]
        v = values[i]
        s = 0.0
        for t in range(d):
            g = grad[r, t]
            s += g * decoder[c, t]
            g_dec[c, t] += v * g
        g_vals[i] = s
    return g_vals, g_dec


@register("sae_sparse_decode_backward", "numba")
def _sparse_decode_backward(
    grad: np.ndarray, values: np.ndarray, rows: np.ndarray, cols: np.ndarray, decoder: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    return _decode_backward_numba(
        np.ascontiguousarray(grad),
        np.ascontiguousarray(values),
        rows,
        cols,
        np.ascontiguousarray(decoder),
    )


@register("sae_sparse_encode_backward", "generic")
def sparse_encode_backward(
    grad_values: Any, rows: Any, cols: Any, x_centered: Any, weight: Any
) -> tuple[Any, Any, Any]:
    """Gradients of the selected pre-activations ``v_i = (xc @ W.T + b)[rows_i, cols_i]``.

    Parameters
    ----------
    grad_values : array of shape (nnz,)
        Gradient of the loss with respect to ``v``.
    rows, cols : integer arrays of shape (nnz,)
        Positions of the selected entries.
    x_centered : array of shape (B, d)
        Encoder input ``xc``.
    weight : array of shape (F, d)
        Encoder weight ``W``.

    Returns
    -------
    grad_x : array of shape (B, d)
        ``sum_i g_i * W[cols_i]`` into row ``rows_i``.
    grad_weight : array of shape (F, d)
        ``sum_i g_i * xc[rows_i]`` into row ``cols_i``.
    grad_bias : array of shape (F,)
        ``sum_i g_i`` into ``cols_i``.

    Notes
    -----
    O(nnz d), against O(B F d) for the dense backward of ``xc @ W.T``.

    Examples
    --------
    >>> import numpy as np
    >>> gx, gw, gb = sparse_encode_backward(np.array([1.0]), np.array([0]), np.array([1]),
    ...                                     np.array([[1.0, 2.0]]), np.eye(2))
    >>> gx.tolist(), gw.tolist(), gb.tolist()
    ([[0.0, 1.0]], [[0.0, 0.0], [1.0, 2.0]], [0.0, 1.0])
    """
    xp = get_namespace(x_centered, weight)
    g = grad_values[:, None]
    g_x = _segment_sum(xp, rows, g * xp.take(weight, cols, axis=0), x_centered.shape[0])
    g_w = _segment_sum(xp, cols, g * xp.take(x_centered, rows, axis=0), weight.shape[0])
    g_b = _segment_sum(xp, cols, grad_values, weight.shape[0])
    return g_x, g_w, g_b


@njit(cache=True)
def _encode_backward_numba(
    grad_values: np.ndarray, rows: np.ndarray, cols: np.ndarray, xc: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    nnz = rows.shape[0]
    d = xc.shape[1]
    g_x = np.zeros(xc.shape, dtype=xc.dtype)
    g_w = np.zeros(weight.shape, dtype=xc.dtype)
    g_b = np.zeros(weight.shape[0], dtype=xc.dtype)
    for i in range(nnz):
        r = rows[i]
        c = cols[i]
        g = grad_values[i]
        g_b[c] += g
        for t in range(d):
            g_x[r, t] += g * weight[c, t]
            g_w[c, t] += g * xc[r, t]
    return g_x, g_w, g_b


@register("sae_sparse_encode_backward", "numba")
def _sparse_encode_backward(
    grad_values: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    x_centered: np.ndarray,
    weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _encode_backward_numba(
        np.ascontiguousarray(grad_values),
        rows,
        cols,
        np.ascontiguousarray(x_centered),
        np.ascontiguousarray(weight),
    )


# --------------------------------------------------------------------------- whole step
@register("sae_step_grads", "generic")
def sparse_step_grads(
    x_centered: Any,
    target: Any,
    pre: Any,
    rows: Any,
    cols: Any,
    enc_weight: Any,
    decoder: Any,
    weight: float,
    relu: bool,
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Loss and all gradients of one sparse reconstruction term, without autograd.

    For the selection ``(rows, cols)`` of ``pre = xc @ enc_weight.T + b`` the codes are
    ``v_i = relu(pre[rows_i, cols_i])`` (no ReLU if ``relu`` is False), the reconstruction
    error is ``resid = z @ decoder - target`` with ``z`` the sparse codes, and the loss is
    ``weight * ||resid||^2`` (sum over all entries). Returned are its gradients with respect
    to ``enc_weight``, the encoder bias, ``decoder`` and ``xc`` (``target`` held fixed).

    Parameters
    ----------
    x_centered : array of shape (B, d)
        Encoder input ``xc``.
    target : array of shape (B, d)
        What the sparse part of the reconstruction should match (``xc`` for the main
        reconstruction, the residual for AuxK).
    pre : array of shape (B, F)
        Pre-activations ``xc @ enc_weight.T + b`` (computed by the caller).
    rows, cols : integer arrays of shape (nnz,)
        The selected entries.
    enc_weight : array of shape (F, d)
        Encoder weight.
    decoder : array of shape (F, d)
        Decoder rows.
    weight : float
        Loss weight (e.g. ``1 / (B * var0)``).
    relu : bool
        Apply a ReLU to the selected pre-activations (its derivative is ``[v > 0]``).

    Returns
    -------
    loss : float
        ``weight * ||resid||^2``, accumulated in float64.
    resid : array of shape (B, d)
        ``z @ decoder - target``.
    grad_enc_weight : array of shape (F, d)
    grad_enc_bias : array of shape (F,)
    grad_decoder : array of shape (F, d)
    grad_x_centered : array of shape (B, d)
        The gradients of the loss.

    Notes
    -----
    O(nnz d): with the (B, F) product ``pre`` given, the rest of a TopK SAE step (forward
    decode, loss and backward) touches only the selected rows. The Numba version does it in
    two fused passes with no (nnz, d) temporaries; the generic one composes
    :func:`sparse_decode_backward` and :func:`sparse_encode_backward`.

    Examples
    --------
    >>> import numpy as np
    >>> xc, W = np.array([[1.0, 2.0]]), np.eye(2)
    >>> loss, resid, gw, gb, gd, gx = sparse_step_grads(
    ...     xc, xc, xc @ W.T, np.array([0]), np.array([1]), W, W, 1.0, True)
    >>> float(loss), resid.tolist()
    (1.0, [[-1.0, 0.0]])
    """
    xp = get_namespace(x_centered, decoder)
    B, F = pre.shape
    vals = xp.take(xp.reshape(pre, (-1,)), rows * F + cols)
    if relu:
        vals = xp.where(vals > 0, vals, xp.zeros_like(vals))
    contrib = vals[:, None] * xp.take(decoder, cols, axis=0)
    resid = _segment_sum(xp, rows, contrib, B) - target
    loss = float(weight) * float(xp.sum(xp.astype(resid, xp.float64) ** 2))
    g_vals, g_dec = sparse_decode_backward(2.0 * weight * resid, vals, rows, cols, decoder)
    if relu:
        g_vals = xp.where(vals > 0, g_vals, xp.zeros_like(g_vals))
    g_x, g_w, g_b = sparse_encode_backward(g_vals, rows, cols, x_centered, enc_weight)
    return loss, resid, g_w, g_b, g_dec, g_x


@njit(cache=True)
def _step_grads_numba(
    xc: np.ndarray,
    target: np.ndarray,
    pre: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    enc_w: np.ndarray,
    dec_w: np.ndarray,
    weight: float,
    relu: bool,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    B, d = xc.shape
    F = dec_w.shape[0]
    nnz = rows.shape[0]
    dt = xc.dtype
    resid = np.empty((B, d), dtype=dt)
    for r in range(B):
        for t in range(d):
            resid[r, t] = -target[r, t]
    vals = np.empty(nnz, dtype=dt)
    for i in range(nnz):
        r = rows[i]
        c = cols[i]
        v = pre[r, c]
        if relu and not v > 0:
            v = 0.0
        vals[i] = v
        if v != 0:
            for t in range(d):
                resid[r, t] += v * dec_w[c, t]
    loss = 0.0
    for r in range(B):
        for t in range(d):
            loss += float(resid[r, t]) * float(resid[r, t])
    loss *= weight
    two_w = dt.type(2.0 * weight)
    g_out = np.empty((B, d), dtype=dt)
    for r in range(B):
        for t in range(d):
            g_out[r, t] = two_w * resid[r, t]
    g_x = np.zeros((B, d), dtype=dt)
    g_w = np.zeros((F, d), dtype=dt)
    g_b = np.zeros(F, dtype=dt)
    g_dec = np.zeros((F, d), dtype=dt)
    for i in range(nnz):
        r = rows[i]
        c = cols[i]
        v = vals[i]
        if v != 0:  # separate loops: the updates vectorise, the dot product does not
            for t in range(d):
                g_dec[c, t] += v * g_out[r, t]
        if relu and not v > 0:
            continue
        s = dt.type(0.0)
        for t in range(d):
            s += g_out[r, t] * dec_w[c, t]
        g_b[c] += s
        for t in range(d):
            g_x[r, t] += s * enc_w[c, t]
        for t in range(d):
            g_w[c, t] += s * xc[r, t]
    return loss, resid, g_w, g_b, g_dec, g_x


@register("sae_step_grads", "numba")
def _sparse_step_grads(
    x_centered: np.ndarray,
    target: np.ndarray,
    pre: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    enc_weight: np.ndarray,
    decoder: np.ndarray,
    weight: float,
    relu: bool,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    c = np.ascontiguousarray
    return _step_grads_numba(
        c(x_centered),
        c(target),
        c(pre),
        rows,
        cols,
        c(enc_weight),
        c(decoder),
        float(weight),
        bool(relu),
    )
