"""EM for sparse Bayesian learning: classical SBL (one factor) and Kronecker SBL (several).

The solver of :class:`sparsestat.bayes.SparseBayesianLearning` and
:class:`sparsestat.bayes.KroneckerSBL`. One EM iteration is prune -> E-step -> M-step ->
noise update -> stopping test; the numeric pieces (mode products, the matrix-free and dense
E-steps, the AM / SVD / pattern-coupled M-steps) are kernels of
:mod:`sparsestat._kernels.kron`. Written against the array API: NumPy, CuPy and torch inputs
run on their own device.

References
----------
Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector recovery
with application to IRS-MIMO channel estimation", IEEE Trans. Signal Process., 2024.
D. P. Wipf and B. D. Rao, "Sparse Bayesian learning for basis selection", IEEE Trans. Signal
Process. 52(8), 2004.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import device as array_device
from sklearn.exceptions import ConvergenceWarning

from sparsestat._kernels._dispatch import get_namespace, to_host
from sparsestat._kernels.kron import (
    Posterior,
    am_mstep,
    dense_estep,
    feature_estep,
    kron_estep,
    kron_matvec,
    outer_ravel,
    posterior_covariance,
    svd_mstep,
)

__all__ = ["EMResult", "sbl_em", "warn_convergence"]

_TINY = 1e-300
_NULL_COLUMN = 1e-12  # factor columns with norm <= this times the largest are dropped
_COND_FLOOR = 1e-13  # E-step noise variance >= this times the largest signal variance of C
_COV_MAX = 1000  # the final covariance is formed for at most max(this, rows) kept entries


@dataclass
class EMResult:
    """Output of :func:`sbl_em`: the estimate on the full grid and the fit's diagnostics."""

    coef: Any  # (N, L) on the full grid
    sigma_diag: Any  # (N,) on the full grid, zero where pruned
    gammas: list[Any]  # per factor, full length, zeros where pruned
    gamma: Any  # (N,) full grid
    support_factors: list[np.ndarray]
    noise_var: float
    n_iter: int
    converged: bool
    rel_change: float
    scores: list[float] = field(default_factory=list)
    inner_sweeps: list[int] = field(default_factory=list)
    all_pruned: bool = False
    path: list[Any] = field(default_factory=list)
    #: posterior covariance over the entries with gamma > 0 (one factor, on request)
    covariance: Any = None
    #: the E-step each iteration used: 'kron', 'dense' (sample space) or 'feature'
    estep: str = ""
    #: the factors the final posterior belongs to: kept columns only, rows weighted
    active_factors: list[Any] = field(default_factory=list)


def _scatter(xp: Any, values: Any, keep: Sequence[np.ndarray], sizes: Sequence[int]) -> Any:
    """Place ``values`` (flat over the kept tensor, optional trailing L axis) on the full grid.

    A gather from ``values`` padded with one zero row, so that it needs no indexed assignment
    (which the array API does not have).
    """
    flat = np.zeros(1, dtype=np.int64)
    for k, n in zip(keep, sizes):
        flat = (flat[:, None] * n + k[None, :]).reshape(-1)
    n_kept = int(values.shape[0])
    source = np.full(math.prod(sizes), n_kept, dtype=np.int64)
    source[flat] = np.arange(n_kept)
    dev = array_device(values)
    pad = xp.zeros((1, *values.shape[1:]), dtype=values.dtype, device=dev)
    return xp.take(xp.concat([values, pad], axis=0), xp.asarray(source, device=dev), axis=0)


def _restrict(c: Any, keep_local: np.ndarray) -> Any:
    xp = get_namespace(c)
    idx = xp.asarray(keep_local, device=array_device(c))
    return xp.take(xp.take(c, idx, axis=0), idx, axis=1)


def _weighted_rows(
    xp: Any, factors: Sequence[Any], Y: Any, sample_weight: Any
) -> tuple[list[Any], Any, Any]:
    """Drop zero-weight rows of factor 1 (and their slices of Y); scale the rest by sqrt(w).

    Returns the new factors, the new Y and the weight of every original row of Y (a weight
    on a row of factor 1 applies to the ``M / M_1`` rows of Y it multiplies).
    """
    w = np.asarray(to_host(sample_weight), dtype=np.float64).reshape(-1)
    rows_per = int(Y.shape[0]) // int(factors[0].shape[0])
    dev = array_device(Y)
    rdtype = xp.real(Y[:1, :1]).dtype
    w_rows = xp.asarray(np.repeat(w, rows_per), dtype=rdtype, device=dev)
    pos = np.flatnonzero(w > 0)
    y_pos = (pos[:, None] * rows_per + np.arange(rows_per)[None, :]).reshape(-1)
    root = np.sqrt(w[pos])
    a0 = xp.take(factors[0], xp.asarray(pos, device=dev), axis=0)
    a0 = a0 * xp.asarray(root, dtype=a0.dtype, device=dev)[:, None]
    y_new = xp.take(Y, xp.asarray(y_pos, device=dev), axis=0)
    y_new = y_new * xp.asarray(np.repeat(root, rows_per), dtype=Y.dtype, device=dev)[:, None]
    return [a0, *factors[1:]], y_new, w_rows


