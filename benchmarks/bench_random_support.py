"""RandomSupportRegressor against LassoCV, OMP, IHT, abess and L0Learn on hard designs.

Prediction error ``||X (w_hat - w*)||^2 / N`` (median and IQR over seeds), support F1 (designs
D0 and D1) and wall time, on the designs of ``make_sparse_regression`` with worst-case values
on a uniformly random support (noise 0.1).

Usage::

    python benchmarks/bench_random_support.py            # reduced grid (minutes)
    python benchmarks/bench_random_support.py --full     # the full grid (hours on 2 cores)
    python benchmarks/bench_random_support.py --ablations  # add identity / whiten rows

Peers that are not installed are reported as "not installed".
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LassoCV, OrthogonalMatchingPursuit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import bench_header, limit_threads, markdown_table

from sparsestat.datasets import make_sparse_regression
from sparsestat.linear_model import RandomSupportRegressor

DESIGNS = {
    "D0 iid": {"design": "iid"},
    "D1 equicorrelated 0.999": {"design": "equicorrelated", "rho": 0.999},
    "D1r factor (s=1e-2)": {"design": "factor", "idiosyncratic_scale": 1e-2},
    "D2 random walk": {"design": "random_walk"},
    "D3 near-duplicate 1e-4": {"design": "near_duplicate", "eta": 1e-4, "block_size": 3},
    "D4 extreme": {"design": "extreme"},
}
F1_DESIGNS = ("D0 iid", "D1 equicorrelated 0.999")


def _peers(k, ablations):
    """name -> factory, or name -> reason when the peer is missing."""
    peers = {
        "ours": lambda: RandomSupportRegressor(n_nonzero_coefs=k, random_state=0),
        # precompute=True gives the same solution as the default, 3x faster on these designs
        "LassoCV": lambda: LassoCV(cv=5, precompute=True),
        "OMP": lambda: OrthogonalMatchingPursuit(n_nonzero_coefs=k),
    }
    if ablations:
        for pre in ("identity", "whiten"):
            peers[f"ours ({pre})"] = lambda pre=pre: RandomSupportRegressor(
                n_nonzero_coefs=k, preconditioner=pre, random_state=0
            )
    try:
        from sparsestat.linear_model import IHTRegressor

        peers["IHT"] = lambda: IHTRegressor(n_nonzero_coefs=k)
    except ImportError:
        peers["IHT"] = "not available (IHTRegressor not merged)"
    try:
        from abess.linear import LinearRegression as Abess

        peers["abess"] = lambda: Abess(support_size=k)
    except ImportError:
        peers["abess"] = "not installed"
    try:
        import l0learn  # noqa: F401

        peers["L0Learn"] = "installed but not wired (Python API differs from R's)"
    except ImportError:
        peers["L0Learn"] = "not installed"
    return peers


def _f1(true, est):
    t, e = true != 0, est != 0
    tp = np.sum(t & e)
    return 0.0 if tp == 0 else 2 * tp / (np.sum(t) + np.sum(e))


def _run(grid_d, grid_k, grid_c, n_seeds, designs, ablations):
    rows, missing = [], {}
    for d in grid_d:
        for k in grid_k:
            peers = _peers(k, ablations)
            missing.update({name: why for name, why in peers.items() if isinstance(why, str)})
            live = {name: f for name, f in peers.items() if not isinstance(f, str)}
            # warm-up (imports, first calls) on a tiny problem
            Xw, yw = make_sparse_regression(30, 20, 2, random_state=0)
            for make in live.values():
                make().fit(Xw, yw)
            for c in grid_c:
                n = math.ceil(c * k * math.log(d))
                for label in designs:
                    res = {name: ([], [], []) for name in live}
                    for seed in range(n_seeds):
                        X, y, w = make_sparse_regression(
                            n,
                            d,
                            k,
                            values="worst_case",
                            noise=0.1,
                            coef=True,
                            random_state=seed,
                            **DESIGNS[label],
                        )
                        for name, make in live.items():
                            t0 = time.perf_counter()
                            model = make().fit(X, y)
                            elapsed = time.perf_counter() - t0
                            coef = np.ravel(model.coef_)
                            err = np.mean((X @ (coef - w) + model.intercept_) ** 2)
                            res[name][0].append(err)
                            res[name][1].append(_f1(w, coef))
                            res[name][2].append(elapsed)
                    t_lasso = np.median(res["LassoCV"][2])
                    for name, (errs, f1s, times) in res.items():
                        q1, med, q3 = np.percentile(errs, [25, 50, 75])
                        rows.append(
                            [
                                label,
                                d,
                                k,
                                n,
                                name,
                                float(med),
                                f"[{q1:.2e}, {q3:.2e}]",
                                float(np.median(f1s)) if label in F1_DESIGNS else "-",
                                float(np.median(times)),
                                f"{np.median(times) / t_lasso:.2f}",
                            ]
                        )
                    print(f"done: {label}, d={d}, k={k}, N={n}", file=sys.stderr, flush=True)
    return rows, missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full grid")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--ablations", action="store_true", help="add identity / whiten")
    args = parser.parse_args(argv)
    if args.full:
        grid = {"grid_d": [500, 2000], "grid_k": [5, 10, 20], "grid_c": [1, 2, 4, 8, 16]}
        n_seeds, designs = args.seeds or 20, list(DESIGNS)
    else:
        grid = {"grid_d": [500], "grid_k": [5], "grid_c": [2, 8]}
        n_seeds, designs = args.seeds or 3, list(DESIGNS)
    warnings.simplefilter("ignore", ConvergenceWarning)
    print(bench_header("RandomSupportRegressor vs peers (prediction error, F1, time)"))
    with limit_threads():
        rows, missing = _run(n_seeds=n_seeds, designs=designs, ablations=args.ablations, **grid)
    print(
        f"Seeds: {n_seeds}; values: worst case on a random support; noise 0.1; "
        "time ratio = method time / LassoCV time.\n"
    )
    print(
        markdown_table(
            rows,
            [
                "design",
                "d",
                "k",
                "N",
                "method",
                "pred. error (median)",
                "IQR",
                "F1",
                "time (s)",
                "time / LassoCV",
            ],
        )
    )
    for name, why in missing.items():
        print(f"\n{name}: {why}")


if __name__ == "__main__":
    main()
