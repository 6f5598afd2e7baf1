"""KroneckerSBL (matrix-free) against SBL on the explicit dictionary and scikit-learn's ARD.

Real synthetic problems y = (A_1 kron A_2 kron A_3) x + n with N = N_i^3, M_i ~ 0.7 N_i,
K = 2 nonzeros per factor, 25 dB, known noise variance for the SBL methods. Dense peers are
run only while the explicit dictionary and their run time stay reasonable (column "dense").
Also times the IRS-MIMO setup (N = 5832, M = 288) against the authors' reported MATLAB times.

Also (``--tall``, or part of the full run): classical SBL where there are more samples than
features, against scikit-learn's ``ARDRegression`` (the same model with Gamma hyperpriors) on
diabetes and on tall synthetic problems. ``SparseBayesianLearning`` runs its E-step in
feature space there; the "sample-space E-step" column is the same EM with the ``M x M``
E-step it used before (``sbl_em(..., estep="dense")`` on the same centred data).

Run: ``python benchmarks/bench_kronecker_sbl.py`` (``--quick`` for the two smallest sizes,
``--tall`` for the tall table only).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
from _harness import bench_header, limit_threads, markdown_table, peak_memory, ratio, time_call
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ARDRegression

from sparsestat.bayes import KroneckerDesign, KroneckerSBL, SparseBayesianLearning
from sparsestat.datasets import (
    irs_channels_from_coef,
    make_irs_mimo_channel,
    make_kronecker_sparse_signal,
)
from sparsestat.metrics import channel_nmse

warnings.simplefilter("ignore", ConvergenceWarning)
QUICK = "--quick" in sys.argv
TALL_ONLY = "--tall" in sys.argv
SIZES = [8, 10] if QUICK else [8, 10, 12, 16, 20]
DENSE_MAX, ARD_MAX = 16, 10


def nmse(a, b):
    return float(np.sum(np.abs(a - b) ** 2) / np.sum(np.abs(b) ** 2))


def tall():
    """Classical SBL vs ARDRegression with more samples than features (R^2 on held-out rows)."""
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler

    from sparsestat._solvers.sbl import sbl_em

    print(bench_header("Classical SBL, more samples than features"))
    rng = np.random.default_rng(0)
    problems = {}
    X, y = load_diabetes(return_X_y=True)
    problems["diabetes 442 x 10"] = (StandardScaler().fit_transform(X), y)
    for n, p in ((5000, 50), (20000, 100)):
        Xs = rng.standard_normal((n, p))
        w = np.zeros(p)
        w[rng.choice(p, 5, replace=False)] = rng.standard_normal(5)
        problems[f"synthetic {n} x {p}, 5 nonzeros"] = (Xs, Xs @ w + 0.5 * rng.standard_normal(n))
    rows = []
    for name, (X, y) in problems.items():
        n_tr = int(0.8 * X.shape[0])
        Xtr, ytr, Xte, yte = X[:n_tr], y[:n_tr], X[n_tr:], y[n_tr:]
        t_ours, ours = time_call(SparseBayesianLearning().fit, Xtr, ytr, repeat=3, warmup=1)
        t_ard, ard = time_call(ARDRegression().fit, Xtr, ytr, repeat=3, warmup=1)
        Xc, yc = Xtr - Xtr.mean(axis=0), (ytr - ytr.mean())[:, None]
        if n_tr <= 5000:
            t_old, _ = time_call(
                sbl_em, [Xc], yc, estep="dense", prune_rel=1e-3, repeat=1, warmup=0
            )
        else:  # an M x M solve per iteration at M = 16000 takes minutes
            t_old = float("nan")
        rows.append(
            [
                name,
                t_ours,
                t_old,
                t_ard,
                ratio(t_ard, t_ours),
                f"{ours.score(Xte, yte):.4f} / {ard.score(Xte, yte):.4f}",
            ]
        )
    print(
        markdown_table(
            rows,
            [
                "problem (80 % train)",
                "SBL, feature-space E-step (s)",
                "SBL, sample-space E-step (s)",
                "ARDRegression (s)",
                "speed-up vs ARD",
                "test R^2 SBL / ARD",
            ],
        )
    )
    print()


def main():
    tall()
    if TALL_ONLY:
        return
    print(bench_header("Kronecker-structured SBL"))
    rows = []
    for n_i in SIZES:
        m_i = round(0.7 * n_i)
        factors, y, coef, info = make_kronecker_sparse_signal(
            factor_shapes=[(m_i, n_i)] * 3, n_nonzero=2, snr_db=25, random_state=0,
            return_info=True,
        )  # fmt: skip
        s2 = info.noise_variance
        rep = 3 if n_i <= 10 else 1
        res = {}
        for method in ("svd", "am"):
            est = KroneckerSBL(method=method, noise_variance=s2)
            t, _ = time_call(est.fit, factors, y, repeat=rep, warmup=1 if rep > 1 else 0)
            mem, _ = peak_memory(KroneckerSBL(method=method, noise_variance=s2).fit, factors, y)
            res[method] = (t, mem, nmse(est.coef_, coef))
        if n_i <= DENSE_MAX:
            A = KroneckerDesign(factors).todense()
            est = SparseBayesianLearning(noise_variance=s2, fit_intercept=False)
            t, _ = time_call(est.fit, A, y, repeat=1, warmup=0)
            if n_i <= 12:  # a second traced run is too slow beyond this size
                mem, _ = peak_memory(
                    SparseBayesianLearning(noise_variance=s2, fit_intercept=False).fit, A, y
                )
            else:  # the explicit dictionary and the M x N solve dominate: 3 M N floats
                mem = 3 * A.size * 8 / 2**20
            res["csbl"] = (t, mem, nmse(est.coef_, coef))
        if n_i <= ARD_MAX:
            ard = ARDRegression(fit_intercept=False, max_iter=100)
            t, _ = time_call(ard.fit, A, y, repeat=1, warmup=0)
            res["ard"] = (t, float("nan"), nmse(ard.coef_, coef))
        nan3 = (float("nan"),) * 3
        c, a = res.get("csbl", nan3), res.get("ard", nan3)
        rows.append(
            [
                f"{n_i}^3 = {n_i**3} (M = {m_i**3})",
                res["svd"][0], res["am"][0], c[0], a[0],
                ratio(c[0], res["svd"][0]) if n_i <= DENSE_MAX else "n/a (dense skipped)",
                f"{res['svd'][1]:.1f} / {c[1]:.1f}",
                f"{res['svd'][2]:.1e} / {res['am'][2]:.1e} / {c[2]:.1e} / {a[2]:.1e}",
            ]
        )  # fmt: skip
    print(
        markdown_table(
            rows,
            [
                "N (M)",
                "SVD-KroSBL (s)",
                "AM-KroSBL (s)",
                "classical SBL, dense (s)",
                "sklearn ARD (s)",
                "speed-up SVD vs dense SBL",
                "peak MiB SVD / dense SBL",
                "NMSE SVD / AM / SBL / ARD",
            ],
        )
    )

    # IRS-MIMO setup, 20 dB, known noise variance: time per fit vs the authors' MATLAB
    factors, y, coef, info = make_irs_mimo_channel(snr_db=20, random_state=0, return_info=True)
    common = {"noise_variance": info.noise_variance, "inner_tol": 1e-4,
              "inner_tol_relative": True, "prune_abs": 1e-4}  # fmt: skip
    irs = {
        "PC-KroSBL": (KroneckerSBL(method="am", block=[0.8, None, 0.8],
                                   prune_threshold=[1e-2, 1e-1, 1e-2], inner_max_iter=9,
                                   **common), "7.4"),
        "AM-KroSBL": (KroneckerSBL(method="am", prune_threshold=[1e-2, 1e-1, 1e-3],
                                   inner_max_iter=1000, **common), "11.9"),
        "SVD-KroSBL": (KroneckerSBL(method="svd", prune_threshold=0.0, **common), "5.75"),
    }  # fmt: skip
    rows = []
    for name, (est, theirs) in irs.items():
        t, _ = time_call(est.fit, factors, y, repeat=3, warmup=1)
        h = irs_channels_from_coef(est.coef_, info)
        rows.append([name, t, theirs, f"{10 * np.log10(channel_nmse(info.H_true, h)):.1f}"])
    print()
    print(markdown_table(rows, ["IRS method (20 dB)", "ours (s)", "authors' MATLAB mean (s)",
                                "channel NMSE (dB)"]))  # fmt: skip


if __name__ == "__main__":
    with limit_threads():
        main()
