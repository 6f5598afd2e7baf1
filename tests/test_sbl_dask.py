"""SBL past one machine: many Kronecker problems on a dask cluster, lazy dask predictions.

The cluster is ``LocalCluster(processes=False, n_workers=2)``, at sizes that keep the module
within a few seconds. Every expected value is the plain NumPy result, fitted row by row.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

da = pytest.importorskip("dask.array", reason="dask (the `dask` extra) is not installed")
distributed = pytest.importorskip("distributed", reason="distributed is not installed")

from sparsestat.bayes import (  # noqa: E402
    KroneckerSBL,
    SparseBayesianLearning,
    kronecker_sbl_many,
)
from sparsestat.datasets import make_irs_mimo_channel  # noqa: E402

SMALL_IRS = {"n_ms": 4, "n_bs": 4, "n_irs": 16, "grid_size": 6, "snr_db": 20.0}
PARAMS = {"method": "am", "block": [0.8, None, 0.8], "max_iter": 15}


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as c:  # fmt: skip
        yield c


def channels(n):
    """``n`` channels measured with one pilot / IRS-phase design (shared factors)."""
    rows = [
        make_irs_mimo_channel(random_state=t, design_random_state=0, **SMALL_IRS) for t in range(n)
    ]
    factors = rows[0][0]
    for f, _, _ in rows[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(f, factors))
    return factors, np.stack([y for _, y, _ in rows])


@contextlib.contextmanager
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


class CountingArray:
    """An array-like that counts reads, to prove that nothing is computed up front."""

    def __init__(self, a):
        self.a, self.reads = a, 0
        self.shape, self.dtype, self.ndim = a.shape, a.dtype, a.ndim

    def __getitem__(self, key):
        self.reads += 1
        return self.a[key]


def test_many_problems_on_a_cluster_equal_row_by_row_fits(client):
    factors, Y = channels(4)
    source = CountingArray(Y)
    Yd = da.from_array(source, chunks=(2, -1))
    probed = source.reads  # dask reads an empty slice for the block type
    coef, info = kronecker_sbl_many(factors, Yd, return_info=True, **PARAMS)
    assert isinstance(coef, da.Array) and coef.shape == (4, 6**3) and source.reads == probed
    # the design is one key of the graph (sent to each worker once), not one copy per block
    keys = [k for k in dict(coef.__dask_graph__()) if "_checked_design" in str(k)]
    assert len(keys) == 1 and coef.numblocks[0] == 2
    got, n_iter, conv = client.compute([coef, info["n_iter"], info["converged"]], sync=True)
    for t in range(4):
        est = KroneckerSBL(**PARAMS)
        with quiet():
            est.fit(factors, Y[t])
        assert np.array_equal(got[t], est.coef_)
        assert n_iter[t] == est.n_iter_ and conv[t] == est.converged_
    # the NumPy path gives the same, here in this process
    assert np.array_equal(kronecker_sbl_many(factors, Y, **PARAMS), got)


def test_many_problems_bad_input():
    factors, Y = channels(2)
    with pytest.raises(ValueError, match=rf"shape \(n_problems, {Y.shape[1]}\)"):
        kronecker_sbl_many(factors, Y[:, :-1])
    with pytest.raises(ValueError, match="method"):
        kronecker_sbl_many(factors, Y, method="bogus")
    Yd = da.from_array(Y, chunks=(1, -1))
    unknown = Yd[da.from_array(np.array([True, False]), chunks=1)]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        kronecker_sbl_many(factors, unknown)


@pytest.mark.parametrize("cplx", [False, True])
def test_sbl_predict_on_dask_arrays_is_lazy_and_equal(client, cplx):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 12)) + (1j * rng.standard_normal((60, 12)) if cplx else 0)
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + 3.0 + 0.1 * rng.standard_normal(60)
    est = SparseBayesianLearning().fit(X, y)
    X_new = rng.standard_normal((50, 12))
    source = CountingArray(X_new)
    Xd = da.from_array(source, chunks=(16, 12))
    probed = source.reads
    mean, std = est.predict(Xd, return_std=True)
    assert isinstance(mean, da.Array) and isinstance(std, da.Array) and source.reads == probed
    ref_mean, ref_std = est.predict(X_new, return_std=True)
    assert mean.dtype == ref_mean.dtype and mean.shape == ref_mean.shape
    got_mean, got_std = client.compute([mean, std], sync=True)
    assert np.allclose(got_mean, ref_mean, rtol=1e-12, atol=0)
    assert np.allclose(got_std, ref_std, rtol=1e-12, atol=0)


def test_kronecker_sbl_predict_on_dask_arrays():
    factors, Y = channels(1)
    A1, A2, A3 = factors
    with quiet():
        split = KroneckerSBL(factors=[A2, A3], **PARAMS).fit(A1, Y[0].reshape(A1.shape[0], -1))
    rows = da.from_array(A1, chunks=(2, -1))
    got = split.predict(rows)
    assert isinstance(got, da.Array) and got.shape == (A1.shape[0], A2.shape[0] * A3.shape[0])
    assert np.allclose(got.compute(scheduler="sync"), split.predict(A1), rtol=1e-12, atol=0)
    dense = np.kron(np.kron(A1, A2), A3)
    with quiet():
        one = KroneckerSBL(max_iter=20).fit(dense, Y[0])
    got = one.predict(da.from_array(dense, chunks=(40, -1))).compute(scheduler="sync")
    assert np.allclose(got, one.predict(dense), rtol=1e-12, atol=0)
