"""Batched proximal gradient (ISTA / monotone FISTA) for coding many signals at once.

Every row ``x`` of ``X`` is coded against one dictionary ``D`` (atoms as rows) by minimising

    F(c) = 1/2 ||x - c D||^2 + P(c),

with ``P`` a separable penalty whose proximal operator works on a whole block of codes. One
Gram matrix ``G = D D^H`` serves all signals; each iteration is one GEMM over the block of
still-active rows (two GEMMs when ``D`` is very overcomplete and the residual form is
cheaper), followed by the prox on the block. Rows stop one by one: a row whose codes no
longer move leaves the block, and the block is compacted.

The implementation is written against the array API, so NumPy, CuPy and torch inputs stay on
their device; on NumPy it runs as is (the GEMM goes to BLAS). The CPU-specialised coding path
is :func:`sparsestat._kernels.gram_code.gram_code` (per-signal LARS, OMP or coordinate
descent from the Gram matrix, in Numba); ``benchmarks/bench_sparse_coding.py`` compares them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from array_api_compat import device as array_device

from sparsestat._kernels._dispatch import get_kernel, get_namespace, register, set_rows

__all__ = ["lipschitz_constant", "penalty_row_values", "pgd_sparse_code"]

ProxFn = Callable[[Any, float], Any]
RowPenaltyFn = Callable[[Any], Any]


def _is_complex(xp: Any, a: Any) -> bool:
    return bool(xp.isdtype(a.dtype, "complex floating"))


def _real_dtype(xp: Any, a: Any) -> Any:
    if not _is_complex(xp, a):
        return a.dtype
    return xp.float32 if a.dtype == xp.complex64 else xp.float64


def lipschitz_constant(D: Any, *, inflate: float = 1e-6, power_threshold: int = 2000) -> float:
    """Largest eigenvalue of ``D D^H`` (the Lipschitz constant of the data-fit gradient).

    ``eigvalsh`` on the smaller of ``D D^H`` and ``D^H D``; power iteration (100 steps from a
    fixed start) when both dimensions exceed ``power_threshold``. The result is multiplied by
    ``1 + inflate`` so that a step ``1/L`` stays strictly below the exact bound.

    Parameters
    ----------
    D : array of shape (n_components, n_features)
        Dictionary, atoms as rows (any array-API namespace; real or complex).
    inflate : float, default=1e-6
        Relative safety margin.
    power_threshold : int, default=2000
        Use power iteration when ``min(D.shape)`` exceeds this.

    Returns
    -------
    L : float
        The inflated spectral norm squared of ``D``.
    """
    xp = get_namespace(D)
    k, m = D.shape
    Dh = xp.conj(D).T if _is_complex(xp, D) else D.T
    if min(k, m) > power_threshold:
        v = xp.ones((m,), dtype=D.dtype, device=array_device(D))
        v = v / float(xp.linalg.vector_norm(v))
        lam = 0.0
        for _ in range(100):
            w = (v @ Dh) @ D
            lam = float(xp.linalg.vector_norm(w))
            if lam == 0.0:
                break
            v = w / lam
    else:
        S = D @ Dh if k <= m else Dh @ D
        lam = float(xp.max(xp.linalg.eigvalsh(S)))
    return max(lam, 0.0) * (1.0 + inflate)


def penalty_row_values(penalty: Any, C: Any) -> Any:
    """Per-row value of a separable penalty object (sum over the last axis).

    ``sparsestat.penalties`` objects return the total ``value(w)`` over all entries; the
    monotone FISTA test needs one value per signal, so the elementwise formulas are
    evaluated here on the block (values only; the proximal maps come from
    :mod:`sparsestat._kernels.prox` through ``penalty.prox``).

    Parameters
    ----------
    penalty : sparsestat.penalties object
        One of ``L1``, ``L0``, ``L1_2``, ``Lq``, ``CEL0``.
    C : array of shape (n_rows, n_components)
        Codes (real or complex).

    Returns
    -------
    values : array of shape (n_rows,)
        Real penalty value of each row.
    """
    xp = get_namespace(C)
    name = type(penalty).__name__
    alpha = float(penalty.alpha)
    A = xp.abs(C)
    if name == "L1":
        E = A
    elif name == "L0":
        E = xp.astype(A != 0, A.dtype)
    elif name == "L1_2":
        E = xp.sqrt(A)
    elif name == "Lq":
        E = A ** float(penalty.q)
    elif name == "CEL0":
        a = getattr(penalty, "atom_norms", None)
        dev = array_device(A)
        if a is None:
            a = xp.ones(A.shape[-1], dtype=A.dtype, device=dev)
        else:
            a = xp.asarray(a, dtype=A.dtype, device=dev)
        root = math.sqrt(2.0 * alpha)
        thr = root / a
        inner = alpha - 0.5 * a**2 * (A - thr) ** 2
        return xp.sum(xp.where(thr >= A, inner, xp.full_like(A, alpha)), axis=-1)
    else:
        raise ValueError(f"no row values for penalty {name!r}")
    return alpha * xp.sum(E, axis=-1)


class _Problem:
    """Linear operator pieces for one block of rows (Gram or residual form).

    The Gram form needs only ``B = X D^H`` and ``||x||^2`` per row, so a SciPy sparse ``X``
    is used through one sparse product and never densified; the residual form needs the
    rows of ``X`` themselves (a sparse block is densified, one block at a time).
    """

    def __init__(self, xp: Any, X: Any, D: Any, gram: bool) -> None:
        self.xp = xp
        self.gram = gram
        self.complex = _is_complex(xp, D) or _is_complex(xp, X)
        self.D = D
        self.Dh = xp.conj(D).T if self.complex else D.T
        if gram:
            if sp.issparse(X):
                self.B = np.asarray(X @ self.Dh)
                self.xx = np.asarray(abs(X).power(2).sum(axis=1), dtype=self.B.real.dtype)
                self.xx = self.xx.reshape(-1)
            else:
                self.B = X @ self.Dh
                self.xx = xp.sum(xp.abs(X) ** 2, axis=1)
            self.X: Any = None  # not needed in the Gram form
            self.G = D @ self.Dh
        else:
            self.X = X

    def take(self, rows: Any) -> _Problem:
        new = object.__new__(_Problem)
        new.__dict__.update(self.__dict__)
        if self.gram:
            new.B = self.B[rows]
            new.xx = self.xx[rows]
        else:
            new.X = self.X[rows]
        return new

    def lin(self, C: Any) -> Any:
        return C @ self.G if self.gram else C @ self.D

    def grad(self, A: Any) -> Any:
        return A - self.B if self.gram else (A - self.X) @ self.Dh

    def fit(self, C: Any, A: Any) -> Any:
        xp = self.xp
        if not self.gram:
            return 0.5 * xp.sum(xp.abs(self.X - A) ** 2, axis=1)
        if self.complex:
            cb = xp.real(xp.sum(C * xp.conj(self.B), axis=1))
            ca = xp.real(xp.sum(A * xp.conj(C), axis=1))
        else:
            cb = xp.sum(C * self.B, axis=1)
            ca = xp.sum(A * C, axis=1)
        return 0.5 * self.xx - cb + 0.5 * ca


def _row_max_abs(xp: Any, M: Any) -> Any:
    return xp.max(xp.abs(M), axis=1)


@register("pgd_sparse_code", "generic")
def pgd_sparse_code_generic(
    X: Any,
    D: Any,
    prox: ProxFn,
    row_penalty: RowPenaltyFn,
    *,
    lipschitz: float,
    step_size: float = 1.0,
    accelerated: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-6,
    init: Any = None,
    gram: bool | None = None,
    history: list[Any] | None = None,
) -> tuple[Any, Any]:
    """Code every row of ``X`` by ISTA or monotone FISTA (array-API version).

    See :func:`pgd_sparse_code` for the parameters. Only standard array-API operations are
    used (no item assignment through index arrays: rows that finish are collected and put
    back in order by one gather at the end), so the same code runs on NumPy, CuPy, torch
    and ``array_api_strict``.
    """
    sparse = sp.issparse(X)
    xp = get_namespace(D) if sparse else get_namespace(X, D)
    dev = array_device(D)
    n = X.shape[0]
    k = D.shape[0]
    m = D.shape[1]
    if gram is None:
        gram = k <= 2 * m
    dtype = xp.result_type(X.dtype, D.dtype)
    if sparse:
        X = X.astype(dtype) if gram else X.toarray().astype(dtype, copy=False)
    else:
        X = xp.asarray(X, dtype=dtype)
    D = xp.asarray(D, dtype=dtype)
    if init is None:
        C = xp.zeros((n, k), dtype=dtype, device=dev)
    else:
        C = xp.asarray(init, dtype=dtype, copy=True)
    gamma = float(step_size) / float(lipschitz) if lipschitz > 0 else 0.0
    if n == 0 or k == 0 or max_iter == 0:
        return C, xp.zeros((n,), dtype=xp.int64, device=dev)
    prob = _Problem(xp, X, D, gram)
    need_f = accelerated or history is not None
    rows = xp.arange(n, dtype=xp.int64, device=dev)
    Ca = C
    Aa = prob.lin(Ca)
    Fa: Any = prob.fit(Ca, Aa) + row_penalty(Ca) if need_f else None
    F_all: Any = xp.asarray(Fa, copy=True) if history is not None else None
    if history is not None:
        history.append(xp.asarray(F_all, copy=True))
    t = xp.ones((n,), dtype=_real_dtype(xp, Ca), device=dev)
    Y, AY = Ca, Aa
    finished: list[tuple[Any, Any, int]] = []  # (rows, codes, iterations) of finished rows
    for it in range(max_iter):
        Cn = prox(Y - gamma * prob.grad(AY), gamma)
        An = prob.lin(Cn)
        if need_f:
            Fn = prob.fit(Cn, An) + row_penalty(Cn)
        if accelerated:
            # monotone safeguard: where the momentum step increased F, take the ISTA step
            # from the current point instead and restart the momentum of that row
            bad = Fn > Fa
            if bool(xp.any(bad)):
                sub = prob.take(bad)
                Cb = prox(Ca[bad] - gamma * sub.grad(Aa[bad]), gamma)
                Ab = sub.lin(Cb)
                Fb = sub.fit(Cb, Ab) + row_penalty(Cb)
                bad_idx = xp.nonzero(bad)[0]
                Cn = set_rows(Cn, bad_idx, Cb)
                An = set_rows(An, bad_idx, Ab)
                Fn = set_rows(Fn, bad_idx, Fb)
                t = xp.where(bad, xp.ones_like(t), t)
        delta = _row_max_abs(xp, Cn - Ca)
        scale = _row_max_abs(xp, Ca)
        scale = xp.where(scale > 1.0, scale, xp.ones_like(scale))
        done = delta <= tol * scale
        if accelerated:
            t_new = (1.0 + xp.sqrt(1.0 + 4.0 * t * t)) / 2.0
            beta = xp.astype((t - 1.0) / t_new, Cn.dtype)[:, None]
            Y = Cn + beta * (Cn - Ca)
            AY = An + beta * (An - Aa)
            t = t_new
        else:
            Y, AY = Cn, An
        Ca, Aa = Cn, An
        if need_f:
            Fa = Fn
        if history is not None:
            F_all = set_rows(F_all, rows, Fa)
            history.append(xp.asarray(F_all, copy=True))
        last = it == max_iter - 1
        if last or bool(xp.any(done)):
            if last:
                done = xp.ones_like(done)
            finished.append((rows[done], Ca[done], it + 1))
            keep = xp.logical_not(done)
            if not bool(xp.any(keep)):
                break
            rows = rows[keep]
            prob = prob.take(keep)
            Ca, Aa, Y, AY, t = Ca[keep], Aa[keep], Y[keep], AY[keep], t[keep]
            if need_f:
                Fa = Fa[keep]
    order = xp.argsort(xp.concat([r for r, _, _ in finished]))
    C = xp.take(xp.concat([c for _, c, _ in finished], axis=0), order, axis=0)
    its = [xp.full((r.shape[0],), i, dtype=xp.int64, device=dev) for r, _, i in finished]
    return C, xp.take(xp.concat(its), order)


def pgd_sparse_code(
    X: Any,
    D: Any,
    prox: ProxFn,
    row_penalty: RowPenaltyFn,
    *,
    lipschitz: float | None = None,
    step_size: float = 1.0,
    accelerated: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-6,
    init: Any = None,
    gram: bool | None = None,
    history: list[Any] | None = None,
) -> tuple[Any, Any]:
    """Code every row of ``X`` against dictionary ``D`` by ISTA or monotone FISTA.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Signals, one per row (NumPy, CuPy or torch; real or complex).
    D : array of shape (n_components, n_features)
        Dictionary, atoms as rows, same namespace as ``X``.
    prox : callable ``prox(Z, step) -> array``
        Proximal map of ``step * P`` applied to a block ``Z`` (e.g. ``penalty.prox``).
    row_penalty : callable ``row_penalty(C) -> array of shape (n_rows,)``
        Penalty value of each row (used by monotone FISTA and ``history``).
    lipschitz : float or None, default=None
        Lipschitz constant of the gradient; computed by :func:`lipschitz_constant` if None.
    step_size : float, default=1.0
        Step as a fraction ``s`` of ``1/L``; ``0 < s <= 1`` keeps every step monotone.
    accelerated : bool, default=True
        Monotone FISTA (momentum, with an ISTA fallback and momentum restart on each row whose
        objective would increase); ISTA when False.
    max_iter : int, default=1000
        Maximum number of iterations for each row.
    tol : float, default=1e-6
        A row stops when ``max|c+ - c| <= tol * max(1, max|c|)``.
    init : array of shape (n_samples, n_components) or None, default=None
        Starting codes (zeros when None). Not modified.
    gram : bool or None, default=None
        Use the Gram form (one ``k x k`` GEMM per iteration) or the residual form (two
        ``k x m`` GEMMs); None picks Gram when ``k <= 2 m``.
    history : list or None, default=None
        When a list is given, the per-row objective after every iteration is appended to it
        (for tests; costs one extra objective evaluation per iteration for ISTA).

    Returns
    -------
    C : array of shape (n_samples, n_components)
        Codes, same namespace, device and dtype as ``X`` (the complex type if either input is
        complex).
    n_iter : array of shape (n_samples,)
        Iterations run by each row.

    Notes
    -----
    Complexity per iteration ``O(n_active k^2)`` (Gram form) or ``O(n_active k m)``; memory
    ``O(n k + k^2)``. Every step with ``step_size <= 1`` decreases ``F`` for each penalty in
    :mod:`sparsestat.penalties` (Bolte, Sabach and Teboulle, 2014); the FISTA safeguard keeps
    the same guarantee (Li and Lin, 2015).
    """
    if lipschitz is None:
        lipschitz = lipschitz_constant(D)
    kernel = get_kernel("pgd_sparse_code", D if sp.issparse(X) else X, D)
    return kernel(
        X,
        D,
        prox,
        row_penalty,
        lipschitz=lipschitz,
        step_size=step_size,
        accelerated=accelerated,
        max_iter=max_iter,
        tol=tol,
        init=init,
        gram=gram,
        history=history,
    )
