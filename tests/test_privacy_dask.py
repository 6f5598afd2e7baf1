"""Scale-out: dask aggregation on a 2-worker LocalCluster equals the in-memory model bit for bit.

Raw rows (dask arrays or partitioned Parquet through dask.dataframe: a simulation) and
privatised report files (the deployment mode: workers see reports only), with clear errors
for unknown chunk sizes and misaligned partitions.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from sparsestat.privacy import (
    LDPReports,
    LDPSparseLinearRegression,
    fit_ldp_dask,
    opendp_available,
)

da = pytest.importorskip("dask.array", reason="optional extra dask absent")
distributed = pytest.importorskip("distributed", reason="optional extra dask absent")


@pytest.fixture(autouse=True)
def _quiet_estimates():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the predicted error bound", UserWarning)
        yield


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def _data(n=12_000, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.standard_normal(n)
    return X, y


def _same(a, b):
    np.testing.assert_array_equal(a.sum_xx_, b.sum_xx_)
    np.testing.assert_array_equal(a.sum_xy_, b.sum_xy_)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.alpha_ == b.alpha_ and a.n_users_seen_ == b.n_users_seen_


def _check_cluster(processes):
    X, y = _data()
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
        model = fit_ldp_dask(est, da.from_array(X, chunks=(3001, 5)), da.from_array(y, chunks=3001))
    _same(model, in_memory)
    assert model.accountant_.spent(X.shape[0] - 1) == (1.0, 1e-5)
    assert not model.formal_guarantee_  # raw rows on the workers: a simulation


def test_dask_localcluster_threads_matches_in_memory_fit_bit_for_bit():
    _check_cluster(processes=False)


@pytest.mark.slow
def test_dask_localcluster_processes_matches_in_memory_fit_bit_for_bit():
    # worker processes take tens of seconds to start on a loaded 2-core machine
    _check_cluster(processes=True)


def test_partitioned_parquet_gives_the_same_model(client, tmp_path):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    pytest.importorskip("pyarrow")
    X, y = _data(n=6000, d=4, seed=1)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(4)]).assign(y=y)
    dd.from_pandas(frame, npartitions=4).to_parquet(tmp_path / "users")
    est = LDPSparseLinearRegression(epsilon=2.0, bounds_X=2.0, bounds_y=3.0, random_state=3)
    users = dd.read_parquet(tmp_path / "users")
    assert users.npartitions == 4
    model = fit_ldp_dask(est, users, "y")
    _same(model, LDPSparseLinearRegression(**est.get_params()).fit(X, y))
    # the response as a Series of the same frame works too
    users = dd.read_parquet(tmp_path / "users")
    _same(fit_ldp_dask(est, users.drop(columns="y"), users["y"]), model)


def test_state_moved_between_workers_does_not_grow_with_users():
    sizes = []
    for n in (2000, 20_000):
        X, y = _data(n=n, d=4)
        model = fit_ldp_dask(
            LDPSparseLinearRegression(bounds_X=2.0, bounds_y=3.0, random_state=0),
            da.from_array(X, chunks=1000),
            da.from_array(y, chunks=1000),
        )
        sizes.append(len(pickle.dumps(model)))
    assert abs(sizes[1] - sizes[0]) < 256  # O(cv d^2) sums, whatever n


@pytest.mark.skipif(not opendp_available(), reason="client reports need opendp")
def test_report_files_are_aggregated_by_the_workers(client, tmp_path):
    public = {"epsilon": 2.0, "delta": 1e-6, "bounds_X": 1.0, "bounds_y": 1.0}
    X, y = _data(n=90, d=3, seed=2)
    paths = []
    for j in range(3):  # three batches of devices, one file each
        rows = slice(30 * j, 30 * (j + 1))
        reports = LDPSparseLinearRegression(**public).privatize(
            X[rows], y[rows], user_ids=np.arange(30 * j, 30 * (j + 1))
        )
        reports.save(tmp_path / f"batch{j}.npz")
        paths.append(tmp_path / f"batch{j}.npz")
    dist = fit_ldp_dask(LDPSparseLinearRegression(**public), reports=paths)
    server = LDPSparseLinearRegression(**public)
    for path in reversed(paths):
        server.add_reports(LDPReports.load(path))
    _same(dist, server)
    assert dist.formal_guarantee_
    with pytest.raises(ValueError, match="other public parameters"):
        fit_ldp_dask(LDPSparseLinearRegression(**{**public, "epsilon": 1.0}), reports=paths)


def test_bad_dask_inputs_raise_clear_errors(tmp_path):
    X, y = _data(n=3000, d=3)
    est = LDPSparseLinearRegression(bounds_X=2.0, bounds_y=3.0, random_state=0)
    Xd, yd = da.from_array(X, chunks=1000), da.from_array(y, chunks=1000)
    keep = Xd[:, 0] > 0
    with pytest.raises(ValueError, match="unknown chunk sizes.*compute_chunk_sizes"):
        fit_ldp_dask(est, Xd[keep], yd[keep])
    with pytest.raises(ValueError, match="chunked differently"):
        fit_ldp_dask(est, Xd, da.from_array(y, chunks=700))
    with pytest.raises(ValueError, match="either reports"):
        fit_ldp_dask(est, Xd, yd, reports=["a.npz"])
    with pytest.raises(ValueError, match="give X and y"):
        fit_ldp_dask(est)
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    frame = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=y), npartitions=3)
    other = dd.from_pandas(pd.Series(y, name="y"), npartitions=2)
    with pytest.raises(ValueError, match="partitioned differently"):
        fit_ldp_dask(est, frame.drop(columns="y"), other)
    with pytest.raises(ValueError, match="is not a column"):
        fit_ldp_dask(est, frame, "target")
