"""Benchmark: user reports per second of LDP sparse regression (privatise + aggregate).

Rows: per-user privatisation with NumPy noise in ``fit`` (one fused Numba kernel clips each
user's row, draws the user's keyed noise -- NumPy's SeedSequence/SFC64/Ziggurat stream, bit
for bit --, forms the outer product, adds the noise, rounds and sums exactly), on 1 and on 2
threads (``numba.set_num_threads``; block-aligned tasks taken by the threads as they become
free); the Gaussian draws alone, d(d+1)/2 + d per user, both as NumPy's
``Generator.standard_normal`` makes them and as the compiled kernel makes them (the same
numbers); the client-side ``privatize`` returning the (n, d, d) reports followed by
``add_reports``; the ``simulate_aggregate`` mode (one aggregated noise draw, for
experiments); LDP-IHT; and the OpenDP exact samplers (the deployment backend; the peer
here), at d = 20 and d = 100. A last table gives the latency of one device's secure report
(the default client path: OpenDP's exact samplers, fresh entropy) at d = 20 and d = 100.
Rates are given per wall-clock second and per second of this
process's CPU time (all threads; on a shared machine only the CPU rate is comparable between
runs, and the 2-thread wall rate needs two idle cores). A second table shows that the peak
memory of ``fit`` does not grow with the number of users, and a third the first ``fit`` in a
fresh process, with an empty Numba cache (a temporary ``NUMBA_CACHE_DIR``: cold compile,
once per installation) and with a warm one, for a small problem (DESIGN budget: 2 s; fewer
than 2**18 draws take the generic path and compile nothing) and for a large one (the
compiled kernel).

Run: ``python benchmarks/bench_ldp.py`` (``SPARSESTAT_QUICK=1`` for a tiny run;
``SPARSESTAT_LDP_FIT_ONLY=1`` for the one-thread ``fit`` rows only, the before / after
comparison: copy this script into both checkouts and run it in each, alternately).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numba
import numpy as np
from _harness import bench_header, limit_threads, markdown_table, peak_memory, time_call

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from sparsestat._kernels.sfc64 import fill_normals, seed_states
from sparsestat.privacy import (
    LDPIHTRegressor,
    LDPSparseLinearRegression,
    UserStreams,
    opendp_available,
)

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
#: Only the one-thread ``fit`` rows, in reports per CPU second (for before / after runs of
#: this script copied into two checkouts, alternately).
FIT_ONLY = os.environ.get("SPARSESTAT_LDP_FIT_ONLY") == "1"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, 1.0], size=(n, d))
    y = X[:, 0] - X[:, 1] + 0.1 * rng.standard_normal(n)
    return X, y


def nldp(**kw):
    return LDPSparseLinearRegression(epsilon=1.0, delta=1e-6, bounds_X=1.0, bounds_y=3.0, **kw)


def rate(n, fit, repeat):
    """Median wall time, and reports per wall second and per CPU second."""
    cpu = []

    def timed():
        c0 = time.process_time()
        fit()
        cpu.append(time.process_time() - c0)

    t, _ = time_call(timed, repeat=repeat, warmup=1)
    c = statistics.median(cpu[1:])
    return t, n / t, n / c


def draws_only(n, d, seed=0):
    """The per-user noise alone: d(d+1)/2 + d keyed Gaussian draws per user."""
    streams = UserStreams(seed)
    ids = np.arange(n)
    n_tri = d * (d + 1) // 2
    block = UserStreams.block_size(n_tri)
    chunk = max(block, ((1 << 20) // (n_tri + d)) // block * block)
    for start in range(0, n, chunk):
        streams.draw(ids[start : start + chunk], n_tri, 0)
        streams.draw(ids[start : start + chunk], d, 1)


def compiled_draws_only(n, d, seed=0):
    """The same keyed draws made by the compiled sampler (one thread, one buffer per block)."""
    for stream, m in ((0, d * (d + 1) // 2), (1, d)):
        block = UserStreams.block_size(m)
        buf = np.empty(block * m)
        states = seed_states(seed, (stream,), np.arange(-(-n // block)))
        for b, state in enumerate(states):
            fill_normals(buf[: min(block, n - b * block) * m], *state)


FIRST_FIT = """
import sys, time, warnings
t0 = time.perf_counter()
import numpy as np
from sparsestat.privacy import LDPSparseLinearRegression
t1 = time.perf_counter()
n, d = int(sys.argv[1]), int(sys.argv[2])
X = np.random.default_rng(0).uniform(-1, 1, (n, d))
c0, t2 = time.process_time(), time.perf_counter()
LDPSparseLinearRegression(bounds_X=1.0, bounds_y=1.0, random_state=0).fit(X, X[:, 0])
print(t1 - t0, time.perf_counter() - t2, time.process_time() - c0)
"""


def first_fit(cache_dir, n, d):
    """Import time, and wall and CPU time of the first fit, in a fresh process."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=ROOT)
    out = subprocess.run(
        [sys.executable, "-c", FIRST_FIT, str(n), str(d)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [float(v) for v in out.stdout.split()]


def privatize_then_add(X, y):
    """Simulated client reports (NumPy noise, a seed) summed by a server."""
    reports = nldp(random_state=0).privatize(X, y, simulation=True)
    return nldp().add_reports(reports, simulation=True)


def client_latency(d, repeat):
    """Seconds for one device's secure report: a new client object, OpenDP's exact samplers
    with fresh OS entropy, the privacy maps checked (first call) -- as in a deployment."""
    rng = np.random.default_rng(d)
    times = []
    for _ in range(repeat):
        x = rng.choice([-1.0, 1.0], size=(1, d))
        t0 = time.perf_counter()
        reports = nldp().privatize(x, x[:, 0])
        times.append(time.perf_counter() - t0)
        assert reports.metadata["sampler"] == "opendp" and not reports.metadata["simulation"]
    return times


def fit_only():
    """One-thread fit at d = 20 and d = 100, five repeats: reports per CPU second."""
    numba.set_num_threads(1)
    with limit_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for d, n in ((20, 400_000), (100, 10_000)):
            X, y = data(n, d)
            _, _, rc = rate(n, lambda X=X, y=y: nldp(random_state=0).fit(X, y), 5)
            print(f"d = {d}, n = {n}: {rc:.4g} reports per CPU second (1 thread)")
    print(f"load average: {os.getloadavg()[0]:.2f}")


def main():
    if FIT_ONLY:
        fit_only()
        return
    max_threads = numba.get_num_threads()
    print(bench_header("LDP sparse regression: user reports per second", threads=max_threads))
    print(
        f"Kernel threads: 1 and {max_threads} (numba.set_num_threads; block-aligned tasks taken"
        f" by free threads, nogil); load average before the run:"
        f" {', '.join(f'{v:.2f}' for v in os.getloadavg())}\n"
    )
    # d: (users per-user, users privatize, users simulate_aggregate, users OpenDP)
    sizes = {20: (400_000, 20_000, 2_000_000, 20), 100: (10_000, 1_000, 200_000, 2)}
    if QUICK:
        sizes = {20: (10_000, 2_000, 100_000, 5), 100: (500, 100, 20_000, 1)}
    rows = []
    scaling = {}
    with limit_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for d, (n_user, n_priv, n_sim, n_odp) in sizes.items():
            start = len(rows)
            X, y = data(n_user, d)
            for threads in (1, max_threads):
                numba.set_num_threads(threads)
                t, r, rc = rate(n_user, lambda X=X, y=y: nldp(random_state=0).fit(X, y), 5)
                mode = f"NLDP per-user fit, NumPy noise (fused kernel), {threads} thread(s)"
                rows.append([d, mode, n_user, t, r, rc])
                scaling.setdefault(d, []).append(r)
            numba.set_num_threads(max_threads)
            t, r, rc = rate(n_user, lambda n=n_user, d=d: draws_only(n, d), 3)
            rows.append([d, "  Gaussian draws alone, NumPy Generator (1 thread)", n_user, t, r, rc])
            t, r, rc = rate(n_user, lambda n=n_user, d=d: compiled_draws_only(n, d), 3)
            rows.append([d, "  same draws, compiled sampler (1 thread)", n_user, t, r, rc])
            Xp, yp = X[:n_priv], y[:n_priv]
            t, r, rc = rate(n_priv, lambda X=Xp, y=yp: privatize_then_add(X, y), 3)
            rows.append([d, "NLDP privatize -> (M, v), add_reports", n_priv, t, r, rc])
            Xs, ys = data(n_sim, d)
            t, r, rc = rate(
                n_sim, lambda X=Xs, y=ys: nldp(simulate_aggregate=True, random_state=0).fit(X, y), 3
            )
            rows.append([d, "NLDP simulate_aggregate", n_sim, t, r, rc])
            Xi, yi = data(n_priv * 4, d)
            t, r, rc = rate(
                Xi.shape[0],
                lambda X=Xi, y=yi: LDPIHTRegressor(
                    2, epsilon=1.0, bounds_X=1.0, bounds_y=3.0, random_state=0
                ).fit(X, y),
                3,
            )
            rows.append([d, "LDP-IHT per-user (Duchi l_inf)", Xi.shape[0], t, r, rc])
            if opendp_available():
                Xo, yo = data(n_odp, d)
                t0, c0 = time.perf_counter(), time.process_time()
                nldp(noise_backend="opendp").fit(Xo, yo)
                t, c = time.perf_counter() - t0, time.process_time() - c0
                rows.append(
                    [d, "NLDP per-user, OpenDP exact noise (peer)", n_odp, t, n_odp / t, n_odp / c]
                )
                odp_rate = n_odp / t
            else:
                rows.append(
                    [
                        d,
                        "NLDP per-user, OpenDP exact noise (peer)",
                        0,
                        float("nan"),
                        "not installed",
                        "not installed",
                    ]
                )
                odp_rate = float("nan")
            for row in rows[start:]:
                speed = row[4] if isinstance(row[4], float) else float("nan")
                row.append(f"{speed / odp_rate:.3g}x" if odp_rate == odp_rate else "n/a")
    print(
        markdown_table(
            rows,
            [
                "d",
                "mode",
                "users",
                "time (s)",
                "reports/s",
                "reports/CPU s",
                "vs OpenDP per-user",
            ],
        )
    )

    for d, (one, many) in scaling.items():
        print(f"d = {d}: {max_threads} threads / 1 thread, wall: {many / one:.2f}x")
    print()
    print("Peak traced memory of fit (per-user mode, d = 20), excluding the input arrays:")
    mem_rows = []
    ns = [2_000, 8_000, 32_000] if QUICK else [10_000, 40_000, 160_000, 640_000]
    with limit_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in ns:
            X, y = data(n, 20)
            mib, _ = peak_memory(lambda X=X, y=y: nldp(random_state=0).fit(X, y))
            mem_rows.append([n, X.nbytes / 2**20, mib])
    print(markdown_table(mem_rows, ["users", "input X (MiB)", "peak extra memory (MiB)"]))

    print()
    print("First fit in a fresh process (one thread per core), seconds:")
    fit_rows = []
    problems = [(2000, 5, "small"), (100_000 if not QUICK else 20_000, 20, "large")]
    for n, d, label in problems:
        with tempfile.TemporaryDirectory() as cache:
            cold = first_fit(cache, n, d)
            warm = first_fit(cache, n, d)
        fit_rows.append([f"{label}: n = {n}, d = {d}", "empty (cold compile)", *cold])
        fit_rows.append([f"{label}: n = {n}, d = {d}", "warm", *warm])
    print(
        markdown_table(
            fit_rows,
            ["problem", "Numba cache", "import (wall)", "first fit (wall)", "first fit (CPU)"],
        )
    )
    print()
    print("One client's secure report (new client object, OpenDP exact samplers, fresh OS")
    print("entropy, privacy maps checked), seconds; goals: < 0.05 at d = 20, < 1 at d = 100:")
    lat_rows = []
    if opendp_available():
        with limit_threads(1):
            for d, goal in ((20, 0.05), (100, 1.0)):
                first, *times = client_latency(d, 4 if QUICK else 12)
                med = statistics.median(times)
                lat_rows.append(
                    [d, d * (d + 1) // 2 + d, first, med, max(times), goal, max(times) < goal]
                )
    print(
        markdown_table(
            lat_rows,
            [
                "d",
                "noise draws",
                "first call (s, loads OpenDP)",
                "median (s)",
                "max (s)",
                "goal (s)",
                "max below goal",
            ],
        )
    )
    print(f"load average after the run: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
