"""Robust Kronecker-structured SBL: the EM run, then evidence-guided moves on factor entries.

EM for sparse Bayesian learning (:func:`sparsestat._solvers.sbl.sbl_em`) can end far from
the best marginal likelihood: relative pruning removes a weak but real entry of a factor for
good (with a Kronecker prior that removes a whole slice of ``x``), or the iterations stall
with many spurious entries. This module continues from the EM result with the moves of
Tipping and Faul's fast marginal-likelihood algorithm, applied to single entries of the
factor variances: every entry of a factor, in the model or not, is scored exactly
(:func:`sparsestat._kernels.kron_evidence.entry_gains`), and the entry whose best variance
lowers the cost ``log|C| + tr(Y^H C^{-1} Y) / L`` most is added, re-estimated or deleted.
Pruned entries can come back, and no entry leaves unless the evidence says so. Every move
lowers the cost, so the result is never worse in evidence than the EM run it starts from.

References
----------
M. E. Tipping and A. C. Faul, "Fast marginal likelihood maximisation for sparse Bayesian
models", AISTATS 2003.
D. P. Wipf and B. D. Rao, "Sparse Bayesian learning for basis selection", IEEE Trans. Signal
Process. 52(8), 2004.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import device as array_device

from sparsestat._kernels._dispatch import get_namespace, to_numpy
from sparsestat._kernels.kron import (
    dense_estep,
    kron_estep,
    kron_rmatvec,
    outer_ravel,
    posterior_covariance,
)
from sparsestat._kernels.kron_evidence import (
    entry_gains,
    kron_eigen,
    minimise_slice_cost,
    noise_variance_ml,
    slice_cost_at,
)
from sparsestat._solvers.sbl import EMResult, sbl_em

__all__ = [
    "MoveResult",
    "best_atom_start",
    "bic_gain",
    "evidence_moves",
    "evidence_refine",
    "robust_sbl_em",
]

#: Re-estimates that change a variance by a factor within ``exp(+-REL_TOL)`` are skipped.
REL_TOL = 1e-3
#: Entries per factor and move given the exact one-dimensional minimisation (after a grid).
N_CANDIDATES = 3


@dataclass
class MoveResult:
    """Output of :func:`evidence_moves`."""

    gammas: list[Any]  # per factor, full length, zero out of the model
    noise_var: float
    cost: float
    n_moves: int
    converged: bool
    costs: list[float] = field(default_factory=list)


def bic_gain(Y: Any) -> float:
    """Cost decrease a move must bring: the BIC price of one hyperparameter.

    Bayesian information criterion: a parameter is worth ``ln(n) / 2`` of log likelihood,
    ``n`` the number of real observations (``M L`` for real data, ``2 M L`` for complex).
    The cost ``log|C| + tr(Y^H C^{-1} Y) / L`` is ``2 / L`` times the negative log likelihood
    for real data and ``1 / L`` times it for complex data.
    """
    xp = get_namespace(Y)
    cplx = xp.isdtype(Y.dtype, "complex floating")
    n_cols = int(Y.shape[1])
    n_obs = int(Y.shape[0]) * n_cols * (2 if cplx else 1)
    return math.log(max(n_obs, 2)) / (2 * n_cols) * (1 if cplx else 2)


def _normalise(xp: Any, gam: list[Any]) -> None:
    """Unit 2-norm for factors 1..I-1, the scale carried by the last one (in place)."""
    for i in range(len(gam) - 1):
        nrm = float(xp.linalg.vector_norm(gam[i]))
        if nrm > 0:
            gam[i] = gam[i] / nrm
            gam[-1] = gam[-1] * nrm


def _best_move(
    factors: Sequence[Any], gam: Sequence[Any], eig: Any, i: int, gain_tol: float
) -> tuple[int, float]:
    """The move on factor ``i`` that lowers the cost most, or ``(-1, 0)`` if there is none.

    An entry out of the model is added when its best variance lowers the cost by at least
    ``gain_tol``; an entry in it is re-estimated when that gains ``gain_tol``, and deleted
    when even its best variance is worth less than ``gain_tol / 2`` (so an entry is kept only
    if it earns its place, and an added entry is not deleted at once).
    """
    lam, q = entry_gains(factors, gam, eig, i)
    lam_np, q_np = to_numpy(lam), to_numpy(q)
    g_np = np.asarray(to_numpy(gam[i]), dtype=np.float64)
    f_cur = slice_cost_at(lam_np, q_np, g_np)
    # exact minimisation for the entries in the model and for the best few of the others
    # after a coarse pass over every entry
    _, f_grid = minimise_slice_cost(lam_np, q_np, n_newton=0)
    inside = np.flatnonzero(g_np > 0)
    outside = np.flatnonzero(g_np <= 0)
    outside = outside[np.argsort(f_grid[outside])[:N_CANDIDATES]]
    cand = np.concatenate([inside, outside])
    s_c, f_c = minimise_slice_cost(lam_np[cand], q_np[cand])
    gain = f_c - f_cur[cand]
    new = s_c.copy()
    delete = (g_np[cand] > 0) & (f_c > -gain_tol / 2)
    gain[delete] = -f_cur[cand][delete]
    new[delete] = 0.0
    if inside.size <= 1:  # a factor keeps at least one entry
        gain[delete] = np.inf
    g_c = g_np[cand]
    both = (g_c > 0) & (new > 0)
    ratio = np.where(both, new, 1.0) / np.where(both, g_c, 1.0)
    small = both & (np.abs(np.log(ratio)) <= REL_TOL)
    gain[small | (~delete & (gain > -gain_tol))] = np.inf
    k = int(np.argmin(gain))
    if not np.isfinite(gain[k]):
        return -1, 0.0
    return int(cand[k]), float(new[k])


def _best_swap(
    factors: Sequence[Any], gam: Sequence[Any], eig: Any, s2: float, Y: Any, gain_tol: float
) -> tuple[int, int, int, float]:
    """The exchange of one entry of a factor for another that lowers the cost most.

    For each entry ``j`` in the model, the model without it is scored exactly for every other
    entry ``k`` of the same factor (:func:`entry_gains`); the best ``(i, j, k, s)`` is returned
    when replacing ``j`` by ``k`` (variance ``s``) lowers the cost by at least ``gain_tol``,
    else ``(-1, -1, -1, 0)`` (the only entry of a factor is not exchanged; adds and deletes
    replace it). Single moves cannot make such an exchange when several spurious entries
    share the energy of one true entry (each alone is worth keeping, the true one alone is
    not worth adding).
    """
    xp = get_namespace(Y, *factors)
    cost = eig.cost
    best = (-gain_tol, -1, -1, -1, 0.0)
    for i in range(len(factors)):
        g_np = np.asarray(to_numpy(gam[i]), dtype=np.float64)
        for j in np.flatnonzero(g_np > 0):
            g_j = g_np.copy()
            g_j[j] = 0.0
            trial = list(gam)
            trial[i] = xp.asarray(g_j, dtype=gam[i].dtype, device=array_device(gam[i]))
            if not np.any(g_j > 0):
                continue
            eig_j = kron_eigen(factors, trial, s2, Y)
            lam, q = entry_gains(factors, trial, eig_j, i)
            out = np.flatnonzero(g_j <= 0)
            out = out[out != j]
            if out.size == 0:
                continue
            s_k, f_k = minimise_slice_cost(to_numpy(lam)[out], to_numpy(q)[out])
            k = int(np.argmin(f_k))
            change = eig_j.cost + float(f_k[k]) - cost
            if change < best[0]:
                best = (change, i, int(j), int(out[k]), float(s_k[k]))
    return best[1], best[2], best[3], best[4]


def evidence_moves(
    factors: Sequence[Any],
    Y: Any,
    gammas: Sequence[Any],
    noise_var: float,
    *,
    estimate_noise: bool = False,
    var_floor: float = 0.0,
    max_moves: int = 500,
    gain_tol: float | None = None,
    record: bool = False,
) -> MoveResult:
    """Greedy coordinate descent of the SBL cost over single factor entries.

    Factors are visited in turn; for factor ``i`` every entry is scored against the model
    without it and the best move (add, re-estimate or delete, Tipping and Faul) is applied
    when it lowers the cost by at least ``gain_tol``. Stops when a full round over the factors
    finds no such move (and, with ``estimate_noise``, the maximum-evidence noise variance has
    settled) or after ``max_moves`` moves.

    Parameters
    ----------
    factors : sequence of 2-D arrays (M_i, N_i), one dtype
    Y : array (M, L) of that dtype
    gammas : sequence of 1-D real arrays (N_i,)
        Starting variances (zero: out of the model); each factor needs a positive entry.
    noise_var : float
        Noise variance (fixed, or the start of its estimate).
    estimate_noise : bool
        Re-estimate the noise variance by maximum evidence every 5 moves and at the end.
    var_floor : float
        Lower bound of the noise variance.
    max_moves : int
    gain_tol : float or None
        Cost decrease an add or re-estimate must bring (an entry is deleted when worth less
        than half of it); None is :func:`bic_gain`.
    record : bool
        Keep the cost after every move in ``costs``.

    Returns
    -------
    MoveResult
    """
    xp = get_namespace(Y, *factors)
    dev = array_device(Y)
    gain_tol = bic_gain(Y) if gain_tol is None else float(gain_tol)
    gam = [xp.asarray(g, copy=True) for g in gammas]
    n_factors = len(factors)
    s2 = float(noise_var)
    costs: list[float] = []
    eig = kron_eigen(factors, gam, s2, Y)
    n_moves, idle, i = 0, 0, 0
    while n_moves < max_moves:
        j, new = _best_move(factors, gam, eig, i, gain_tol)
        fi, i = i, (i + 1) % n_factors
        if j < 0:
            idle += 1
            if idle < n_factors:
                continue
            if estimate_noise:
                s2_new = noise_variance_ml(eig, var_floor)
                if abs(math.log(s2_new / s2)) > REL_TOL:
                    s2, idle = s2_new, 0
                    eig = kron_eigen(factors, gam, s2, Y)
                    continue
            si, sj, sk, s_new = _best_swap(factors, gam, eig, s2, Y, gain_tol)
            if si < 0:
                break
            g_np = np.array(to_numpy(gam[si]), dtype=np.float64)
            g_np[sj], g_np[sk] = 0.0, s_new
            gam[si] = xp.asarray(g_np, dtype=gam[si].dtype, device=dev)
            eig = kron_eigen(factors, gam, s2, Y)
            n_moves, idle = n_moves + 1, 0
            if record:
                costs.append(eig.cost)
            continue
        idle = 0
        n_moves += 1
        g_np = np.array(to_numpy(gam[fi]), dtype=np.float64)
        g_np[j] = new
        gam[fi] = xp.asarray(g_np, dtype=gam[fi].dtype, device=dev)
        if n_moves % 20 == 0:
            _normalise(xp, gam)
        if estimate_noise and n_moves % 5 == 0:
            s2 = noise_variance_ml(kron_eigen(factors, gam, s2, Y), var_floor)
        eig = kron_eigen(factors, gam, s2, Y)
        if record:
            costs.append(eig.cost)
    _normalise(xp, gam)
    eig = kron_eigen(factors, gam, s2, Y)
    return MoveResult(
        gammas=gam,
        noise_var=s2,
        cost=eig.cost,
        n_moves=n_moves,
        converged=n_moves < max_moves,
        costs=costs,
    )


def best_atom_start(factors: Sequence[Any], Y: Any, noise_var: float) -> list[Any]:
    """Variances of one Kronecker atom: the column of ``kron A_i`` best correlated with ``Y``.

    ``|a^H Y|^2 / ||a||^2`` over all ``N`` atoms comes from one matrix-free ``A^H Y``; the
    atom's entries get variance 1, except the last factor's, set to its maximum-evidence
    value. Used when the EM run pruned a factor empty.
    """
    xp = get_namespace(Y, *factors)
    dev = array_device(Y)
    corr = xp.abs(kron_rmatvec(factors, Y))
    power = xp.sum(corr * corr, axis=1)
    norms = outer_ravel([xp.sum(xp.abs(a) ** 2, axis=0) for a in factors])
    score = xp.where(norms > 0, power / xp.where(norms > 0, norms, xp.ones_like(norms)), 0.0)
    sizes = [int(a.shape[1]) for a in factors]
    idx = np.unravel_index(int(xp.argmax(score)), sizes)
    rdtype = xp.real(Y[:1, :1]).dtype
    gam_np = [np.zeros(n) for n in sizes]
    for g, jk in zip(gam_np, idx):
        g[int(jk)] = 1.0
    gam = [xp.asarray(g, dtype=rdtype, device=dev) for g in gam_np]
    last = len(factors) - 1
    eig = kron_eigen(factors, gam, noise_var, Y)
    lam, q = entry_gains(factors, gam, eig, last)
    j = int(idx[last])
    s_best, _ = minimise_slice_cost(to_numpy(lam)[j : j + 1], to_numpy(q)[j : j + 1])
    if s_best[0] > 0:
        gam_np[last][j] = float(s_best[0])
        gam[last] = xp.asarray(gam_np[last], dtype=rdtype, device=dev)
    return gam


def _on_grid(xp: Any, values: Any, keep: Sequence[np.ndarray], sizes: Sequence[int]) -> Any:
    """Values over the kept tensor ``ix_(*keep)`` (flat, optional trailing axis) on the grid."""
    flat = np.ravel_multi_index(np.ix_(*keep), sizes).reshape(-1)
    dev = array_device(values)
    out = xp.zeros((math.prod(sizes), *values.shape[1:]), dtype=values.dtype, device=dev)
    out[xp.asarray(flat, device=dev), ...] = values
    return out


def evidence_refine(
    res: EMResult,
    factors: Sequence[Any],
    Y: Any,
    *,
    estimate_noise: bool,
    gain_tol: float | None = None,
    max_moves: int | None = None,
    compute_score: bool = False,
    return_covariance: bool = False,
) -> EMResult:
    """Robust KroSBL's second stage: :func:`evidence_moves` from an EM result.

    The moves run twice, in the uncoupled Kronecker model with the EM run's noise variance:
    from the EM run's prior variances (effective ones for pattern-coupled factors; skipped
    if a factor was pruned empty) and from :func:`best_atom_start`. The run with the lower
    penalised cost (the cost plus ``gain_tol`` per entry in the model, the criterion the moves
    follow) is kept; ``gain_tol`` None is :func:`bic_gain`. The returned :class:`EMResult`
    holds the posterior of the final variances; ``n_iter`` counts the EM iterations,
    ``converged`` says whether the moves stopped by themselves (``max_moves``, default
    ``10 sum N_i + 100``, was not reached) and ``scores`` continues the EM scores with the
    cost after every move of the kept run when ``compute_score`` is set. With one factor and
    ``return_covariance``, ``covariance`` is the posterior covariance over the kept entries.
    """
    xp = get_namespace(Y, *factors)
    ay = xp.abs(Y)
    var_floor = max(1e-12 * float(xp.mean(ay * ay)), 1e-290)
    s2 = max(float(res.noise_var), var_floor)
    gain = bic_gain(Y) if gain_tol is None else float(gain_tol)
    n_moves = 10 * sum(int(a.shape[1]) for a in factors) + 100
    starts = [best_atom_start(factors, Y, s2)]
    if not res.all_pruned:
        starts.insert(0, res.gammas)
    best, best_score = None, math.inf
    for start in starts:
        run = evidence_moves(
            factors,
            Y,
            start,
            s2,
            estimate_noise=estimate_noise,
            var_floor=var_floor,
            max_moves=n_moves if max_moves is None else max_moves,
            gain_tol=gain,
            record=compute_score,
        )
        # the criterion of the moves: the cost plus the price of every entry in the model
        score = run.cost + gain * sum(int(np.sum(to_numpy(g) > 0)) for g in run.gammas)
        if score < best_score:
            best, best_score = run, score
    assert best is not None
    sizes = [int(a.shape[1]) for a in factors]
    keep = [np.flatnonzero(to_numpy(g) > 0) for g in best.gammas]
    dev = array_device(Y)
    active = [xp.take(a, xp.asarray(k, device=dev), axis=1) for a, k in zip(factors, keep)]
    g_act = [xp.take(g, xp.asarray(k, device=dev), axis=0) for g, k in zip(best.gammas, keep)]
    covariance = None
    if len(factors) == 1:
        post = dense_estep(active[0], g_act[0], best.noise_var, Y)
        if return_covariance:
            covariance = posterior_covariance(active[0], g_act[0], best.noise_var)
    else:
        post = kron_estep(active, g_act, best.noise_var, Y)
    return EMResult(
        coef=_on_grid(xp, post.mean, keep, sizes),
        sigma_diag=_on_grid(xp, post.sigma_diag, keep, sizes),
        gammas=best.gammas,
        gamma=outer_ravel(best.gammas),
        support_factors=keep,
        noise_var=best.noise_var,
        n_iter=res.n_iter,
        converged=best.converged,
        rel_change=0.0 if best.converged else res.rel_change,
        scores=list(res.scores) + best.costs,
        inner_sweeps=res.inner_sweeps,
        path=res.path,
        covariance=covariance,
        estep="dense" if len(factors) == 1 else "kron",
        active_factors=active,
    )


def robust_sbl_em(
    factors: Sequence[Any],
    Y: Any,
    *,
    gain_tol: float | None = None,
    max_moves: int | None = None,
    **em_settings: Any,
) -> EMResult:
    """Robust KroSBL: :func:`sbl_em` with ``em_settings``, then :func:`evidence_refine`."""
    res = sbl_em(factors, Y, **em_settings)
    return evidence_refine(
        res,
        factors,
        Y,
        estimate_noise=em_settings.get("noise_var") is None,
        gain_tol=gain_tol,
        max_moves=max_moves,
        compute_score=bool(em_settings.get("compute_score")),
        return_covariance=bool(em_settings.get("return_covariance")),
    )
