"""Prox kernels: elements per second against a plain NumPy expression, and compile time.

Each kernel is timed on a 2000 x 512 array (``z ~ 2 N(0, 1)``, ``t = 0.5``). The peer is the
shortest NumPy expression of the same operator (what a user would write); for ``lq``, whose
prox has no closed form, the peer is a vectorised Newton iteration on the entries above the
threshold, run until every entry has converged to the same relative step (1e-12) as our
kernel, so both return the same values to rounding. Ours and the peer are timed alternately
(``--repeat`` calls each, after a warm-up) and each is scored by its fastest call, which is
the least disturbed by other processes on a shared machine. ``--runs`` repeats the whole
measurement; the table prints the speed-up of every run and its range.

The first call of each Numba kernel is timed in a fresh subprocess, so it includes
compilation (or loading from the on-disk cache when ``cache=True`` found one).

Run ``cd benchmarks && OMP_NUM_THREADS=1 python bench_prox.py --runs 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from _harness import bench_header, limit_threads, markdown_table

from sparsestat._kernels import prox as P

SHAPE = (2000, 512)
T = 0.5


def numpy_half(z, t):
    a = np.abs(z)
    phi = np.arccos(np.clip((t / 4) * (np.maximum(a, 1e-300) / 3) ** -1.5, -1, 1))
    val = (2 / 3) * z * (1 + np.cos(2 * np.pi / 3 - (2 / 3) * phi))
    return np.where(a > 1.5 * t ** (2 / 3), val, 0.0)


def numpy_lq(z, t, q, rtol=1e-12, max_iter=100):
    """Newton on the entries above the threshold, each until its step is below ``rtol |z|``."""
    a = np.abs(z).ravel()
    tau, jump = P.lq_threshold(t, q)
    keep = np.flatnonzero(a > tau)
    ak = a[keep]
    x = ak.copy()
    active = np.arange(ak.size)
    for _ in range(max_iter):
        xa, aa = x[active], ak[active]
        p = xa ** (q - 1)
        x_new = np.maximum(xa - (xa + t * q * p - aa) / (1 + t * q * (q - 1) * p / xa), jump)
        done = np.abs(x_new - xa) <= rtol * aa
        x[active] = x_new
        active = active[~done]
        if active.size == 0:
            break
    out = np.zeros_like(z)
    out.ravel()[keep] = np.sign(z.ravel()[keep]) * x
    return out


def numpy_cel0(z, alpha, gamma, a):
    az = np.abs(z)
    return np.sign(z) * np.minimum(
        az, np.maximum(az - np.sqrt(2 * alpha) * a * gamma, 0) / (1 - a * a * gamma)
    )


def numpy_group(z, t, g):
    norms = np.sqrt(np.add.reduceat(z**2, np.flatnonzero(np.r_[True, np.diff(g) != 0]), axis=-1))
    scale = np.maximum(1 - t / np.maximum(norms, 1e-300), 0)
    return z * np.repeat(scale, np.bincount(g), axis=-1)


def numpy_abs_topk(z, k):
    idx = np.argpartition(-np.abs(z), k - 1, axis=-1)[..., :k]
    out = np.zeros_like(z)
    np.put_along_axis(out, idx, np.take_along_axis(z, idx, -1), -1)
    return out


GROUPS = np.arange(SHAPE[1]) // 8
CASES = {
    "prox_l1 (soft)": (
        lambda z: P.prox_l1(z, T),
        lambda z: np.sign(z) * np.maximum(np.abs(z) - T, 0),
    ),
    "prox_l0 (hard)": (
        lambda z: P.prox_l0(z, T),
        lambda z: np.where(np.abs(z) > np.sqrt(2 * T), z, 0.0),
    ),
    "prox_l1_2 (half)": (lambda z: P.prox_l1_2(z, T), lambda z: numpy_half(z, T)),
    "prox_lq (q=0.3)": (lambda z: P.prox_lq(z, T, 0.3), lambda z: numpy_lq(z, T, 0.3)),
    "prox_cel0": (lambda z: P.prox_cel0(z, T, 0.7, 1.1), lambda z: numpy_cel0(z, T, 0.7, 1.1)),
    "prox_group_l1 (size 8)": (
        lambda z: P.prox_group_l1(z, T, GROUPS),
        lambda z: numpy_group(z, T, GROUPS),
    ),
    "project_abs_topk (k=16)": (
        lambda z: P.project_abs_topk(z, 16),
        lambda z: numpy_abs_topk(z, 16),
    ),
}

_COMPILE_SNIPPET = """
import time, json, numpy as np
from sparsestat._kernels import prox as P
z = np.random.default_rng(0).standard_normal((8, 8))
out = {}
for name, call in [
    ("prox_l1", lambda: P.prox_l1(z, 0.5)), ("prox_l0", lambda: P.prox_l0(z, 0.5)),
    ("prox_l1_2", lambda: P.prox_l1_2(z, 0.5)), ("prox_lq", lambda: P.prox_lq(z, 0.5, 0.3)),
    ("prox_cel0", lambda: P.prox_cel0(z, 0.5, 0.7, 1.1)),
    ("prox_group_l1", lambda: P.prox_group_l1(z, 0.5, np.arange(8) // 2)),
    ("project_abs_topk", lambda: P.project_abs_topk(z, 2)),
]:
    t0 = time.perf_counter(); call(); out[name] = time.perf_counter() - t0
print(json.dumps(out))
"""


def fastest_alternating(ours, peer, z, repeat):
    """Fastest call of each of two functions timed alternately, and their outputs."""
    out_ours, out_peer = ours(z), peer(z)  # warm-up (and compile)
    best_ours = best_peer = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours(z)
        best_ours = min(best_ours, time.perf_counter() - t0)
        t0 = time.perf_counter()
        peer(z)
        best_peer = min(best_peer, time.perf_counter() - t0)
    return best_ours, best_peer, out_ours, out_peer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions of the whole table")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls per kernel and run")
    args = parser.parse_args()
    print(bench_header("Prox kernels (sparsestat._kernels.prox) vs plain NumPy"))
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    z = np.random.default_rng(0).standard_normal(SHAPE) * 2
    speedups: dict[str, list[float]] = {name: [] for name in CASES}
    last: dict[str, list[float]] = {}
    with limit_threads():
        for _ in range(args.runs):
            for name, (ours, peer) in CASES.items():
                t_ours, t_peer, out_ours, out_peer = fastest_alternating(ours, peer, z, args.repeat)
                speedups[name].append(t_peer / t_ours)
                err = float(np.max(np.abs(out_ours - out_peer)))
                last[name] = [z.size / t_ours / 1e6, z.size / t_peer / 1e6, err]
    print("load average after: {:.2f} {:.2f} {:.2f}\n".format(*os.getloadavg()))
    rows = []
    for name in CASES:
        s = speedups[name]
        rows.append(
            [
                name,
                last[name][0],
                last[name][1],
                " / ".join(f"{v:.2f}x" for v in s),
                f"{min(s):.2f}-{max(s):.2f}x",
                last[name][2],
            ]
        )
    headers = ["kernel", "ours (Melem/s)", "NumPy (Melem/s)", "speed-up per run", "range"]
    print(markdown_table(rows, [*headers, "max |diff|"]))
    print(f"\n(throughputs from the last of {args.runs} runs; fastest of {args.repeat} calls)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = json.loads(
        subprocess.run(
            [sys.executable, "-c", _COMPILE_SNIPPET],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
    )
    print("First call in a fresh process (compile or cache load), seconds:")
    print(markdown_table([[k, v] for k, v in first.items()], ["kernel", "first call (s)"]))


if __name__ == "__main__":
    main()
