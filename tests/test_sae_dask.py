"""SparseAutoencoder on dask arrays: lazy blockwise transform, streaming fit from zarr."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
da = pytest.importorskip("dask.array")

from sklearn.base import clone  # noqa: E402

from sparsestat.datasets import make_planted_features  # noqa: E402
from sparsestat.neural import BatchTopK, SparseAutoencoder, TopK  # noqa: E402
from tests._memory import peak_in_blocks  # noqa: E402

pytestmark = pytest.mark.torch

KW = {"n_components": 32, "max_epochs": 2, "batch_size": 128, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    return make_planted_features(2000, 16, 32, random_state=0)[0]


@pytest.fixture(scope="module")
def fitted(data):
    return SparseAutoencoder(activation=BatchTopK(3), **KW).fit(data)


def test_transform_of_a_dask_array_is_lazy_and_equals_numpy_float64(fitted, data):
    Xd = da.from_array(data, chunks=(300, 16))
    Z = fitted.transform(Xd)
    assert isinstance(Z, da.Array) and Z.shape == (2000, 32) and Z.dtype == np.float64
    assert Z.chunks[0] == Xd.chunks[0]
    np.testing.assert_allclose(Z.compute(), fitted.transform(data), rtol=0, atol=1e-12)
    back = fitted.inverse_transform(Z)
    assert isinstance(back, da.Array) and back.shape == data.shape
    np.testing.assert_allclose(
        back.compute(), fitted.inverse_transform(fitted.transform(data)), rtol=0, atol=1e-12
    )
    sparse = clone(fitted).set_params(sparse_output=True).fit(data)
    np.testing.assert_array_equal(sparse.transform(Xd).compute(), sparse.transform(data).toarray())


def test_transform_of_a_float32_dask_array_equals_numpy_to_float32_rounding(fitted, data):
    X32 = data.astype(np.float32)
    Z = fitted.transform(da.from_array(X32, chunks=(300, 16)))
    assert Z.dtype == np.float32
    ref = fitted.transform(X32)
    np.testing.assert_allclose(Z.compute(), ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


def test_transform_is_not_computed_before_asked(fitted, data):
    calls = []

    def block(x):
        calls.append(x.shape)
        return x

    Xd = da.from_array(data, chunks=(500, 16)).map_blocks(block, meta=np.empty((0, 16)))
    Z = fitted.transform(Xd)
    assert calls == []  # nothing read yet
    Z[:10].compute()
    assert len(calls) == 1  # only the first block


def test_fit_on_a_dask_array_equals_partial_fit_on_the_same_blocks(data):
    Xd = da.from_array(data, chunks=(700, 16))  # blocks of 700, 700, 600 rows
    streamed = SparseAutoencoder(activation=TopK(3), **KW).fit(Xd)
    manual = SparseAutoencoder(activation=TopK(3), **KW)
    for _ in range(KW["max_epochs"]):
        for lo in (0, 700, 1400):
            manual.partial_fit(data[lo : lo + 700])
    np.testing.assert_array_equal(streamed.components_, manual.components_)
    np.testing.assert_array_equal(streamed.transform(data), manual.transform(data))
    assert streamed.n_iter_ == 6 and streamed.n_epochs_ == 2
    refit = clone(streamed).fit(Xd)  # a second fit starts afresh
    np.testing.assert_array_equal(refit.components_, streamed.components_)


def test_streaming_fit_takes_dask_sample_weights_and_refuses_streamed_gradients(data):
    Xd = da.from_array(data, chunks=(1000, 16))
    sw = np.random.default_rng(0).uniform(0.5, 2.0, 2000)
    est = SparseAutoencoder(activation=TopK(3), **KW).fit(Xd, sample_weight=da.from_array(sw, 1000))
    manual = SparseAutoencoder(activation=TopK(3), **KW)
    for _ in range(2):
        for lo in (0, 1000):
            manual.partial_fit(data[lo : lo + 1000], sample_weight=sw[lo : lo + 1000])
    np.testing.assert_array_equal(est.components_, manual.components_)
    with pytest.raises(ValueError, match="sample_gradients"):
        SparseAutoencoder(**KW).fit(Xd, sample_gradients=np.ones_like(data))
    with pytest.raises(ValueError, match="row chunks"):
        SparseAutoencoder(**KW).fit(Xd, sample_weight=da.from_array(sw, 700))


_MEMORY_SCRIPT = """
import sys, tracemalloc
import numpy as np, dask.array as da, zarr
from sparsestat.datasets import make_planted_features
from sparsestat.neural import SparseAutoencoder, TopK

path, n_blocks, rows, d = sys.argv[1], 20, 2500, 64
z = zarr.create_array(path, shape=(n_blocks * rows, d), chunks=(rows, d), dtype="f8",
                      compressors=None)
X = make_planted_features(n_blocks * rows, d, 64, random_state=0)[0]
for i in range(n_blocks):
    z[i * rows : (i + 1) * rows] = X[i * rows : (i + 1) * rows]
del X
Xd = da.from_zarr(path)
kw = {"n_components": 64, "activation": TopK(4), "max_epochs": 1, "batch_size": 512}
SparseAutoencoder(**kw, random_state=1).fit(Xd[: 2 * rows])  # one-off allocations (JIT)
tracemalloc.start()
est = SparseAutoencoder(**kw, random_state=0).fit(Xd)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
assert est.n_iter_ == n_blocks, est.n_iter_
assert est.score(np.asarray(z[:rows])) > 0.5
print(peak / (rows * d * 8))
"""


def test_streaming_fit_from_zarr_holds_at_most_a_few_blocks_in_memory(tmp_path):
    # 20 uncompressed blocks of 1.3 MB on disk. zarr needs two to three blocks' worth to
    # read one (see tests/test_utils_dask.py) and the SAE's float32 copy and mini-batch
    # buffers take 0.9 of one, so the peak of the traced (NumPy / Python) memory of the whole
    # streaming fit must stay below four blocks' worth, against twenty for the whole array.
    # Measured in a fresh process, so that no other test's threads allocate meanwhile.
    pytest.importorskip("zarr")
    blocks = peak_in_blocks(_MEMORY_SCRIPT, tmp_path / "x.zarr")
    assert blocks < 4, f"peak memory of {blocks:.2f} blocks' worth"


def test_transform_on_a_local_cluster(fitted, data):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        Z = fitted.transform(da.from_array(data, chunks=(250, 16))).compute()
    np.testing.assert_allclose(Z, fitted.transform(data), rtol=0, atol=1e-12)
