"""Sparse (CSR) input for LqRegression and IHTRegressor: peak memory and time, never densified.

Design: ``scipy.sparse.random(n, d, density)`` (CSR, float64, values uniform in [0, 1), so
the columns have nonzero means and the intercept's implicit centring is exercised), 20 nonzero
true coefficients, noise 0.1. Each fit is timed once and its peak traced memory measured with
``tracemalloc`` (NumPy and SciPy allocations), next to the size of ``X`` itself (data +
indices + indptr) and of the dense matrix that is never formed. scikit-learn's ``Lasso`` on
the same CSR matrix is the peer for l1 (it also accepts sparse input; same ``alpha``, its
relative duality-gap tolerance set to ours). ``--check`` also fits the densified problem at a
small size and prints the largest coefficient difference (the tests assert 1e-8).

Run ``cd benchmarks && OMP_NUM_THREADS=1 python bench_sparse_linear.py`` (the issue's size,
1e6 x 1e4 at 0.1 % density, needs about 1 GB of memory) or with ``--n 100000 --d 5000`` for
a quick run.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp
from _harness import bench_header, limit_threads, markdown_table

from sparsestat.linear_model import IHTRegressor, LqRegression


def make_problem(n: int, d: int, density: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng, dtype=np.float64)
    w = np.zeros(d)
    w[rng.choice(d, 20, replace=False)] = rng.choice([-2.0, 2.0], 20)
    y = X @ w + 0.1 * rng.standard_normal(n)
    return X, y, w


def measure(est, X, y):
    """(seconds, peak traced MiB) of one fit."""
    tracemalloc.start()
    t0 = time.perf_counter()
    est.fit(X, y)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=10_000)
    parser.add_argument("--density", type=float, default=1e-3)
    parser.add_argument("--check", action="store_true", help="dense comparison at 2000 x 500")
    args = parser.parse_args()
    print(bench_header("Sparse input: LqRegression and IHTRegressor on CSR"))
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    X, y, w = make_problem(args.n, args.d, args.density)
    x_mib = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    dense_gib = args.n * args.d * 8 / 2**30
    print(
        f"X: {args.n} x {args.d}, density {args.density:g}, nnz {X.nnz}; CSR {x_mib:.0f} MiB "
        f"(dense would be {dense_gib:.1f} GiB)\n"
    )
    alpha_max = float(np.max(np.abs(X.T @ (y - y.mean())))) / args.n
    cases = [
        ("LqRegression l1", LqRegression("l1", alpha=0.05 * alpha_max)),
        ("LqRegression l0", LqRegression("l0", alpha=0.05 * alpha_max)),
        ("LqRegression l1/2", LqRegression("l1/2", alpha=0.05 * alpha_max)),
        ("IHTRegressor k=20", IHTRegressor(20)),
    ]
    from sklearn.linear_model import Lasso

    cases.append(("sklearn Lasso l1", Lasso(alpha=0.05 * alpha_max, tol=1e-6)))
    rows = []
    with limit_threads(1):
        for _, est in cases:  # compile (or load) the kernels outside the timings
            est.fit(X[:500], y[:500])
        for name, est in cases:
            seconds, peak = measure(est, X, y)
            found = set(np.flatnonzero(est.coef_)) & set(np.flatnonzero(w))
            rows.append(
                [
                    name,
                    seconds,
                    peak,
                    peak / x_mib,
                    int(np.count_nonzero(est.coef_)),
                    f"{len(found)}/20",
                ]
            )
    print(
        markdown_table(
            rows,
            ["fit", "time (s)", "peak memory (MiB)", "peak / size of X", "nnz", "true found"],
        )
    )
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if args.check:
        Xs, ys, _ = make_problem(2000, 500, 0.01, seed=1)
        for est in (LqRegression("l1/2", alpha=1e-3, tol=1e-12), IHTRegressor(20)):
            a = est.fit(Xs, ys).coef_.copy()
            b = est.fit(Xs.toarray(), ys).coef_
            diff = float(np.abs(a - b).max())
            print(f"{type(est).__name__}: max |coef(CSR) - coef(dense)| = {diff:.1e}")


if __name__ == "__main__":
    main()
