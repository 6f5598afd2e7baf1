"""
=============================================================
Aggregating private reports with dask, bit for bit
=============================================================

The server state of :class:`~sparsestat.privacy.LDPSparseLinearRegression` is a sum of the
users' reports, so users can be privatised and summed on many machines and the partial
sums merged. Two details make the distributed model *bit-for-bit* the in-memory one:

* per-user noise streams keyed by ``(seed, user id)``: user ``i`` gets the same noise
  whichever worker privatises them;
* exact summation: reports are rounded to a fixed-point grid (relative spacing 2**-50,
  post-processing) and summed as integers, so the order of the additions does not matter.

We fit once in memory and once with :func:`~sparsestat.privacy.fit_ldp_dask` on a
``dask.distributed`` LocalCluster with two workers, and compare.
"""

import os
import sys
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sparsestat.privacy import LDPSparseLinearRegression, fit_ldp_dask

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
n, d = (20_000, 6) if QUICK else (200_000, 8)
rng = np.random.default_rng(0)
X = rng.choice([-1.0, 1.0], size=(n, d))
theta = np.zeros(d)
theta[[0, 3]] = [0.6, -0.4]
y = X @ theta + 0.1 * rng.standard_normal(n)

est = LDPSparseLinearRegression(
    epsilon=2.0, delta=1e-6, bounds_X=1.0, bounds_y=1.5, alpha="cv", random_state=7
)

t0 = time.perf_counter()
in_memory = LDPSparseLinearRegression(**est.get_params()).fit(X, y)
t_mem = time.perf_counter() - t0

try:
    import dask.array as da
    from distributed import Client, LocalCluster
except ImportError:  # pragma: no cover - dask is in the test extra
    da = None
    print(
        "dask / distributed are not installed (pip install 'sparsestat[dask]'): the "
        "distributed half of this example is skipped."
    )

if da is not None:
    # the data are embedded in the graph from memory here; real deployments load per chunk
    warnings.filterwarnings("ignore", message=".*large graph.*")
    # thread workers: with processes=True, a script needs an `if __name__ == "__main__":` guard
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        Xd = da.from_array(X, chunks=(n // 7 + 1, d))  # uneven chunks on purpose
        yd = da.from_array(y, chunks=n // 7 + 1)
        t0 = time.perf_counter()
        distributed_model = fit_ldp_dask(est, Xd, yd)
        t_dask = time.perf_counter() - t0
    same = all(
        np.array_equal(getattr(distributed_model, a), getattr(in_memory, a))
        for a in ("sum_xx_", "sum_xy_", "coef_")
    )
    print(f"{n} users, d = {d}, {len(Xd.chunks[0])} chunks on 2 workers")
    print(f"in memory: {t_mem:.2f} s, dask: {t_dask:.2f} s")
    print(f"sum_xx_, sum_xy_ and coef_ identical bit for bit: {same}")
    print(f"max |difference| of coef_: {np.abs(distributed_model.coef_ - in_memory.coef_).max()}")
else:
    distributed_model = in_memory

# %%
# The coefficients: truth, in-memory fit and distributed fit (the last two coincide).
fig, ax = plt.subplots(figsize=(7, 3.5))
idx = np.arange(d)
ax.bar(idx - 0.25, theta, width=0.25, label="theta*")
ax.bar(idx, in_memory.coef_, width=0.25, label="in-memory fit")
ax.bar(idx + 0.25, distributed_model.coef_, width=0.25, label="dask fit (2 workers)")
ax.set_xlabel("coefficient")
ax.set_title(f"LDP regression, epsilon = 2, n = {n}: identical models")
ax.legend()
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("dask_aggregation.png", dpi=120)
    print("figure saved to dask_aggregation.png")
plt.show()
