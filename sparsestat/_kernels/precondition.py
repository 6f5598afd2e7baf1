"""Label-free preconditioners for sparse regression: SVD, factor certificates, back-map.

These are the linear-algebra pieces of :class:`sparsestat.linear_model.RandomSupportRegressor`.
Every function is written against the array API and
runs on NumPy, CuPy and PyTorch alike; on NumPy the LAPACK calls go through SciPy under a
``threadpoolctl`` limit. ``X^T X`` is never formed: everything works from a thin SVD of the
normalised design ``Xn = U S V^T`` (``p = min(N, d)`` singular triplets).

With ``r`` factors removed, the residual design is ``R = Xn - U_r S_r V_r^T``; its columns
have scales ``s_j = ||R[:, j]|| / sqrt(N)`` and the preconditioned design is
``Z = [R / s | sqrt(N) U_r]`` (every column of norm ``sqrt(N)``). Atom coefficients
``alpha = (alpha_r, alpha_f)`` map back to coefficients on ``Xn`` by

    w = a - V_r V_r^T a + V_r (sqrt(N) alpha_f / S_r),    a = alpha_r / s,

which satisfies ``Xn w = Z alpha`` exactly. The dictionary ``D: alpha -> w`` is applied as an
operator and never formed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator
from threadpoolctl import threadpool_limits

from sparsestat._kernels._dispatch import backend_name, get_namespace, register

__all__ = [
    "BLAS_THREADS",
    "FactorBackMap",
    "ScaledEmbedding",
    "back_map",
    "back_map_adjoint",
    "encode_on_support",
    "factor_design",
    "residual_scales",
    "select_factors",
    "subset_certificates",
    "thin_svd",
]

#: BLAS / LAPACK threads for the NumPy path (this class of machine is one fast core per process).
BLAS_THREADS = 1


@register("thin_svd")
def thin_svd(X: Any) -> tuple[Any, Any, Any]:
    """Thin SVD ``X = U diag(S) Vt`` with ``p = min(N, d)`` triplets, singular values descending.

    NumPy input uses LAPACK ``gesdd`` and falls back to the slower, more robust ``gesvd`` when
    ``gesdd`` does not converge. Cost ``O(N d p)``.
    """
    xp = get_namespace(X)
    if backend_name(xp) == "numpy":
        with threadpool_limits(limits=BLAS_THREADS):
            try:
                return scipy.linalg.svd(
                    X, full_matrices=False, lapack_driver="gesdd", check_finite=False
                )
            except np.linalg.LinAlgError:
                return scipy.linalg.svd(
                    X, full_matrices=False, lapack_driver="gesvd", check_finite=False
                )
    U, S, Vt = xp.linalg.svd(X, full_matrices=False)
    return U, S, Vt


@register("residual_scales")
def residual_scales(S: Any, Vt: Any, r_max: int, n_samples: int) -> Any:
    """Residual column scales ``s_j(r) = ||R_r[:, j]|| / sqrt(N)`` for ``r = 0..r_max``.

    Returned as an array of shape ``(r_max + 1, d)``. Computed from the tail sums
    ``sum_{i >= r} S_i^2 Vt[i, j]^2`` (no cancellation, even at condition number 1e20).
    """
    xp = get_namespace(S, Vt)
    energy = (S[:, None] * Vt) ** 2  # (p, d)
    tail = xp.flip(xp.cumulative_sum(xp.flip(energy, axis=0), axis=0), axis=0)  # tail[r]
    p, d = Vt.shape
    rows = [tail[r, :] if r < p else xp.zeros(d, dtype=Vt.dtype) for r in range(r_max + 1)]
    return xp.sqrt(xp.stack(rows, axis=0) / n_samples)


@register("subset_certificates")
def subset_certificates(
    S: Any,
    Vt: Any,
    scales: Any,
    subsets: Any,
    r: int,
    n_samples: int,
    *,
    s_tol: float = 1e-10,
    clamp: float = 1e-14,
) -> Any:
    """Certificates ``sqrt(|T'|) / sigma_min(Z_r[:, T'] / sqrt(N)) + sqrt(r)`` for each subset.

    Parameters are the thin SVD of ``Xn`` (``S``, ``Vt``), the residual scales ``scales`` at
    this ``r`` (shape ``(d,)``), and ``subsets`` (integer array ``(n_cert, k)``). ``T'`` is the
    part of ``T`` whose residual atom exists (``s_j >= s_tol``); the others are represented by
    the factor atoms alone. ``sigma_min`` comes from the ``(p - r) x k`` blocks
    ``diag(S_tail) Vt_tail[:, T] / (s_T sqrt(N))``, which have the singular values of
    ``Z_r[:, T] / sqrt(N)`` because ``U`` has orthonormal columns. A ``sigma_min`` below
    ``clamp * S[0] / sqrt(N)`` (an exact dependency) gives ``inf`` without raising.

    The certificate bounds ``||alpha||_1 / (||Xn w|| / sqrt(N))`` for the encoding of every
    ``w`` supported on ``T`` (:func:`encode_on_support`). Cost ``O(n_cert p k^2)``.
    """
    xp = get_namespace(S, Vt, scales, subsets)
    n_cert, k = subsets.shape
    root_n = math.sqrt(n_samples)
    flat = xp.reshape(subsets, (-1,))
    s_T = xp.reshape(xp.take(scales, flat, axis=0), (n_cert, k))
    kept = s_T >= s_tol
    n_kept = xp.sum(xp.astype(kept, xp.int64), axis=1)
    safe_s = xp.where(kept, s_T, xp.ones_like(s_T))
    tail = S[r:, None] * Vt[r:, :]  # (p - r, d)
    if tail.shape[0] == 0 or k == 0:
        smin = xp.full((n_cert,), float("inf"), dtype=S.dtype)
    else:
        blocks = xp.reshape(xp.take(tail, flat, axis=1), (tail.shape[0], n_cert, k))
        blocks = xp.permute_dims(blocks, (1, 0, 2))  # (n_cert, p - r, k)
        blocks = blocks * xp.where(kept, 1.0 / (safe_s * root_n), xp.zeros_like(s_T))[:, None, :]
        sv = _svdvals(xp, blocks)  # (n_cert, min(p - r, k)), descending
        # zeroed columns add zero singular values: sigma_min of the kept block sits at
        # position n_kept - 1 (it is 0 if more columns are kept than rows exist)
        n_sv = sv.shape[1]
        idx = xp.clip(n_kept - 1, 0, None)
        pick = xp.where(idx < n_sv, idx, xp.zeros_like(idx))
        smin = xp.take_along_axis(sv, pick[:, None], axis=1)[:, 0]
        smin = xp.where(idx < n_sv, smin, xp.zeros_like(smin))
    tiny = clamp * float(S[0]) / root_n if S.shape[0] else 0.0
    with_resid = n_kept > 0
    safe_smin = xp.where(smin > tiny, smin, xp.ones_like(smin))
    resid_part = xp.where(
        smin > tiny,
        xp.sqrt(xp.astype(n_kept, S.dtype)) / safe_smin,
        xp.full_like(smin, float("inf")),
    )
    resid_part = xp.where(with_resid, resid_part, xp.zeros_like(resid_part))
    return resid_part + math.sqrt(r)


def _svdvals(xp: Any, blocks: Any) -> Any:
    """Singular values of a stack of matrices, descending (LAPACK under a thread limit)."""
    if backend_name(xp) == "numpy":
        with threadpool_limits(limits=BLAS_THREADS):
            return np.linalg.svd(blocks, compute_uv=False)
    return xp.linalg.svdvals(blocks)


@register("factor_design")
def factor_design(Xn: Any, U: Any, S: Any, Vt: Any, r: int, resid_idx: Any, scales: Any) -> Any:
    """Preconditioned design ``Z = [R[:, resid_idx] / s | sqrt(N) U_r]`` of shape ``(N, m)``.

    ``R = Xn - U_r S_r V_r^T`` (a rank-``r`` update, ``O(N d r)``); columns of ``Z`` have norm
    ``sqrt(N)`` up to rounding.
    """
    xp = get_namespace(Xn, U, S, Vt)
    n = Xn.shape[0]
    R = Xn - (U[:, :r] * S[None, :r]) @ Vt[:r, :] if r > 0 else Xn
    Zr = xp.take(R, resid_idx, axis=1) / xp.take(scales, resid_idx, axis=0)[None, :]
    return xp.concat([Zr, math.sqrt(n) * U[:, :r]], axis=1)


@register("back_map")
def back_map(alpha: Any, V_r: Any, S_r: Any, scales: Any, resid_idx: Any, n_samples: int) -> Any:
    """Coefficients ``w = a - V_r V_r^T a + V_r (sqrt(N) alpha_f / S_r)`` on ``Xn``.

    ``alpha`` has ``len(resid_idx) + r`` entries (residual atoms first); ``a`` scatters
    ``alpha_r / s`` to the columns ``resid_idx`` of a length-``d`` zero vector; ``V_r`` has
    shape ``(d, r)``. Cost ``O(d r)``.
    """
    xp = get_namespace(alpha, V_r, S_r)
    d, r = V_r.shape
    m_r = resid_idx.shape[0]
    vals = alpha[:m_r] / xp.take(scales, resid_idx, axis=0)
    a = xp.zeros(d, dtype=alpha.dtype)
    a[resid_idx] = vals
    if r == 0:
        return a
    alpha_f = alpha[m_r:]
    return a - V_r @ (V_r.T @ a) + V_r @ (math.sqrt(n_samples) * alpha_f / S_r)


@register("back_map_adjoint")
def back_map_adjoint(
    g: Any, V_r: Any, S_r: Any, scales: Any, resid_idx: Any, n_samples: int
) -> Any:
    """Adjoint of :func:`back_map`: ``alpha = (P g)[resid_idx] / s, sqrt(N) V_r^T g / S_r``."""
    xp = get_namespace(g, V_r, S_r)
    r = V_r.shape[1]
    pg = g - V_r @ (V_r.T @ g) if r > 0 else g
    alpha_r = xp.take(pg, resid_idx, axis=0) / xp.take(scales, resid_idx, axis=0)
    alpha_f = math.sqrt(n_samples) * (V_r.T @ g) / S_r
    return xp.concat([alpha_r, alpha_f])


@register("encode_on_support")
def encode_on_support(
    w: Any, V_r: Any, S_r: Any, scales: Any, resid_idx: Any, n_samples: int
) -> Any:
    """Atom coefficients ``alpha_r = s w[resid_idx]``, ``alpha_f = S_r V_r^T w / sqrt(N)``.

    For ``w`` with no weight on columns without a residual atom, ``back_map`` of the result
    returns ``w`` exactly; its 1-norm is what :func:`subset_certificates` bounds.
    """
    xp = get_namespace(w, V_r, S_r)
    alpha_r = xp.take(scales, resid_idx, axis=0) * xp.take(w, resid_idx, axis=0)
    alpha_f = S_r * (V_r.T @ w) / math.sqrt(n_samples)
    return xp.concat([alpha_r, alpha_f])


class FactorBackMap(LinearOperator):
    """The dictionary ``D`` from atom coefficients to coefficients on the original features.

    ``D alpha = E (back_map(alpha) / c)``, where ``E`` embeds the kept columns into all
    ``n_features`` and ``c`` are the column scales removed by normalisation. The operator
    stores only ``V_r`` (``d x r``) and a few vectors, never the ``d x m`` matrix; it pickles.

    Parameters
    ----------
    V_r : ndarray of shape (d_kept, r)
        Leading right singular vectors of the normalised design.
    S_r : ndarray of shape (r,)
        Leading singular values.
    scales : ndarray of shape (d_kept,)
        Residual column scales ``s``.
    resid_idx : ndarray of int
        Kept columns that own a residual atom.
    n_samples : int
        ``N``.
    keep : ndarray of int
        Columns of the original design that were kept (non-constant).
    col_scale : ndarray of shape (d_kept,)
        Normalisation scales ``c`` of the kept columns.
    n_features : int
        Number of original features.
    local : ndarray of shape (d_kept, n_local) or None, default=None
        Extra sparse atoms on the normalised design: the last ``n_local`` atom coefficients
        add ``local @ alpha_local`` to the coefficients on ``Xn``.
    """

    def __init__(
        self,
        V_r: np.ndarray,
        S_r: np.ndarray,
        scales: np.ndarray,
        resid_idx: np.ndarray,
        n_samples: int,
        keep: np.ndarray,
        col_scale: np.ndarray,
        n_features: int,
        local: np.ndarray | None = None,
    ) -> None:
        self.V_r, self.S_r, self.scales, self.resid_idx = V_r, S_r, scales, resid_idx
        self.n_samples, self.keep, self.col_scale = n_samples, keep, col_scale
        self.local = local
        self.n_main = resid_idx.shape[0] + V_r.shape[1]
        m = self.n_main + (0 if local is None else local.shape[1])
        super().__init__(dtype=V_r.dtype, shape=(n_features, m))

    def _matvec(self, alpha: np.ndarray) -> np.ndarray:
        alpha = np.ravel(alpha)
        main = alpha[: self.n_main]
        w = back_map(main, self.V_r, self.S_r, self.scales, self.resid_idx, self.n_samples)
        if self.local is not None:
            w = w + self.local @ alpha[self.n_main :]
        out = np.zeros(self.shape[0], dtype=np.result_type(w, self.dtype))
        out[self.keep] = w / self.col_scale
        return out

    def _rmatvec(self, g: np.ndarray) -> np.ndarray:
        h = np.ravel(g)[self.keep] / self.col_scale
        adj = back_map_adjoint(h, self.V_r, self.S_r, self.scales, self.resid_idx, self.n_samples)
        if self.local is None:
            return adj
        return np.concatenate([adj, self.local.T @ h])


class ScaledEmbedding(LinearOperator):
    """``alpha -> E (B alpha / c)`` for a user back-map ``B`` (callable preconditioners).

    Parameters
    ----------
    inner : LinearOperator
        The user's back-map from atom coefficients to coefficients on the normalised design.
    keep : ndarray of int
        Kept columns of the original design.
    col_scale : ndarray of shape (d_kept,)
        Normalisation scales of the kept columns.
    n_features : int
        Number of original features.
    """

    def __init__(
        self, inner: LinearOperator, keep: np.ndarray, col_scale: np.ndarray, n_features: int
    ) -> None:
        self.inner, self.keep, self.col_scale = inner, keep, col_scale
        super().__init__(dtype=inner.dtype, shape=(n_features, inner.shape[1]))

    def _matvec(self, alpha: np.ndarray) -> np.ndarray:
        w = np.ravel(self.inner.matvec(np.ravel(alpha)))
        out = np.zeros(self.shape[0], dtype=w.dtype)
        out[self.keep] = w / self.col_scale
        return out

    def _rmatvec(self, g: np.ndarray) -> np.ndarray:
        return np.ravel(self.inner.rmatvec(np.ravel(g)[self.keep] / self.col_scale))


def _upper_quantile(xp: Any, values: Any, q: float) -> float:
    """The ``q``-quantile taken as the next order statistic above (exact with ``inf``)."""
    ordered = xp.sort(values)
    n = ordered.shape[0]
    return float(ordered[min(n - 1, math.ceil(q * (n - 1)))])


@register("select_factors")
def select_factors(
    S: Any,
    Vt: Any,
    subsets: Any,
    r_max: int,
    n_samples: int,
    quantile: float,
    *,
    s_tol: float = 1e-10,
    clamp: float = 1e-14,
) -> tuple[int, list[float], Any]:
    """Pick the number of removed factors ``r*`` by the certificate score.

    ``score(r)`` is the ``quantile`` of :func:`subset_certificates` over the fixed ``subsets``
    (common random numbers across ``r``). ``r*`` minimises the score (ties go to the smaller
    ``r``); the scan stops once the score has risen twice in a row. Returns ``r*``, the
    scores of the scanned ``r = 0, 1, ...`` and the residual scales at every scanned ``r``
    (shape ``(len(scores), d)``).
    """
    scales = residual_scales(S, Vt, r_max, n_samples)
    scores: list[float] = []
    for r in range(r_max + 1):
        cert = subset_certificates(
            S, Vt, scales[r, :], subsets, r, n_samples, s_tol=s_tol, clamp=clamp
        )
        scores.append(_upper_quantile(get_namespace(cert), cert, quantile))
        if r >= 2 and scores[-1] > scores[-2] > scores[-3]:
            break
    best = min(range(len(scores)), key=lambda i: (scores[i], i))
    return best, scores, scales[: len(scores), :]