def sbl_em(
    factors: Sequence[Any],
    Y: Any,
    *,
    method: str = "svd",
    noise_var: float | None = None,
    noise_init: float = 0.1,
    max_iter: int = 150,
    tol: float = 1e-4,
    prune_rel: Sequence[float] | float = 0.0,
    prune_abs: float = 0.0,
    inner_tol: float = 1e-5,
    inner_relative: bool = False,
    inner_max_iter: int = 100,
    coupling: Sequence[Any | None] | None = None,
    pc_floor: float = 1e-5,
    estep: str = "auto",
    sample_weight: Any = None,
    compute_score: bool = False,
    keep_path: bool = False,
    return_covariance: bool = False,
    callback: Callable[[int, float], None] | None = None,
) -> EMResult:
    """EM sparse Bayesian learning with a Kronecker-factored prior (classical SBL if ``I = 1``).

    One iteration is prune -> E-step -> M-step (``'am'`` or ``'svd'``; PC-KroSBL when
    ``coupling`` has a matrix for some factor) -> noise update (when ``noise_var`` is None) ->
    stop test ``||gamma_new - gamma_old|| / ||gamma_old|| <= tol`` on the full-length prior
    (pruned entries 0). A final E-step with the last prior gives the estimate.

    Parameters
    ----------
    factors : sequence of 2-D arrays (M_i, N_i), one dtype (real or complex)
    Y : array (M, L) of that dtype
    method : {'am', 'svd'}
    noise_var : float or None
        Known noise variance, or None to estimate it by EM from ``noise_init * var(Y)``
        (``var`` with the ``1 / M`` divisor, over all entries of ``Y``).
    noise_init, max_iter, tol, prune_rel, prune_abs, inner_tol, inner_relative,
    inner_max_iter, coupling, pc_floor
        As in :class:`sparsestat.bayes.KroneckerSBL`.
    estep : {'auto', 'kron', 'dense', 'feature'}
        ``'kron'``: the matrix-free Kronecker E-step; ``'dense'``: the sample-space
        (``M x M``) E-step of one explicit factor; ``'feature'``: its feature-space
        (``N x N``) form. ``'auto'`` is ``'kron'`` for several factors, and for one factor
        ``'feature'`` when it has more rows than columns, ``'dense'`` otherwise.
    sample_weight : 1-D array of length M_1 or None
        Non-negative weights of the rows of ``factors[0]``: a weight ``w`` makes the noise
        variance of the ``M / M_1`` measurements of that row ``sigma^2 / w`` (an integer
        weight counts the row that many times; a zero weight removes it).
    compute_score : bool
        Record ``log|C| + tr(Y^H C^{-1} Y) / L`` at every E-step.
    keep_path : bool
        Keep the posterior mean of every iteration's E-step (on the full grid).
    return_covariance : bool
        With one factor, also return the final posterior covariance over the entries with
        ``gamma > 0``, when there are at most ``max(1000, M)`` of them (else None).
    callback : callable(iteration, relative change) or None

    Returns
    -------
    EMResult
    """
    xp = get_namespace(Y, *factors)
    n_factors = len(factors)
    sizes = [int(a.shape[1]) for a in factors]
    m_total, n_cols = int(Y.shape[0]), int(Y.shape[1])
    rdtype = xp.real(Y[:1, :1]).dtype
    dev = array_device(Y)
    tiny = max(_TINY, float(xp.finfo(rdtype).smallest_normal))
    cond_floor = max(_COND_FLOOR, 10 * float(xp.finfo(rdtype).eps))
    rel = [float(prune_rel)] * n_factors if np.isscalar(prune_rel) else list(prune_rel)  # type: ignore[arg-type]
    m_eff: float = m_total
    if sample_weight is None:
        ay = xp.abs(Y)
        mean_sq = float(xp.mean(ay * ay))
        var_floor = max(1e-12 * mean_sq, tiny * 1e10)
        if noise_var is None:
            yc = Y - xp.mean(Y, axis=0)
            ayc = xp.abs(yc)
            var_y = float(xp.mean(ayc * ayc))
    else:
        factors, Y_w, w_rows = _weighted_rows(xp, factors, Y, sample_weight)
        m_eff = float(xp.sum(w_rows))
        ay = xp.abs(Y)
        mean_sq = float(xp.sum(w_rows[:, None] * ay * ay)) / (m_eff * n_cols)
        var_floor = max(1e-12 * mean_sq, tiny * 1e10)
        if noise_var is None:
            y_mean = xp.sum(xp.astype(w_rows, Y.dtype)[:, None] * Y, axis=0) / m_eff
            ayc = xp.abs(Y - y_mean)
            var_y = float(xp.sum(w_rows[:, None] * ayc * ayc)) / (m_eff * n_cols)
        Y = Y_w
    if noise_var is None:
        sigma2 = max(noise_init * var_y, var_floor)
        estimate_noise = True
    else:
        sigma2 = max(float(noise_var), var_floor)
        estimate_noise = False
    if estep == "auto":
        if n_factors > 1:
            estep = "kron"
        else:
            estep = "feature" if int(factors[0].shape[0]) > sizes[0] else "dense"

    keep = [np.arange(n) for n in sizes]
    active = list(factors)
    coupled = [None] * n_factors if coupling is None else list(coupling)
    gam = []
    for i, n in enumerate(sizes):
        ones = xp.ones(n, dtype=rdtype, device=dev)
        gam.append(ones if coupled[i] is None else coupled[i] @ ones)
    any_coupled = any(c is not None for c in coupled)
    gram: Any = None
    rhs: Any = None

    def _keep_only(i: int, loc: np.ndarray) -> None:
        """Drop, for good, every entry of factor ``i`` not in ``loc`` (local indices)."""
        nonlocal gram, rhs
        idx = xp.asarray(loc, device=dev)
        keep[i] = keep[i][loc]
        active[i] = xp.take(active[i], idx, axis=1)
        gam[i] = xp.take(gam[i], idx, axis=0)
        if coupled[i] is not None:
            coupled[i] = _restrict(coupled[i], loc)
        if gram is not None:
            gram = _restrict(gram, loc)
            rhs = xp.take(rhs, idx, axis=0)

    # A numerically zero factor column (e.g. pilots orthogonal to one angle) makes its slice
    # of x unidentifiable: the likelihood does not depend on its variance, which the
    # Kronecker coupling then lets drift until the true entries are pruned. Drop it first.
    for i, a in enumerate(factors):
        norms = np.asarray(to_host(xp.linalg.vector_norm(a, axis=0)), dtype=float)
        top = float(norms.max()) if norms.size else 0.0
        if top > 0 and bool(np.any(norms <= _NULL_COLUMN * top)):
            _keep_only(i, np.flatnonzero(norms > _NULL_COLUMN * top))
    if estep == "feature":
        a_h = xp.conj(active[0]).T if xp.isdtype(Y.dtype, "complex floating") else active[0].T
        gram, rhs = a_h @ active[0], a_h @ Y
        y_abs = xp.abs(Y)
        y_norm2 = float(xp.sum(y_abs * y_abs))

    def _effective_noise(act: list[Any], g: list[Any], s2: float) -> float:
        # Keep C = A Gamma A^H + s2 I numerically positive definite when the noise variance is
        # tiny next to the signal part (e.g. an almost constant y with large columns): s2 is at
        # least cond_floor times C's largest signal diagonal, the product of the factors'.
        top = 1.0
        for a, gi in zip(act, g):
            aa = xp.abs(a)
            top *= float(xp.max((aa * aa) @ xp.astype(gi, aa.dtype)))
        return max(s2, cond_floor * top)

    def _estep(act: list[Any], g: list[Any], s2: float) -> Posterior:
        s2 = _effective_noise(act, g, s2)
        if estep == "dense":
            return dense_estep(act[0], g[0], s2, Y)
        if estep == "feature":
            return feature_estep(gram, rhs, y_norm2, g[0], s2, int(act[0].shape[0]))
        return kron_estep(act, g, s2, Y)

    scores: list[float] = []
    sweeps: list[int] = []
    path: list[Any] = []
    converged, rel_change, n_iter, all_pruned = False, float("inf"), 0, False
    for n_iter in range(1, max_iter + 1):
        g_old_full = _scatter(xp, outer_ravel(gam), keep, sizes)
        # prune: each factor independently, permanently
        for i in range(n_factors):
            gi = gam[i]
            thr = max(rel[i] * float(xp.max(gi)), prune_abs) if gi.shape[0] else 0.0
            mask = to_host(gi) >= thr if thr > 0 else np.ones(gi.shape[0], dtype=bool)
            if not mask.all():
                _keep_only(i, np.flatnonzero(mask))
        if any(k.size == 0 for k in keep):
            all_pruned = True
            break
        post = _estep(active, gam, sigma2)
        if compute_score:
            scores.append(post.logdet + post.quad / n_cols)
        if keep_path:
            path.append(_scatter(xp, post.mean, keep, sizes))
        am2 = xp.abs(post.mean)
        lam = post.sigma_diag + xp.mean(am2 * am2, axis=1)
        g_prev = outer_ravel(gam)
        if method == "svd":
            gam = svd_mstep(lam, [int(k.size) for k in keep])
        else:
            gam, n_sw, _ = am_mstep(
                lam,
                gam,
                tol=inner_tol,
                relative=inner_relative,
                max_sweeps=inner_max_iter,
                coupling=coupled if any_coupled else None,
                floor=pc_floor,
            )
            sweeps.append(n_sw)
        if estimate_noise:
            resid = Y - _apply(xp, active, post.mean)
            ar = xp.abs(resid)
            ratio = post.sigma_diag / xp.where(g_prev > 0, g_prev, xp.ones_like(g_prev))
            dof = float(xp.sum(1.0 - ratio))
            sigma2 = (float(xp.sum(ar * ar)) / n_cols + sigma2 * dof) / m_eff
            sigma2 = max(sigma2, var_floor)
        g_new_full = _scatter(xp, outer_ravel(gam), keep, sizes)
        denom = max(float(xp.linalg.vector_norm(g_old_full)), _TINY)
        rel_change = float(xp.linalg.vector_norm(g_new_full - g_old_full)) / denom
        if callback is not None:
            callback(n_iter, rel_change)
        if rel_change <= tol:
            converged = True
            break

    if all_pruned:
        zeros = xp.zeros((math.prod(sizes), n_cols), dtype=Y.dtype, device=dev)
        return EMResult(
            coef=zeros,
            sigma_diag=xp.zeros(math.prod(sizes), dtype=rdtype, device=dev),
            gammas=[xp.zeros(n, dtype=rdtype, device=dev) for n in sizes],
            gamma=xp.zeros(math.prod(sizes), dtype=rdtype, device=dev),
            support_factors=keep,
            noise_var=sigma2,
            n_iter=n_iter,
            converged=False,
            rel_change=rel_change,
            scores=scores,
            inner_sweeps=sweeps,
            all_pruned=True,
            covariance=(
                xp.zeros((0, 0), dtype=Y.dtype, device=dev)
                if return_covariance and n_factors == 1
                else None
            ),
            estep=estep,
            active_factors=active,
        )
    post = _estep(active, gam, sigma2)
    if compute_score:
        scores.append(post.logdet + post.quad / n_cols)
    full_gammas = []
    for g, k, n in zip(gam, keep, sizes):
        full_gammas.append(_scatter(xp, g, [k], [n]))
    covariance = None
    pos_host = np.flatnonzero(to_host(gam[0]) > 0)
    # the K x K covariance costs O(M K^2 + K^3): formed when K is at most the number of rows
    # (or small), i.e. when it costs no more than a few E-steps
    if return_covariance and n_factors == 1 and pos_host.size <= max(_COV_MAX, active[0].shape[0]):
        pos = xp.asarray(pos_host, device=dev)
        covariance = posterior_covariance(
            xp.take(active[0], pos, axis=1),
            xp.take(gam[0], pos, axis=0),
            _effective_noise(active, gam, sigma2),
        )
    return EMResult(
        coef=_scatter(xp, post.mean, keep, sizes),
        sigma_diag=_scatter(xp, post.sigma_diag, keep, sizes),
        gammas=full_gammas,
        gamma=_scatter(xp, outer_ravel(gam), keep, sizes),
        support_factors=keep,
        noise_var=sigma2,
        n_iter=n_iter,
        converged=converged,
        rel_change=rel_change,
        scores=scores,
        inner_sweeps=sweeps,
        path=path,
        covariance=covariance,
        estep=estep,
        active_factors=active,
    )


def _apply(xp: Any, factors: Sequence[Any], v: Any) -> Any:
    if len(factors) == 1:
        return factors[0] @ v
    return kron_matvec(factors, v)


def warn_convergence(name: str, res: EMResult, max_iter: int, tol: float) -> None:
    """ConvergenceWarning naming the failed certificate, or a warning when all was pruned."""
    if res.all_pruned:
        warnings.warn(
            f"{name}: pruning removed every entry of a factor after {res.n_iter} iterations; "
            "coef_ is all zeros. Lower prune_threshold / prune_abs.",
            ConvergenceWarning,
            stacklevel=3,
        )
    elif not res.converged:
        warnings.warn(
            f"{name} did not converge in max_iter={max_iter} EM iterations: relative "
            f"change of the prior variances {res.rel_change:.3g} > tol={tol}. Increase "
            "max_iter or tol.",
            ConvergenceWarning,
            stacklevel=3,
        )
