"""Sparse coding of many signals: LqSparseCoder against scikit-learn's SparseCoder and SPAMS.

Problem (issue 3): natural 8x8 patches of scikit-learn's sample images (20,000 signals, 64
dims) coded against a 2-D overcomplete DCT dictionary of 256 unit-norm atoms, with the l1 and
the l0 penalty. Peers: ``SparseCoder(transform_algorithm='lasso_cd' | 'lasso_lars' | 'omp')``
and SPAMS (``spams.lasso`` LARS, ``spams.omp``) when ``spams-bin`` is installed. Every code
matrix is scored outside the solvers by the same objective
``mean_i 1/2 ||x_i - c_i D||^2 + alpha P(c_i)`` (for OMP, the l0 objective of its codes at
our alpha: SPAMS's ``omp`` with ``lambda1 = alpha`` stops at the same l0 price per atom and
gives the same codes as our pursuit before its polish; scikit-learn's OMP gets our mean
support size). "rel. objective" is ``(F_row - F_ours) / F_ours`` over the same signals,
with ``F_ours`` from the default solver of the penalty ('lars' for l1, 'omp' for l0).

Ours: the defaults for l1 (``solver='auto'``, i.e. the Numba LARS-lasso homotopy, exact) and
``solver='omp'`` for l0, plus the batched FISTA and Gram coordinate descent for reference.
Everything single-threaded (BLAS, Numba and SPAMS ``numThreads=1``). Our default and SPAMS
are timed alternately, five runs each after a warm-up, and the minimum of each is reported
(the load of a shared machine drifts); the other rows are single runs (after compilation).

"% GEMM floor" is the time of the dense products a method cannot avoid divided by its wall
time: for FISTA one ``(rows x k) @ (k x k)`` product per active row and iteration, for the
Gram coders the single ``X @ D.T``.

Rows marked "(subset)" are too slow to run on all signals on a shared machine: they were
timed on the first ``SUBSET`` signals and their time and signals/s extrapolated linearly to
the full set (their objective is compared with ours on the same subset).

Run ``python benchmarks/bench_sparse_coding.py`` (``--quick`` for 2,000 signals).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from _harness import bench_header, limit_threads, markdown_table, ratio, time_call
from sklearn.decomposition import SparseCoder

from sparsestat._kernels.pgd import lipschitz_constant, penalty_row_values, pgd_sparse_code
from sparsestat.datasets import load_image_patches, make_dct_dictionary
from sparsestat.decomposition import LqSparseCoder, lq_sparse_encode
from sparsestat.penalties import L0, L1

QUICK = "--quick" in sys.argv
N_PER_IMAGE = 1000 if QUICK else 10000
SUBSET = 2000
ALPHA = {"l1": 0.5, "l0": 0.2}


def objective_rows(X, D, C, penalty, alpha):
    pen = L1(alpha) if penalty == "l1" else L0(alpha)
    return 0.5 * np.sum((X - C @ D) ** 2, axis=1) + penalty_row_values(pen, C)


def gemm_time_fista(X, D, penalty, alpha, tol):
    """GEMM time FISTA needs for its per-row iteration counts on ``X``."""
    pen = L1(alpha) if penalty == "l1" else L0(alpha)
    _, n_iter = pgd_sparse_code(
        X,
        D,
        pen.prox,
        lambda C: penalty_row_values(pen, C),
        lipschitz=lipschitz_constant(D),
        max_iter=1000,
        tol=tol,
    )
    C = np.ones((X.shape[0], D.shape[0]))
    G = D @ D.T
    t_gemm, _ = time_call(lambda: C @ G, repeat=5)
    return t_gemm * float(np.mean(n_iter))


def main() -> None:
    print(bench_header("Sparse coding (LqSparseCoder vs SparseCoder / SPAMS)"))
    X = load_image_patches(8, n_patches=N_PER_IMAGE, random_state=0)
    D = make_dct_dictionary(8, 16, drop_dc=False)
    n = X.shape[0]
    sub = min(SUBSET, n)
    print(f"{n} signals x {X.shape[1]} dims x {D.shape[0]} atoms; subset rows: first {sub}\n")
    try:
        import spams  # type: ignore[import-not-found]
    except ImportError:
        spams = None
    Xf, Df = np.asfortranarray(X.T), np.asfortranarray(D.T)
    rows = []
    with limit_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_gemm, _ = time_call(lambda: X @ D.T, repeat=5)
        for penalty in ("l1", "l0"):
            alpha = ALPHA[penalty]
            default = "auto" if penalty == "l1" else "omp"
            # compile / load the Numba kernels outside the timings
            lq_sparse_encode(X[:20], D, penalty=penalty, alpha=alpha, solver=default)

            def ours(p=penalty, a=alpha, s=default):
                return lq_sparse_encode(X, D, penalty=p, alpha=a, solver=s)

            spams_fn = None
            if spams is not None and penalty == "l1":
                spams_fn = lambda a=alpha: (  # noqa: E731
                    spams.lasso(Xf, D=Df, lambda1=a, mode=2, numThreads=1).toarray().T
                )
            elif spams is not None:
                spams_fn = lambda a=alpha: (  # noqa: E731
                    spams.omp(Xf, D=Df, lambda1=a, numThreads=1).toarray().T
                )
            # ours and SPAMS alternately (a shared machine's load drifts), minimum of 5 each
            ours()
            if spams_fn is not None:
                spams_fn()
            t_o, t_s = [], []
            for _ in range(5):
                t0 = time.perf_counter()
                C_ours = ours()
                t_o.append(time.perf_counter() - t0)
                if spams_fn is not None:
                    t0 = time.perf_counter()
                    C_spams = spams_fn()
                    t_s.append(time.perf_counter() - t0)
            t_ours = min(t_o)
            F_ours = objective_rows(X, D, C_ours, penalty, alpha)

            def add(
                name,
                t,
                C,
                full,
                floor="",
                penalty=penalty,
                alpha=alpha,
                F_ours=F_ours,
                t_ours=t_ours,
                C_ours=C_ours,
            ):
                m = n if full else sub
                F = objective_rows(X[:m], D, C, penalty, alpha)
                t_full = t if full else t * n / sub
                rel = (F.mean() - F_ours[:m].mean()) / F_ours[:m].mean()
                rows.append(
                    [
                        penalty,
                        name + ("" if full else " (subset)"),
                        t_full,
                        n / t_full,
                        float(F.mean()),
                        f"{rel:+.1e}",
                        float(np.mean(np.count_nonzero(C, axis=1))),
                        ratio(t_full, t_ours) if C is not C_ours else "",
                        floor,
                    ]
                )

            add(
                "LqSparseCoder (auto = lars)" if penalty == "l1" else "LqSparseCoder (omp)",
                t_ours,
                C_ours,
                True,
                f"{100 * t_gemm / t_ours:.1f}%",
            )
            nnz_ours = float(np.mean(np.count_nonzero(C_ours, axis=1)))
            Xs = X[:sub]
            for solver, tol in (("fista", 1e-4 if penalty == "l1" else 1e-6), ("cd", 1e-6)):
                lq_sparse_encode(Xs[:20], D, penalty=penalty, alpha=alpha, solver=solver)
                t, C = time_call(
                    lambda p=penalty, a=alpha, s=solver, tl=tol, Xs=Xs: lq_sparse_encode(
                        Xs, D, penalty=p, alpha=a, solver=s, tol=tl
                    ),
                    repeat=1,
                    warmup=0,
                )
                floor = (
                    f"{100 * gemm_time_fista(Xs, D, penalty, alpha, tol) / t:.0f}%"
                    if solver == "fista"
                    else f"{100 * t_gemm * sub / n / t:.1f}%"
                )
                add(f"LqSparseCoder ({solver}, tol={tol:g})", t, C, False, floor)

            peers = []
            if penalty == "l1":
                for algo, full in (("lasso_cd", True), ("lasso_lars", False)):
                    sc = SparseCoder(
                        D, transform_algorithm=algo, transform_alpha=alpha, transform_max_iter=1000
                    )
                    peers.append((f"SparseCoder({algo})", sc.transform, full))
                if spams is not None:
                    peers.append(("SPAMS lasso (LARS)", None, True))
            else:
                k_nnz = max(1, int(round(nnz_ours)))
                sc = SparseCoder(D, transform_algorithm="omp", transform_n_nonzero_coefs=k_nnz)
                peers.append((f"SparseCoder(omp, k={k_nnz})", sc.transform, True))
                if spams is not None:
                    peers.append(("SPAMS omp (lambda1=alpha)", None, True))
            for name, fn, full in peers:
                Xp = X if full else Xs
                if fn is None:  # SPAMS, timed beside ours above
                    t_peer, Cp = min(t_s), C_spams
                else:
                    t0 = time.perf_counter()
                    Cp = fn(Xp)
                    t_peer = time.perf_counter() - t0
                add(name, t_peer, Cp, full)
            if spams is None:
                rows.append([penalty, "SPAMS", "", "", "", "", "", "not installed", ""])
    print(
        markdown_table(
            rows,
            [
                "penalty",
                "solver",
                "time (s)",
                "signals/s",
                "objective",
                "rel. objective",
                "nnz/signal",
                "ours (default) faster by",
                "% GEMM floor",
            ],
        )
    )
    t0 = time.perf_counter()
    LqSparseCoder(D, penalty="cel0", alpha=0.1).transform(X[:10])
    print(f"\nfirst call of another penalty (cel0, 10 signals): {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
