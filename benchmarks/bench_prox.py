"""Prox kernels: elements per second against a plain NumPy expression, and compile time.

Each kernel is timed on a 2000 x 512 array after a warm-up call. The peer is the shortest
NumPy expression of the same operator (what a user would write). The first call of each Numba
kernel is timed in a fresh subprocess, so it includes compilation (or loading from the
on-disk cache when ``cache=True`` found one).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from _harness import bench_header, limit_threads, markdown_table, ratio, time_call

from sparsestat._kernels import prox as P

SHAPE = (2000, 512)
T = 0.5


def numpy_half(z, t):
    a = np.abs(z)
    phi = np.arccos(np.clip((t / 4) * (np.maximum(a, 1e-300) / 3) ** -1.5, -1, 1))
    val = (2 / 3) * z * (1 + np.cos(2 * np.pi / 3 - (2 / 3) * phi))
    return np.where(a > 1.5 * t ** (2 / 3), val, 0.0)


def numpy_lq(z, t, q, iters=30):
    a = np.abs(z)
    tau, jump = P.lq_threshold(t, q)
    x = a.copy()
    for _ in range(iters):
        x = np.maximum(
            x - (x + t * q * x ** (q - 1) - a) / (1 + t * q * (q - 1) * x ** (q - 2)), jump
        )
    return np.where(a > tau, np.sign(z) * x, 0.0)


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


def main() -> None:
    print(bench_header("Prox kernels (sparsestat._kernels.prox) vs plain NumPy"))
    z = np.random.default_rng(0).standard_normal(SHAPE) * 2
    rows = []
    with limit_threads():
        for name, (ours, peer) in CASES.items():
            t_ours, out_ours = time_call(ours, z, repeat=7)
            t_peer, out_peer = time_call(peer, z, repeat=7)
            err = float(np.max(np.abs(out_ours - out_peer)))
            rows.append(
                [name, z.size / t_ours / 1e6, z.size / t_peer / 1e6, ratio(t_peer, t_ours), err]
            )
    print(
        markdown_table(
            rows, ["kernel", "ours (Melem/s)", "NumPy (Melem/s)", "speed-up", "max |diff|"]
        )
    )
    print()
    first = json.loads(
        subprocess.run(
            [sys.executable, "-c", _COMPILE_SNIPPET], capture_output=True, text=True, check=True
        ).stdout
    )
    print("First call in a fresh process (compile or cache load), seconds:")
    print(markdown_table([[k, v] for k, v in first.items()], ["kernel", "first call (s)"]))


if __name__ == "__main__":
    main()
