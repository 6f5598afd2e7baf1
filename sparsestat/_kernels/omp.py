"""Greedy baselines for sparse recovery: complex OMP, Kronecker OMP, least squares on a support.

NumPy only (these are small reference baselines, dominated by least-squares solves).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sparsestat._kernels.kron import kron_matvec, kron_rmatvec, outer_ravel

__all__ = ["kron_columns", "kron_omp", "omp_complex"]


def omp_complex(
    A: np.ndarray, y: np.ndarray, n_nonzero: int, tol: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Orthogonal matching pursuit for real or complex ``A`` and ``y`` (1-D).

    Picks the atom maximising ``|a_j^H r| / ||a_j||``, refits by least squares, and stops
    after ``n_nonzero`` atoms or when ``||r||^2 <= tol``. Returns ``(coef, support)``.
    """
    norms = np.linalg.norm(A, axis=0)
    norms = np.where(norms > 0, norms, 1.0)
    dtype = np.result_type(A, y, np.float64)
    coef = np.zeros(A.shape[1], dtype=dtype)
    support: list[int] = []
    r = y.astype(dtype)
    sol = np.zeros(0, dtype=dtype)
    for _ in range(min(n_nonzero, A.shape[0], A.shape[1])):
        if tol is not None and np.vdot(r, r).real <= tol:
            break
        corr = np.abs(A.conj().T @ r) / norms
        corr[support] = -1.0
        support.append(int(np.argmax(corr)))
        sol = np.linalg.lstsq(A[:, support], y, rcond=None)[0]
        r = y - A[:, support] @ sol
    coef[support] = sol
    return coef, np.array(sorted(support), dtype=int)


def kron_columns(factors: Sequence[np.ndarray], flat_index: np.ndarray) -> np.ndarray:
    """Columns ``flat_index`` of ``kron(factors)`` (``M x len(flat_index)``), built per column."""
    sizes = [f.shape[1] for f in factors]
    multi = np.unravel_index(np.asarray(flat_index, dtype=int), sizes)
    cols = [
        outer_ravel([f[:, idx[j]] for f, idx in zip(factors, multi)])
        for j in range(len(flat_index))
    ]
    if not cols:
        return np.zeros((int(np.prod([f.shape[0] for f in factors])), 0))
    return np.stack(cols, axis=1)


def kron_omp(
    factors: Sequence[np.ndarray],
    y: np.ndarray,
    max_atoms_per_mode: int = 10,
    tol: float = 1e-2,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Kronecker OMP (Caiafa & Cichocki 2013): greedy per-mode index sets, Kronecker support.

    Each step takes the largest normalised entry of ``kron(A_i)^H r`` (by mode products),
    adds its per-mode indices to the sets ``S_i`` and refits ``x`` by least squares on
    ``S_1 x ... x S_I``; stops when ``||r|| <= tol ||y||``, when a set would exceed
    ``max_atoms_per_mode`` or when ``prod |S_i|`` would exceed half the number of
    measurements.
    Returns ``(coef, [S_i])``.
    """
    sizes = [f.shape[1] for f in factors]
    norms = outer_ravel([np.linalg.norm(f, axis=0) for f in factors])
    norms = np.where(norms > 0, norms, 1.0)
    dtype = np.result_type(*factors, y, np.float64)
    sets: list[list[int]] = [[] for _ in factors]
    coef = np.zeros(int(np.prod(sizes)), dtype=dtype)
    r = y.astype(dtype)
    ynorm = np.linalg.norm(y)
    while np.linalg.norm(r) > tol * ynorm:
        corr = np.abs(kron_rmatvec(factors, r)) / norms
        cand = np.unravel_index(int(np.argmax(corr)), sizes)
        new = [sorted(set(s) | {int(c)}) for s, c in zip(sets, cand)]
        # keep the refit overdetermined (factor 2): a near-square LS fit only amplifies noise
        too_many = 2 * int(np.prod([len(s) for s in new])) > y.shape[0]
        if any(len(s) > max_atoms_per_mode for s in new) or new == sets or too_many:
            break
        sets = new
        grids = np.meshgrid(*[np.asarray(s) for s in sets], indexing="ij")
        flat = np.ravel_multi_index(tuple(g.ravel() for g in grids), sizes)
        sub = [f[:, s] for f, s in zip(factors, sets)]
        # least squares on the Kronecker sub-dictionary (small: prod |S_i| columns)
        a_sub = sub[0]
        for f in sub[1:]:
            a_sub = np.kron(a_sub, f)
        sol = np.linalg.lstsq(a_sub, y, rcond=None)[0]
        coef[:] = 0
        coef[flat] = sol
        r = y - kron_matvec(factors, coef.astype(dtype))
    return coef, [np.asarray(s, dtype=int) for s in sets]
