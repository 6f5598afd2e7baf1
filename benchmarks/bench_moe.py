"""EM for the Gaussian mixture of experts against a torch-autograd MLE of the same model.

Problem: d = 10 features, K experts (softmax gate), data from ``make_moe_regression``. Both
methods start from the same parameters (our k-means initialisation followed by one EM
iteration). Ours: generalised EM (Numba E-step and expert statistics, exact expert update,
L-BFGS gate update). Peer: full-batch L-BFGS (strong Wolfe) on the negative mean
log-likelihood, gradients by torch autograd, run until it reaches our final mean
log-likelihood (within 1e-4) or a time cap.

Times are CPU seconds of this process (``time.process_time``): both methods run in one
thread, and the shared 2-core machine this was written on is heavily oversubscribed, which
makes wall-clock times noise. Columns: EM seconds per iteration, EM seconds to convergence
(tol 1e-6) and iterations, the peer's seconds to reach our log-likelihood (or its value at
the cap), and both final mean log-likelihoods. At n = 1e6 only the time per iteration is
measured (5 iterations; a run to convergence does not fit the few-minute budget of a shared
2-core machine).

Two more measurements back the estimator's settings, each repeated ``--repeats`` times
(default 3) with the ratio of every repeat printed, alternating the two settings:

- ``--gate-max-iter``: ``gate_max_iter=10`` (the default) against 25, from the same k-means
  start, on d = 10, K = 5, n = 2e4: wall seconds to convergence, EM iterations and the final
  mean log-likelihood of each.
- ``--threads``: a fit under one BLAS thread (what ``fit`` does) against the same fit with
  the BLAS threads the machine offers, on diabetes (n = 442, d = 10, K = 2, defaults) and on
  n = 1e5, d = 10, K = 3 (5 EM iterations).

Every run prints the load average (``/proc/loadavg``) at its start and end.

Usage: ``python benchmarks/bench_moe.py [--quick] [--gate-max-iter] [--threads]
[--repeats N]``.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
import warnings

import numpy as np
from _harness import bench_header, limit_threads, markdown_table, ratio

from sparsestat.datasets import make_moe_regression
from sparsestat.mixture import GaussianMoERegressor

QUICK = "--quick" in sys.argv
REPEATS = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
D = 10
GRID = (
    [(10_000, 3)]
    if QUICK
    else [(10_000, 3), (10_000, 8), (100_000, 3), (100_000, 8), (1_000_000, 3), (1_000_000, 8)]
)
FULL_RUN_MAX_N = 100_000
TORCH_CAP_S = 60.0 if not QUICK else 10.0


def _attrs(est):
    return {
        k: np.copy(getattr(est, k))
        for k in ("gate_coef_", "gate_intercept_", "coef_", "intercept_", "variances_")
    }


def torch_mle(X, y, start, target_ll, cap_s):
    """Full-batch L-BFGS on the negative mean log-likelihood; time to reach ``target_ll``."""
    import torch

    torch.set_num_threads(1)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)
    W = torch.tensor(start["gate_coef_"], requires_grad=True)
    b = torch.tensor(start["gate_intercept_"], requires_grad=True)
    A = torch.tensor(start["coef_"], requires_grad=True)
    c = torch.tensor(start["intercept_"], requires_grad=True)
    lv = torch.tensor(np.log(start["variances_"]), requires_grad=True)
    opt = torch.optim.LBFGS(
        [W, b, A, c, lv], lr=1.0, max_iter=20, history_size=20, line_search_fn="strong_wolfe"
    )

    def nll():
        logpi = torch.log_softmax(Xt @ W.T + b, dim=1)
        mu = Xt @ A.T + c
        logn = -0.5 * (np.log(2 * np.pi) + lv + (yt[:, None] - mu) ** 2 / torch.exp(lv))
        return -torch.logsumexp(logpi + logn, dim=1).mean()

    def closure():
        opt.zero_grad()
        loss = nll()
        loss.backward()
        return loss

    t0 = time.process_time()
    with torch.no_grad():
        ll = -float(nll())
    steps = 0
    while ll < target_ll - 1e-4 and time.process_time() - t0 < cap_s:
        opt.step(closure)
        steps += 1
        with torch.no_grad():
            new = -float(nll())
        if abs(new - ll) < 1e-12:
            break
        ll = new
    return time.process_time() - t0, ll, ll >= target_ll - 1e-4


def main():
    print(bench_header("Gaussian mixture of experts: EM vs torch-autograd MLE", threads=1))
    try:
        import torch  # noqa: F401

        has_torch = True
    except ImportError:
        has_torch = False
    rows = []
    for n, k in GRID:
        X, y, _ = make_moe_regression(n, n_features=D, n_experts=k, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            init = GaussianMoERegressor(k, n_init=1, max_iter=1, random_state=0).fit(X, y)
        start = _attrs(init)
        full = n <= FULL_RUN_MAX_N
        max_iter = 500 if full else 5
        est = GaussianMoERegressor(
            k, n_init=1, max_iter=max_iter, tol=1e-6, initial_params=start, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.process_time()
            est.fit(X, y)
            t_ours = time.process_time() - t0
        per_iter = t_ours / est.n_iter_
        ll_ours = est.lower_bound_
        if has_torch and full:
            t_torch, ll_torch, reached = torch_mle(X, y, start, ll_ours, TORCH_CAP_S)
            t_torch_txt = f"{t_torch:.3g}" if reached else f">{TORCH_CAP_S:.0f} (cap)"
            speedup = ratio(t_torch, t_ours) if reached else f">{TORCH_CAP_S / t_ours:.2f}x"
        else:
            t_torch_txt = "not installed" if not has_torch else "not run"
            ll_torch, speedup = float("nan"), "n/a"
        rows.append(
            [
                f"n={n:.0e}, K={k}, d={D}",
                per_iter,
                t_ours if full else "not run",
                est.n_iter_,
                t_torch_txt,
                speedup,
                ll_ours,
                ll_torch,
            ]
        )
        print(markdown_table(rows[-1:], HEADERS).splitlines()[-1], flush=True)
    print()
    print(markdown_table(rows, HEADERS))


HEADERS = [
    "problem",
    "EM s/iter",
    "EM s to conv.",
    "EM iters",
    "torch s to same ll",
    "speed-up",
    "EM mean ll",
    "torch mean ll",
]


def _load() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:  # pragma: no cover - not Linux
        return "n/a"


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f}x, range {min(values):.2f}x-{max(values):.2f}x"


def gate_max_iter_study() -> None:
    """``gate_max_iter`` 10 (default) against 25 from the same start, alternated."""
    print(bench_header("GaussianMoERegressor: gate_max_iter 10 vs 25", threads=1))
    print(f"load average at start: {_load()}\n")
    n, k = (5_000, 5) if QUICK else (20_000, 5)
    X, y, _ = make_moe_regression(n, n_features=D, n_experts=k, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = _attrs(GaussianMoERegressor(k, n_init=1, max_iter=1, random_state=0).fit(X, y))
    rows, ratios = [], []
    for rep in range(REPEATS):
        res = {}
        for g in (10, 25) if rep % 2 == 0 else (25, 10):
            est = GaussianMoERegressor(k, n_init=1, tol=1e-6, initial_params=start, gate_max_iter=g)
            t0 = time.perf_counter()
            est.fit(X, y)
            res[g] = (time.perf_counter() - t0, est.n_iter_, est.lower_bound_)
        ratios.append(res[25][0] / res[10][0])
        rows.append([rep, *res[10], *res[25], f"{ratios[-1]:.2f}x"])
    print(
        markdown_table(
            rows,
            [
                "repeat",
                "10: s",
                "10: EM iters",
                "10: mean ll",
                "25: s",
                "25: EM iters",
                "25: mean ll",
                "time 25 / time 10",
            ],
        )
    )
    print(f"\nn={n:.0e}, K={k}, d={D}: {_spread(ratios)}; load average at end: {_load()}")


def threads_study() -> None:
    """One BLAS thread (what fit does) against the machine's BLAS threads, alternated."""
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler

    import sparsestat._solvers.moe as moe_solver

    print(bench_header("GaussianMoERegressor: BLAS threads in fit", threads=os.cpu_count() or 1))
    print(f"load average at start: {_load()}\n")
    Xd, yd = load_diabetes(return_X_y=True)
    Xd = StandardScaler().fit_transform(Xd)
    Xb, yb, _ = make_moe_regression(100_000, n_features=D, n_experts=3, random_state=0)
    problems = [
        ("diabetes, K=2, defaults", Xd, yd, {"n_experts": 2}),
        ("n=1e5, K=3, d=10, 5 EM iterations", Xb, yb, {"n_experts": 3, "n_init": 1, "max_iter": 5}),
    ]
    ours = moe_solver.threadpool_limits
    rows = []
    for name, X, y, kw in problems:
        ratios = []
        for rep in range(REPEATS):
            times = {}
            for mode in ("one", "all") if rep % 2 == 0 else ("all", "one"):
                moe_solver.threadpool_limits = (
                    ours if mode == "one" else (lambda **_: contextlib.nullcontext())
                )
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t0 = time.perf_counter()
                        GaussianMoERegressor(random_state=0, **kw).fit(X, y)
                        times[mode] = time.perf_counter() - t0
                finally:
                    moe_solver.threadpool_limits = ours
            ratios.append(times["all"] / times["one"])
            rows.append([name, rep, times["one"], times["all"], f"{ratios[-1]:.2f}x"])
        print(f"{name}: {_spread(ratios)}")
    print()
    print(markdown_table(rows, ["problem", "repeat", "1 thread: s", "all threads: s", "ratio"]))
    print(f"\nload average at end: {_load()}")


if __name__ == "__main__":
    if "--threads" in sys.argv:
        threads_study()
    elif "--gate-max-iter" in sys.argv:
        with limit_threads(1):
            gate_max_iter_study()
    else:
        with limit_threads(1):
            print(f"load average at start: {_load()}")
            main()
            print(f"load average at end: {_load()}")
