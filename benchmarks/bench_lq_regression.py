"""LqRegression (working-set CD in Numba) against skglm on l1, l1/2 and l2/3 penalties.

Problems: ``make_sparse_regression`` with an i.i.d. and an equicorrelated (rho=0.6) design, 20
nonzero coefficients, noise 0.1, no intercept. skglm runs ``GeneralizedLinearEstimator(
Quadratic(), L1 | L0_5 | L2_3, AndersonCD(ws_strategy='fixpoint' for non-convex,
fit_intercept=False))`` at the same alpha. One stopping criterion for both: each solution is
scored outside the solvers by the objective and by the same relative fixed-point distance
``max_j L_j |w_j - prox(w_j - g_j / L_j)| / (||X^T y||_inf / n)`` (the certificate of
``LqRegression`` for non-convex penalties); the tolerances were set so that both reach a
distance below 1e-6.

The first fit of LqRegression in a fresh interpreter (Numba compile or cache load) is reported
as well. A second table runs l1 on two ill-conditioned real designs (scikit-learn's breast
cancer data unscaled, feature scales 1e-3 to 1e3; statsmodels' star98 standardised, condition
number 361) against scikit-learn's ``Lasso`` at the same relative duality gap (1e-6), and
reports the coordinate-descent epochs each needed.

Both fits are timed by the median of 5 calls; ``--runs`` repeats the whole table and the last
column gives the speed-up of every run.

Run ``cd benchmarks && OMP_NUM_THREADS=1 python bench_lq_regression.py --runs 3``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np
from _harness import bench_header, limit_threads, markdown_table, time_call

from sparsestat.datasets import make_sparse_regression
from sparsestat.linear_model import LqRegression
from sparsestat.penalties import make_penalty

PROBLEMS = [("iid", 500, 2000), ("equicorrelated", 500, 2000)]
PENALTIES = [("l1", 1.0, "L1"), ("l1/2", 0.5, "L0_5"), ("lq", 2 / 3, "L2_3")]


def fixpoint_distance(X, y, w, name, alpha, q):
    n = X.shape[0]
    L = np.sum(X**2, axis=0) / n
    g = -X.T @ (y - X @ w) / n
    pen = make_penalty(name, alpha=alpha, q=q)
    return float(
        np.max(L * np.abs(w - pen.prox(w - g / L, 1.0 / L))) / (np.max(np.abs(X.T @ y)) / n)
    )


def objective(X, y, w, name, alpha, q):
    pen = make_penalty(name, alpha=alpha, q=q)
    return float(0.5 * np.mean((y - X @ w) ** 2) + pen.value(w))


def first_fit_time() -> tuple[float, float]:
    """(import time, first fit time) of LqRegression in a fresh interpreter."""
    code = (
        "import time, numpy as np; t = time.perf_counter();"
        "from sparsestat.linear_model import LqRegression;"
        "t1 = time.perf_counter();"
        "X = np.random.default_rng(0).standard_normal((50, 20)); y = X[:, 0];"
        "LqRegression('l1/2', alpha=0.1).fit(X, y);"
        "print(t1 - t, time.perf_counter() - t1)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imp, fit = (float(v) for v in out.stdout.split())
    return imp, fit


def ill_conditioned() -> None:
    """l1 on ill-conditioned real designs: epochs and time against scikit-learn's Lasso."""
    import statsmodels.api as sm
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import Lasso
    from sklearn.preprocessing import StandardScaler

    X1, y1 = load_breast_cancer(return_X_y=True)
    star = sm.datasets.star98.load_pandas().data
    X2 = StandardScaler().fit_transform(star.drop(columns=["NABOVE", "NBELOW"]).to_numpy(float))
    y2 = star["NABOVE"].to_numpy(float)
    rows = []
    with limit_threads(1):
        for name, X, y, alpha in (
            ("breast cancer, unscaled", X1, y1.astype(float), 1e-4),
            ("star98, standardised", X2, y2, 0.12),
        ):
            ours = LqRegression("l1", alpha=alpha, tol=1e-6, max_iter=10_000)
            t_ours, ours = time_call(ours.fit, X, y, repeat=3)
            ref = Lasso(alpha=alpha, tol=1e-6, max_iter=1_000_000)
            t_ref, ref = time_call(ref.fit, X, y, repeat=3)
            gap = ref.dual_gap_ / (np.sum((y - y.mean()) ** 2) / len(y))
            rows.append(
                [name, alpha, ours.n_epochs_, ours.certificate_, t_ours, ref.n_iter_, gap, t_ref]
            )
    print()
    print(
        markdown_table(
            rows,
            [
                "design (l1)",
                "alpha",
                "ours epochs",
                "ours rel. gap",
                "ours (s)",
                "Lasso epochs",
                "Lasso rel. gap",
                "Lasso (s)",
            ],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions of the whole table")
    args = parser.parse_args()
    print(bench_header("Penalised least squares (LqRegression vs skglm)"))
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    try:
        from skglm import GeneralizedLinearEstimator
        from skglm import penalties as skp
        from skglm.datafits import Quadratic
        from skglm.solvers import AndersonCD
    except ImportError:
        GeneralizedLinearEstimator = None
    rows: dict[tuple[str, str], list] = {}
    speedups: dict[tuple[str, str], list[float]] = {}
    with limit_threads(1):
        for _ in range(args.runs):
            for design, n, d in PROBLEMS:
                X, y = make_sparse_regression(
                    n, d, 20, design=design, rho=0.6, noise=0.1, random_state=0
                )
                alpha_max = np.max(np.abs(X.T @ y)) / n
                for name, q, sk_name in PENALTIES:
                    alpha = 0.05 * alpha_max if name == "l1" else 0.02 * alpha_max
                    ours = LqRegression(name, alpha=alpha, q=q, fit_intercept=False, tol=1e-8)
                    t_ours, est = time_call(ours.fit, X, y, repeat=5)
                    w = est.coef_
                    key = (f"{design} {n}x{d}", name)
                    row = [
                        *key,
                        t_ours,
                        objective(X, y, w, name, alpha, q),
                        fixpoint_distance(X, y, w, name, alpha, q),
                        int(np.count_nonzero(w)),
                    ]
                    if GeneralizedLinearEstimator is None:
                        row += [float("nan"), float("nan"), float("nan")]
                        speedups.setdefault(key, [])
                    else:
                        strategy = "subdiff" if name == "l1" else "fixpoint"
                        sk = GeneralizedLinearEstimator(
                            Quadratic(),
                            getattr(skp, sk_name)(alpha),
                            AndersonCD(tol=1e-10, ws_strategy=strategy, fit_intercept=False),
                        )
                        t_sk, sk = time_call(sk.fit, X, y, repeat=5)
                        ws = sk.coef_
                        row += [
                            t_sk,
                            objective(X, y, ws, name, alpha, q),
                            fixpoint_distance(X, y, ws, name, alpha, q),
                        ]
                        speedups.setdefault(key, []).append(t_sk / t_ours)
                    rows[key] = row
    print("load average after: {:.2f} {:.2f} {:.2f}\n".format(*os.getloadavg()))
    table = []
    for key, row in rows.items():
        s = speedups[key]
        per_run = " / ".join(f"{v:.2f}x" for v in s) if s else "skglm not installed"
        table.append([*row, per_run])
    print(
        markdown_table(
            table,
            [
                "problem",
                "penalty",
                "ours (s)",
                "ours objective",
                "ours fixpt dist",
                "ours nnz",
                "skglm (s)",
                "skglm objective",
                "skglm fixpt dist",
                "ours faster by (per run)",
            ],
        )
    )
    print(f"(times from the last of {args.runs} runs)")
    ill_conditioned()
    imp, fit = first_fit_time()
    print(f"\nfresh interpreter: import {imp:.2f} s, first LqRegression fit {fit:.2f} s")


if __name__ == "__main__":
    main()
