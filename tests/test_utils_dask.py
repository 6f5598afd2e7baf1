"""The dask helpers every row-wise or streaming estimator uses (sparsestat.utils._dask)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.decomposition import IncrementalPCA

from sparsestat.utils._dask import (
    StreamingFitError,
    is_dask_array,
    partial_fit_chunks,
    rowwise,
)
from tests._memory import peak_in_blocks

da = pytest.importorskip("dask.array")


class _Project(TransformerMixin, BaseEstimator):
    """Row-wise transformer whose output width differs from the input's."""

    def fit(self, X, y=None):
        self.components_ = np.random.default_rng(0).standard_normal((3, X.shape[1]))
        return self

    @rowwise(n_outputs=lambda est: est.components_.shape[0])
    def transform(self, X):
        return np.tanh(np.asarray(X) @ self.components_.T)


class _Linear(RegressorMixin, BaseEstimator):
    def fit(self, X, y):
        self.coef_ = np.linalg.lstsq(X, y, rcond=None)[0]
        return self

    @rowwise()
    def predict(self, X):
        return np.asarray(X) @ self.coef_


class _Mean(BaseEstimator):
    """Streaming mean: partial_fit keeps a running sum only (O(d) memory)."""

    def partial_fit(self, X, y=None, sample_weight=None):
        w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight)
        self.sum_ = getattr(self, "sum_", 0.0) + w @ X
        self.n_ = getattr(self, "n_", 0.0) + w.sum()
        self.calls_ = getattr(self, "calls_", 0) + 1
        return self


def _counted(X_np, chunks):
    """A dask array over X_np that counts how many blocks were computed."""
    calls = {"n": 0}
    lock = threading.Lock()

    def load(block):
        with lock:
            calls["n"] += 1
        return block

    meta = np.empty((0, 0), dtype=X_np.dtype)
    return da.from_array(X_np, chunks=chunks).map_blocks(load, dtype=X_np.dtype, meta=meta), calls


def test_rowwise_is_lazy_has_the_right_shape_and_equals_numpy():
    X = np.random.default_rng(1).standard_normal((103, 7))
    est = _Project().fit(X)
    Xd, calls = _counted(X, (25, 7))
    Z = est.transform(Xd)
    assert calls["n"] == 0, "building the lazy result computed the input"
    assert is_dask_array(Z)
    assert Z.shape == (103, 3) and Z.chunks == ((25, 25, 25, 25, 3), (3,))
    assert Z.dtype == np.float64
    np.testing.assert_allclose(Z.compute(), est.transform(X), rtol=0, atol=1e-12)


def test_rowwise_1d_output_column_chunks_and_float32():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((60, 5)), rng.standard_normal(60)
    est = _Linear().fit(X, y)
    Xd = da.from_array(X.astype(np.float32), chunks=(16, 2))  # several column chunks
    p = est.predict(Xd)
    assert p.shape == (60,) and p.dtype == np.float32
    np.testing.assert_allclose(p.compute(), est.predict(X.astype(np.float32)), rtol=1e-6)
    # NumPy input is untouched by the decorator
    assert isinstance(est.predict(X), np.ndarray)


def test_unknown_chunk_sizes_are_refused_with_a_hint():
    X = da.from_array(np.arange(40.0).reshape(20, 2), chunks=(5, 2))
    X_unknown = X[X[:, 0] > 3]
    est = _Project().fit(np.ones((2, 2)))
    with pytest.raises(ValueError, match="unknown chunk sizes.*compute_chunk_sizes"):
        est.transform(X_unknown)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        partial_fit_chunks(_Mean(), X_unknown)


def test_partial_fit_chunks_equals_partial_fit_on_the_same_blocks():
    X = np.random.default_rng(3).standard_normal((120, 6))
    Xd = da.from_array(X, chunks=(30, 3))
    streamed = partial_fit_chunks(IncrementalPCA(n_components=2), Xd)
    by_hand = IncrementalPCA(n_components=2)
    for lo in range(0, 120, 30):
        by_hand.partial_fit(X[lo : lo + 30])
    np.testing.assert_array_equal(streamed.components_, by_hand.components_)
    np.testing.assert_array_equal(streamed.mean_, by_hand.mean_)


