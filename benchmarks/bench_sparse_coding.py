"""Sparse coding of many signals: LqSparseCoder against scikit-learn's SparseCoder and SPAMS.

Problem (issue 3): natural 8x8 patches of scikit-learn's sample images (20,000 signals, 64
dims) coded against a 2-D overcomplete DCT dictionary of 256 unit-norm atoms, with the l1 and
the l0 penalty. Peers: ``SparseCoder(transform_algorithm='lasso_cd' | 'lasso_lars' | 'omp')``
and SPAMS (``spams.lasso`` LARS, ``spams.omp``) when ``spams-bin`` is installed. Every code
matrix is scored outside the solvers by the same objective
``mean_i 1/2 ||x_i - c_i D||^2 + alpha P(c_i)`` (for OMP, the l0 objective of its codes at
our alpha, with its sparsity set to our mean support size). Ours runs at ``tol=1e-4`` for l1
(its objective then matches the exact solvers to 4-5 digits, see the table) and 1e-6 for l0;
``solver='cd'`` (Gram coordinate descent in Numba) at ``tol=1e-6``. The ratio column compares
each peer with the faster of our two solvers.

"% GEMM floor" is the time the GEMMs alone need for our iteration counts (one
``(rows x k) @ (k x k)`` product per active row and iteration, at the measured GEMM speed)
divided by our wall time.

Run ``python benchmarks/bench_sparse_coding.py`` (``--quick`` for 2,000 signals).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from _harness import bench_header, limit_threads, markdown_table, ratio, time_call

from sparsestat._kernels.pgd import lipschitz_constant, penalty_row_values, pgd_sparse_code
from sparsestat.datasets import load_image_patches, make_dct_dictionary
from sparsestat.decomposition import LqSparseCoder, lq_sparse_encode
from sparsestat.penalties import L0, L1

QUICK = "--quick" in sys.argv
N_PER_IMAGE = 1000 if QUICK else 10000
ALPHA = {"l1": 0.5, "l0": 0.2}
TOL = {"l1": 1e-4, "l0": 1e-6}
TOL_CD = {"l1": 1e-6, "l0": 1e-6}


def objective(X, D, C, penalty, alpha):
    pen = L1(alpha) if penalty == "l1" else L0(alpha)
    return float(np.mean(0.5 * np.sum((X - C @ D) ** 2, axis=1) + penalty_row_values(pen, C)))


def gemm_floor(X, D, penalty, alpha):
    pen = L1(alpha) if penalty == "l1" else L0(alpha)
    _, n_iter = pgd_sparse_code(
        X,
        D,
        pen.prox,
        lambda C: penalty_row_values(pen, C),
        lipschitz=lipschitz_constant(D),
        max_iter=1000,
        tol=TOL[penalty],
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
    print(f"{n} signals x {X.shape[1]} dims x {D.shape[0]} atoms\n")
    try:
        import spams  # type: ignore[import-not-found]
    except ImportError:
        spams = None
    rows = []
    with limit_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for penalty in ("l1", "l0"):
            alpha = ALPHA[penalty]

            t_ours = None
            for solver, tol in (("fista", TOL[penalty]), ("cd", TOL_CD[penalty])):

                def ours(penalty=penalty, alpha=alpha, solver=solver, tol=tol):
                    return lq_sparse_encode(
                        X, D, penalty=penalty, alpha=alpha, tol=tol, solver=solver
                    )

                t, C = time_call(ours, repeat=3)
                F = objective(X, D, C, penalty, alpha)
                nnz = float(np.mean(np.count_nonzero(C, axis=1)))
                floor = (
                    f"{100 * gemm_floor(X, D, penalty, alpha) / t:.0f}%"
                    if (solver == "fista")
                    else ""
                )
                t_ours = t if t_ours is None else min(t_ours, t)
                rows.append(
                    [penalty, f"LqSparseCoder ({solver}, tol={tol:g})", t, n / t, F, nnz, "", floor]
                )
            peers = []
            if penalty == "l1":
                for algo in ("lasso_cd", "lasso_lars"):
                    from sklearn.decomposition import SparseCoder

                    sc = SparseCoder(
                        D, transform_algorithm=algo, transform_alpha=alpha, transform_max_iter=1000
                    )
                    peers.append((f"SparseCoder({algo})", sc.transform))
                if spams is not None:
                    Xf, Df = np.asfortranarray(X.T), np.asfortranarray(D.T)
                    peers.append(
                        (
                            "SPAMS lasso (LARS)",
                            lambda _X, Xf=Xf, Df=Df, a=alpha: (
                                spams.lasso(Xf, D=Df, lambda1=a, mode=2, numThreads=1).toarray().T
                            ),
                        )
                    )
            else:
                k_nnz = max(1, int(round(nnz)))
                from sklearn.decomposition import SparseCoder

                sc = SparseCoder(D, transform_algorithm="omp", transform_n_nonzero_coefs=k_nnz)
                peers.append((f"SparseCoder(omp, k={k_nnz})", sc.transform))
                if spams is not None:
                    Xf, Df = np.asfortranarray(X.T), np.asfortranarray(D.T)
                    peers.append(
                        (
                            "SPAMS omp (lambda1=2 alpha)",
                            lambda _X, Xf=Xf, Df=Df, a=alpha: (
                                spams.omp(Xf, D=Df, lambda1=2 * a, numThreads=1).toarray().T
                            ),
                        )
                    )
            for name, fn in peers:
                t0 = time.perf_counter()
                Cp = fn(X)
                t_peer = time.perf_counter() - t0
                Fp = objective(X, D, Cp, penalty, alpha)
                rows.append(
                    [
                        penalty,
                        name,
                        t_peer,
                        n / t_peer,
                        Fp,
                        float(np.mean(np.count_nonzero(Cp, axis=1))),
                        ratio(t_peer, t_ours),
                        "",
                    ]
                )
            if spams is None:
                rows.append(
                    [
                        penalty,
                        "SPAMS",
                        float("nan"),
                        float("nan"),
                        float("nan"),
                        float("nan"),
                        "not installed",
                        "",
                    ]
                )
    print(
        markdown_table(
            rows,
            [
                "penalty",
                "solver",
                "time (s)",
                "signals/s",
                "objective",
                "nnz/signal",
                "ours (best) faster by",
                "% GEMM floor",
            ],
        )
    )
    t0 = time.perf_counter()
    LqSparseCoder(D, penalty="cel0", alpha=0.1).transform(X[:10])
    print(f"\nfirst call of another penalty (cel0, 10 signals): {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
