"""Kronecker mode products and the matrix-free sparse Bayesian learning (SBL) kernels.

Everything here is written against the array API (``array_api_compat``), so NumPy, CuPy and
PyTorch inputs run on their own device; the outputs have the library and device of the inputs.
The heavy work is BLAS / LAPACK (matrix products, small Hermitian eigendecompositions, SVDs),
so no Numba version is registered: it would only wrap the same library calls.

Ordering convention: entry ``n`` of a vector of length ``N = N_1 ... N_I`` is the C-order
flat index of the tuple ``(n_1, ..., n_I)``, factor 1 slowest. Then
``kron(A_1, ..., A_I) x == kron_matvec([A_1, ..., A_I], x)`` exactly as ``np.kron``.

References
----------
Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector recovery
with application to IRS-MIMO channel estimation", IEEE Trans. Signal Process., 2024.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import device as array_device

from sparsestat._kernels._dispatch import get_kernel, get_namespace, register, to_host

__all__ = [
    "Posterior",
    "am_mstep",
    "am_objective",
    "dense_estep",
    "feature_estep",
    "kron_estep",
    "kron_matvec",
    "kron_predictive_variance",
    "kron_rmatvec",
    "outer_ravel",
    "pattern_coupling_matrix",
    "posterior_covariance",
    "quadratic_diag",
    "svd_mstep",
]

_TINY = 1e-300


# --------------------------------------------------------------------------- mode products
def _ctranspose(xp: Any, a: Any) -> Any:
    """Conjugate transpose of a 2-D array (no conjugation for real dtypes)."""
    if xp.isdtype(a.dtype, "complex floating"):
        return xp.conj(a).T
    return a.T


@register("outer_ravel")
def _outer_ravel_generic(vectors: Sequence[Any]) -> Any:
    xp = get_namespace(*vectors)
    out = vectors[0]
    for v in vectors[1:]:
        out = xp.reshape(out[:, None] * v[None, :], (-1,))
    return out


def outer_ravel(vectors: Sequence[Any]) -> Any:
    """Flat Kronecker product ``v_1 kron ... kron v_I`` of 1-D arrays (factor 1 slowest)."""
    return get_kernel("outer_ravel", *vectors)(vectors)


@register("kron_matvec")
def _kron_matvec_generic(mats: Sequence[Any], v: Any) -> Any:
    xp = get_namespace(v, *mats)
    vec = v.ndim == 1
    n_cols = 1 if vec else int(v.shape[1])
    # Cyclic mode products: t holds the C-order tensor (n_i, ..., n_I, L, m_1, ..., m_{i-1})
    # viewed as (n_i, rest); A_i @ t and a transpose move the new axis m_i to the end.
    t = xp.reshape(v, (int(v.shape[0]), n_cols))
    for a in mats:
        t = xp.reshape(t, (a.shape[1], -1))
        t = (a @ t).T
    # t is (n_cols, m_1 ... m_I) flattened -> (L, M)
    t = xp.reshape(t, (n_cols, -1))
    return xp.reshape(t, (-1,)) if vec else t.T


def kron_matvec(mats: Sequence[Any], v: Any) -> Any:
    """``(mats[0] kron ... kron mats[-1]) @ v`` by mode products, never forming the product.

    Parameters
    ----------
    mats : sequence of 2-D arrays
        Factor matrices ``A_i`` of shapes ``(m_i, n_i)``; same dtype as ``v``.
    v : array of shape (prod n_i,) or (prod n_i, L)

    Returns
    -------
    out : array of shape (prod m_i,) or (prod m_i, L)
    """
    return get_kernel("kron_matvec", v, *mats)(mats, v)


def kron_rmatvec(mats: Sequence[Any], v: Any) -> Any:
    """``(mats[0] kron ... kron mats[-1])^H @ v`` by mode products."""
    xp = get_namespace(v, *mats)
    return kron_matvec([_ctranspose(xp, a) for a in mats], v)


# --------------------------------------------------------------------------- E-steps
@dataclass
class Posterior:
    """Gaussian posterior of an SBL E-step (mean, diagonal of the covariance, likelihood)."""

    mean: Any  # (N, L)
    sigma_diag: Any  # (N,), real, clipped at 0
    logdet: float  # log|C|
    quad: float  # sum over columns of y_l^H C^{-1} y_l


@register("kron_estep")
def _kron_estep_generic(
    factors: Sequence[Any], gammas: Sequence[Any], noise_var: float, Y: Any
) -> Posterior:
    xp = get_namespace(Y, *factors)
    eigvals, us, ws, w2s = [], [], [], []
    for a, g in zip(factors, gammas):
        ah = _ctranspose(xp, a)
        gc = xp.astype(g, a.dtype)
        b = (a * gc[None, :]) @ ah
        b = (b + _ctranspose(xp, b)) / 2
        p, u = xp.linalg.eigh(b)
        eigvals.append(xp.clip(p, min=0.0))
        us.append(_ctranspose(xp, u))
        w = (gc[:, None] * ah) @ u
        ws.append(w)
        w2s.append(xp.real(w * xp.conj(w)) if xp.isdtype(w.dtype, "complex floating") else w * w)
    s = noise_var + outer_ravel(eigvals)
    d = 1.0 / s
    z = kron_matvec(us, Y)
    dz = xp.astype(d, z.dtype)[:, None] * z
    mean = kron_matvec(ws, dz)
    prior = outer_ravel(gammas)
    sig = prior - kron_matvec(w2s, d)
    sig = xp.where(sig > 0, sig, xp.zeros_like(sig))
    az = xp.abs(z)
    quad = float(xp.sum(d[:, None] * az * az))
    logdet = float(xp.sum(xp.log(s)))
    return Posterior(mean=mean, sigma_diag=sig, logdet=logdet, quad=quad)


def kron_estep(
    factors: Sequence[Any], gammas: Sequence[Any], noise_var: float, Y: Any
) -> Posterior:
    """Exact, matrix-free SBL E-step for ``A = kron(A_1, ..., A_I)`` and ``Gamma = kron g_i``.

    Per factor ``B_i = A_i diag(g_i) A_i^H = U_i diag(p_i) U_i^H`` (Hermitian ``eigh``, tiny
    negative eigenvalues clipped), so ``C = sigma2 I + A Gamma A^H`` has eigenvectors
    ``kron U_i`` and eigenvalues ``sigma2 + kron p_i``. With ``W_i = diag(g_i) A_i^H U_i``
    and ``d = 1 / (sigma2 + kron p_i)``::

        mean      = (kron W_i) [d * (kron U_i^H) Y]
        diag(Sig) = kron g_i - (kron |W_i|^2) d

    No ``M x N`` or ``N x N`` array is formed: cost ``O(sum M_i^3 + (M + N) L sum M_i)``.

    Parameters
    ----------
    factors : sequence of 2-D arrays ``(M_i, N_i)``, all of one dtype
    gammas : sequence of 1-D real arrays ``(N_i,)``, positive
    noise_var : float, positive
    Y : array ``(M, L)`` with the dtype of the factors

    Returns
    -------
    Posterior
    """
    return get_kernel("kron_estep", Y, *factors)(factors, gammas, noise_var, Y)


@register("dense_estep")
def _dense_estep_generic(A: Any, gamma: Any, noise_var: float, Y: Any) -> Posterior:
    xp = get_namespace(Y, A)
    m = A.shape[0]
    ah = _ctranspose(xp, A)
    gc = xp.astype(gamma, A.dtype)
    c = (A * gc[None, :]) @ ah
    c = (c + _ctranspose(xp, c)) / 2 + noise_var * xp.eye(m, dtype=A.dtype, device=array_device(A))
    sol = xp.linalg.solve(c, xp.concat([A, Y], axis=1))
    cinv_a, cinv_y = sol[:, : A.shape[1]], sol[:, A.shape[1] :]
    mean = gc[:, None] * (ah @ cinv_y)
    cross = (
        xp.sum(xp.conj(A) * cinv_a, axis=0)
        if xp.isdtype(A.dtype, "complex floating")
        else (xp.sum(A * cinv_a, axis=0))
    )
    sig = gamma - gamma * gamma * xp.real(cross)
    sig = xp.where(sig > 0, sig, xp.zeros_like(sig))
    _, logabs = xp.linalg.slogdet(c)
    quad = float(xp.real(xp.sum(xp.conj(Y) * cinv_y)))
    return Posterior(mean=mean, sigma_diag=sig, logdet=float(xp.real(logabs)), quad=quad)


def _dense_estep_numpy(A: Any, gamma: Any, noise_var: float, Y: Any) -> Posterior:
    """NumPy/SciPy version: Cholesky of ``C`` and triangular solves (2 M^2 N instead of 3)."""
    from scipy.linalg import cholesky, solve_triangular

    ag = A * gamma[None, :]
    c = ag @ A.conj().T
    c = (c + c.conj().T) / 2
    c[np.diag_indices_from(c)] += noise_var
    low = cholesky(c, lower=True, check_finite=False)
    v = solve_triangular(low, A, lower=True, check_finite=False)
    w = solve_triangular(low, Y, lower=True, check_finite=False)
    mean = gamma[:, None] * (v.conj().T @ w)
    sig = gamma - gamma * gamma * np.sum(np.abs(v) ** 2, axis=0)
    sig = np.where(sig > 0, sig, 0.0)
    logdet = 2.0 * float(np.sum(np.log(np.real(np.diag(low)))))
    return Posterior(mean=mean, sigma_diag=sig, logdet=logdet, quad=float(np.sum(np.abs(w) ** 2)))


def dense_estep(A: Any, gamma: Any, noise_var: float, Y: Any) -> Posterior:
    """Classical SBL E-step in sample space (Woodbury form), for an explicit ``A (M, N)``.

    ``C = sigma2 I + A Gamma A^H`` (``M x M``) is solved once against ``[A, Y]``;
    ``mean = Gamma A^H C^{-1} Y`` and ``diag(Sigma) = gamma - gamma^2 diag(A^H C^{-1} A)``.
    Cost ``O(M^2 N + M^3)``, memory ``O(M N)``.
    """
    if isinstance(A, np.ndarray) and isinstance(Y, np.ndarray):
        with contextlib.suppress(np.linalg.LinAlgError):
            return _dense_estep_numpy(A, gamma, noise_var, Y)
    return get_kernel("dense_estep", Y, A)(A, gamma, noise_var, Y)


@register("feature_estep")
def _feature_estep_generic(
    gram: Any, b: Any, yy: float, gamma: Any, noise_var: float, n_rows: float
) -> Posterior:
    xp = get_namespace(gram, b)
    n = int(gram.shape[0])
    sc = xp.astype(xp.sqrt(gamma), gram.dtype)
    k = (sc[:, None] * gram * sc[None, :]) / noise_var
    k = (k + _ctranspose(xp, k)) / 2 + xp.eye(n, dtype=gram.dtype, device=array_device(gram))
    kinv = xp.linalg.inv(k)
    mean = sc[:, None] * (kinv @ (sc[:, None] * b)) / noise_var
    sig = gamma * xp.real(xp.linalg.diagonal(kinv))
    sig = xp.where(sig > 0, sig, xp.zeros_like(sig))
    _, logabs = xp.linalg.slogdet(k)
    logdet = n_rows * math.log(noise_var) + float(xp.real(logabs))
    quad = (yy - float(xp.real(xp.sum(xp.conj(b) * mean)))) / noise_var
    return Posterior(mean=mean, sigma_diag=sig, logdet=logdet, quad=quad)


def _feature_estep_numpy(
    gram: Any, b: Any, yy: float, gamma: Any, noise_var: float, n_rows: float
) -> Posterior:
    """NumPy/SciPy version: Cholesky of ``K`` and one triangular inverse."""
    from scipy.linalg import cholesky, solve_triangular

    sc = np.sqrt(gamma).astype(gram.dtype)
    k = (sc[:, None] * gram * sc[None, :]) / noise_var
    k = (k + k.conj().T) / 2
    k[np.diag_indices_from(k)] += 1.0
    low = cholesky(k, lower=True, check_finite=False)
    linv = solve_triangular(low, np.eye(k.shape[0], dtype=k.dtype), lower=True, check_finite=False)
    mean = sc[:, None] * (linv.conj().T @ (linv @ (sc[:, None] * b))) / noise_var
    sig = gamma * np.sum(np.abs(linv) ** 2, axis=0)
    logdet = n_rows * math.log(noise_var) + 2.0 * float(np.sum(np.log(np.real(np.diag(low)))))
    quad = (yy - float(np.real(np.sum(b.conj() * mean)))) / noise_var
    return Posterior(mean=mean, sigma_diag=sig, logdet=logdet, quad=quad)


def feature_estep(
    gram: Any, b: Any, yy: float, gamma: Any, noise_var: float, n_rows: float
) -> Posterior:
    """Classical SBL E-step in feature space, for ``M > N`` (more samples than features).

    With ``S = diag(sqrt(gamma))`` and ``K = I + S A^H A S / sigma2`` (``N x N``, well
    conditioned since ``K >= I``): ``Sigma = S K^{-1} S``, ``mean = Sigma A^H Y / sigma2``,
    ``log|C| = M log sigma2 + log|K|`` and ``tr(Y^H C^{-1} Y) = (||Y||^2 - Re tr(B^H
    mean)) / sigma2``. Only the Gram matrix ``A^H A``, ``B = A^H Y`` and ``||Y||^2`` enter,
    so once they are formed an iteration costs ``O(N^3 + N^2 L)`` instead of the sample-space
    ``O(M^2 N + M^3)``.

    Parameters
    ----------
    gram : array (N, N)
        ``A^H A``.
    b : array (N, L)
        ``A^H Y``.
    yy : float
        ``||Y||_F^2``.
    gamma : 1-D real array (N,), positive
    noise_var : float, positive
    n_rows : float
        ``M``, the number of rows of ``A`` (the sum of the weights for weighted rows).

    Returns
    -------
    Posterior
    """
    if isinstance(gram, np.ndarray) and isinstance(b, np.ndarray):
        with contextlib.suppress(np.linalg.LinAlgError):
            return _feature_estep_numpy(gram, b, yy, gamma, noise_var, n_rows)
    return get_kernel("feature_estep", gram, b)(gram, b, yy, gamma, noise_var, n_rows)


def posterior_covariance(A: Any, gamma: Any, noise_var: float) -> Any:
    """Full posterior covariance ``Sigma = (Gamma^{-1} + A^H A / sigma2)^{-1}`` (``N x N``).

    Evaluated as ``S (I + S A^H A S / sigma2)^{-1} S`` with ``S = diag(sqrt(gamma))``, which
    stays accurate for tiny ``gamma``. Meant for the few columns an SBL fit keeps.
    """
    xp = get_namespace(A)
    n = int(A.shape[1])
    sc = xp.astype(xp.sqrt(gamma), A.dtype)
    a_s = A * sc[None, :]
    k = (_ctranspose(xp, a_s) @ a_s) / noise_var
    k = (k + _ctranspose(xp, k)) / 2 + xp.eye(n, dtype=A.dtype, device=array_device(A))
    return sc[:, None] * xp.linalg.inv(k) * xp.conj(sc)[None, :]


def quadratic_diag(X: Any, cov: Any) -> Any:
    """``diag(X cov X^H)`` (real part), row by row, without forming the ``n x n`` product."""
    xp = get_namespace(X, cov)
    return xp.real(xp.sum((X @ cov) * xp.conj(X), axis=1))


def kron_predictive_variance(
    new_factors: Sequence[Any], factors: Sequence[Any], gammas: Sequence[Any], noise_var: float
) -> Any:
    """``diag(A' Sigma A'^H)`` for Kronecker designs, matrix-free.

    ``Sigma`` is the posterior covariance of the fit with ``A = kron(A_i)`` (``factors``),
    prior ``kron g_i`` and noise ``sigma2``; ``A' = kron(A'_i)`` (``new_factors``, same
    ``N_i``). With ``A_i Gamma_i A_i^H = U_i diag(p_i) U_i^H``, ``Q_i = A'_i Gamma_i A_i^H
    U_i`` and ``d = 1 / (sigma2 + kron p_i)``::

        diag(A' Sigma A'^H) = kron diag(A'_i Gamma_i A'_i^H) - (kron |Q_i|^2) d

    Cost ``O(sum M_i^3 + M' sum M_i)``; nothing of size ``N`` is formed.
    """
    xp = get_namespace(*new_factors, *factors)
    eigvals, q2s, v1s = [], [], []
    for a_new, a, g in zip(new_factors, factors, gammas):
        gc = xp.astype(g, a.dtype)
        ah = _ctranspose(xp, a)
        b = (a * gc[None, :]) @ ah
        b = (b + _ctranspose(xp, b)) / 2
        p, u = xp.linalg.eigh(b)
        eigvals.append(xp.clip(p, min=0.0))
        q = ((a_new * gc[None, :]) @ ah) @ u
        q2s.append(xp.real(q * xp.conj(q)))
        v1s.append(xp.real(xp.sum((a_new * gc[None, :]) * xp.conj(a_new), axis=1)))
    d = 1.0 / (noise_var + outer_ravel(eigvals))
    out = outer_ravel(v1s) - kron_matvec(q2s, d)
    return xp.where(out > 0, out, xp.zeros_like(out))


# --------------------------------------------------------------------------- M-steps
def am_objective(lam: Any, gammas: Sequence[Any]) -> float:
    """``Q(gamma) = sum_n log gamma_n + Lambda_n / gamma_n`` for ``gamma = kron gammas``."""
    xp = get_namespace(lam, *gammas)
    g = outer_ravel(gammas)
    return float(xp.sum(xp.log(g) + lam / g))


def _outer_np(xp: Any, vectors: Sequence[Any], like: Any) -> Any:
    """Flat outer product of ``vectors`` (a length-1 ones vector when empty)."""
    if not vectors:
        return xp.ones(1, dtype=like.dtype, device=array_device(like))
    out = vectors[0]
    for v in vectors[1:]:
        out = xp.reshape(out[:, None] * v[None, :], (-1,))
    return out


def _am_target(xp: Any, lam: Any, gammas: Sequence[Any], i: int, tiny: float) -> Any:
    """Closed-form AM update of factor ``i`` given the others (contract Lambda with 1/g_k)."""
    recip = []
    for g in gammas:
        floor = max(float(xp.max(g)) * 1e-250, tiny)
        recip.append(1.0 / xp.where(g > floor, g, floor))
    n_i = int(gammas[i].shape[0])
    pre = _outer_np(xp, recip[:i], lam)
    post = _outer_np(xp, recip[i + 1 :], lam)
    t = xp.reshape(lam, (int(pre.shape[0]), -1))
    t = xp.reshape(pre[None, :] @ t, (n_i, int(post.shape[0])))
    n_total = math.prod(int(g.shape[0]) for g in gammas)
    return xp.reshape(t @ post[:, None], (n_i,)) * (n_i / n_total)


def _normalise(gammas: list[Any]) -> None:
    """Unit 2-norm for factors 1..I-1, the scale carried by the last factor (in place)."""
    xp = get_namespace(*gammas)
    for i in range(len(gammas) - 1):
        nrm = xp.linalg.vector_norm(gammas[i])
        if float(nrm) > 0:
            gammas[i] = gammas[i] / nrm
            gammas[-1] = gammas[-1] * nrm


def pattern_coupling_matrix(n: int, beta: float, *, like: Any = None) -> Any:
    """Tridiagonal PC-KroSBL coupling ``C = I + beta (S + S^T)`` (no wrap-around).

    Real, of the real dtype and on the device of ``like`` (NumPy float64 when None).
    """
    c = np.eye(n) + beta * (np.eye(n, k=1) + np.eye(n, k=-1))
    if like is None:
        return c
    xp = get_namespace(like)
    rdtype = xp.real(like[:1, :1]).dtype if like.ndim == 2 else xp.real(like[:1]).dtype
    return xp.asarray(c, dtype=rdtype, device=array_device(like))


def _nnls(c: Any, t: Any) -> Any:
    """Exact NNLS ``argmin_{g >= 0} ||c g - t||`` (tiny systems, solved on the host)."""
    from scipy.optimize import nnls

    xp = get_namespace(t)
    g, _ = nnls(np.asarray(to_host(c), dtype=np.float64), np.asarray(to_host(t), np.float64))
    return xp.asarray(g, dtype=t.dtype, device=array_device(t))


def am_mstep(
    lam: Any,
    gammas: Sequence[Any],
    *,
    tol: float = 1e-5,
    relative: bool = False,
    max_sweeps: int = 100,
    coupling: Sequence[Any | None] | None = None,
    floor: float = 0.0,
) -> tuple[list[Any], int, bool]:
    """AM-KroSBL M-step: Gauss-Seidel sweeps of closed-form factor updates.

    Each sweep sets, for ``i = 1..I``, ``g_i[j] = (N_i / N) sum_{others} Lambda / prod_{k!=i}
    g_k`` (new values used at once), then normalises. A pattern-coupled factor (``coupling[i]``
    a matrix ``C_i``) instead solves ``min_{g >= 0} ||C_i g - t_i||`` and stores the effective
    variance ``C_i g + floor`` (PC-KroSBL). Sweeps stop when ``||kron g_new - kron g_old||``
    (relative to ``||kron g_old||`` if ``relative``) drops to ``tol`` or after ``max_sweeps``.

    Parameters
    ----------
    lam : 1-D array (N,)
        ``diag(Sigma) + mean |mu|^2``, flat, C-order over the factors.
    gammas : sequence of 1-D arrays
        Starting (effective) factor variances.
    tol, relative, max_sweeps, coupling, floor
        See above.

    Returns
    -------
    gammas : list of arrays
    n_sweeps : int
    converged : bool
    """
    xp = get_namespace(lam, *gammas)
    tiny = max(_TINY, float(xp.finfo(lam.dtype).smallest_normal))  # > 0 in float32 too
    gam = list(gammas)
    prod_old = outer_ravel(gam)
    n_sweeps, converged = 0, False
    for n_sweeps in range(1, max_sweeps + 1):  # noqa: B007
        for i in range(len(gam)):
            t = _am_target(xp, lam, gam, i, tiny)
            c = None if coupling is None else coupling[i]
            gam[i] = t if c is None else c @ _nnls(c, t) + floor
        _normalise(gam)
        prod_new = outer_ravel(gam)
        change = float(xp.linalg.vector_norm(prod_new - prod_old))
        if relative:
            change /= max(float(xp.linalg.vector_norm(prod_old)), _TINY)
        prod_old = prod_new
        if change <= tol:
            converged = True
            break
    return gam, n_sweeps, converged


def svd_mstep(lam: Any, sizes: Sequence[int]) -> list[Any]:
    """SVD-KroSBL M-step: sequential rank-1 (TT-SVD style) approximation of Lambda.

    Unfold Lambda as ``N_1 x (N / N_1)``; ``g_1 = |u_1|`` and the remainder ``|s_1 v_1|`` is
    unfolded as ``N_2 x ...`` and so on; ``g_I`` is the last remainder. With one factor this
    returns Lambda itself. A vanishing unfolding gives uniform factors.
    """
    xp = get_namespace(lam)
    out = []
    rest = lam
    for n_i in sizes[:-1]:
        r = xp.reshape(rest, (n_i, -1))
        u, s, vh = xp.linalg.svd(r, full_matrices=False)
        if float(s[0]) <= 0:  # Lambda == 0: uniform factors, zero scale
            out.append(xp.ones(n_i, dtype=lam.dtype, device=array_device(lam)) / math.sqrt(n_i))
            rest = xp.zeros(int(r.shape[1]), dtype=lam.dtype, device=array_device(lam))
            continue
        out.append(xp.abs(u[:, 0]))
        rest = xp.abs(s[0] * vh[0, :])
    out.append(rest)
    return out