def test_sample_weight_and_y_follow_the_blocks():
    rng = np.random.default_rng(4)
    X, w = rng.standard_normal((50, 3)), rng.uniform(0, 2, 50)
    est = partial_fit_chunks(_Mean(), da.from_array(X, chunks=10), sample_weight=w)
    np.testing.assert_allclose(est.sum_ / est.n_, np.average(X, axis=0, weights=w))
    assert est.calls_ == 5
    wd = da.from_array(w, chunks=10)
    est2 = partial_fit_chunks(_Mean(), da.from_array(X, chunks=10), sample_weight=wd)
    np.testing.assert_array_equal(est2.sum_, est.sum_)


def test_mismatched_row_chunks_of_X_and_y_are_refused():
    X = da.ones((40, 2), chunks=(10, 2))
    y = da.ones(40, chunks=8)
    with pytest.raises(ValueError, match="different row chunks"):
        partial_fit_chunks(_Mean(), X, y)
    with pytest.raises(ValueError, match="40 rows but y has 39"):
        partial_fit_chunks(_Mean(), X, np.ones(39))


def test_a_failing_block_stops_the_fit_loudly_and_it_can_resume():
    X = np.arange(60.0).reshape(30, 2)
    broken = {"on": True}

    def load(block, block_info=None):
        if broken["on"] and block_info[0]["chunk-location"][0] == 2:
            raise OSError("worker lost")
        return block

    Xd = da.from_array(X, chunks=(10, 2)).map_blocks(load, dtype=X.dtype)
    est = _Mean()
    with pytest.raises(StreamingFitError, match="block 2 of 3.*start=2") as info:
        partial_fit_chunks(est, Xd)
    assert info.value.chunks_done == 2 and est.calls_ == 2
    broken["on"] = False
    partial_fit_chunks(est, Xd, start=info.value.chunks_done)
    np.testing.assert_allclose(est.sum_, X.sum(axis=0))


_MEMORY_SCRIPT = """
import sys, tracemalloc
import numpy as np, dask.array as da, zarr
from sparsestat.utils._dask import partial_fit_chunks

class Mean:
    def partial_fit(self, X):
        self.sum_ = getattr(self, "sum_", 0.0) + X.sum(axis=0)
        self.calls_ = getattr(self, "calls_", 0) + 1
        return self

path, n_blocks, rows, d = sys.argv[1], 20, 1250, 100
z = zarr.create_array(path, shape=(n_blocks * rows, d), chunks=(rows, d), dtype="f8",
                      compressors=None)
rng = np.random.default_rng(0)
for i in range(n_blocks):
    z[i * rows : (i + 1) * rows] = rng.standard_normal((rows, d))
X = da.from_zarr(path)
partial_fit_chunks(Mean(), X[: 2 * rows])  # one-off allocations (caches, imports)
tracemalloc.start()
est = partial_fit_chunks(Mean(), X)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
assert est.calls_ == n_blocks
np.testing.assert_allclose(est.sum_, np.asarray(z).sum(axis=0))
print(peak / (rows * d * 8))
"""


def test_streaming_fit_from_zarr_holds_at_most_a_few_blocks_in_memory(tmp_path):
    # 20 blocks of 1 MB in an uncompressed zarr store on disk; the running-mean estimator
    # keeps O(d), so the peak is what reading one block costs. zarr itself needs two to three
    # blocks' worth to read one (the bytes read, the decoded array and, in some reads, one
    # more transient copy: 2.1-3.2 measured over repeated passes), so the bound is four,
    # against twenty for the whole array; tests/test_lq_coding_io.py holds a streaming fit
    # over 20 in-memory dask chunks below three. Measured in a fresh process, so that no
    # other test's threads allocate meanwhile.
    pytest.importorskip("zarr")
    blocks = peak_in_blocks(_MEMORY_SCRIPT, tmp_path / "x.zarr")
    assert blocks < 4, f"peak memory of {blocks:.2f} blocks' worth"


def test_on_a_local_cluster():
    distributed = pytest.importorskip("distributed")
    X = np.random.default_rng(5).standard_normal((64, 4))
    est = _Project().fit(X)
    with (
        distributed.LocalCluster(
            n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        Z = est.transform(da.from_array(X, chunks=16)).compute()
        streamed = partial_fit_chunks(_Mean(), da.from_array(X, chunks=16))
    np.testing.assert_allclose(Z, est.transform(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(streamed.sum_, X.sum(axis=0), rtol=1e-12)
