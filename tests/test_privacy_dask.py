"""Scale-out: dask aggregation on a 2-worker LocalCluster equals the in-memory fit bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from sparsestat.privacy import LDPSparseLinearRegression, fit_ldp_dask

da = pytest.importorskip("dask.array", reason="optional extra dask absent")
distributed = pytest.importorskip("distributed", reason="optional extra dask absent")


def _check_cluster(processes):
    rng = np.random.default_rng(0)
    n, d = 12_000, 5
    X = rng.standard_normal((n, d))
    y = X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.standard_normal(n)
    est = LDPSparseLinearRegression(
        epsilon=1.0, bounds_X=2.0, bounds_y=3.0, alpha="cv", random_state=42
    )
    in_memory = LDPSparseLinearRegression(**est.get_params()).fit(X, y)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster),
    ):
        # uneven chunks that do not align with the noise-stream blocks
        Xd = da.from_array(X, chunks=(3001, d))
        yd = da.from_array(y, chunks=3001)
        model = fit_ldp_dask(est, Xd, yd)
    np.testing.assert_array_equal(model.sum_xx_, in_memory.sum_xx_)
    np.testing.assert_array_equal(model.sum_xy_, in_memory.sum_xy_)
    np.testing.assert_array_equal(model.coef_, in_memory.coef_)
    assert model.alpha_ == in_memory.alpha_
    assert model.n_users_seen_ == n
    assert model.accountant_.spent(n - 1) == (1.0, 1e-5)


def test_dask_localcluster_threads_matches_in_memory_fit_bit_for_bit():
    _check_cluster(processes=False)


@pytest.mark.slow
def test_dask_localcluster_processes_matches_in_memory_fit_bit_for_bit():
    # worker processes take tens of seconds to start on a loaded 2-core machine
    _check_cluster(processes=True)
