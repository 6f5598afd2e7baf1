"""Inputs and outputs of the coder and the dictionary learners: SciPy sparse signals, pandas
output, dask arrays (lazy transform, streaming fit), array-API libraries, renamed parameters."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks

from sparsestat.decomposition import (
    LqDictionaryLearning,
    LqSparseCoder,
    MiniBatchLqDictionaryLearning,
    lq_sparse_encode,
)
from tests._instances import _lq_dictionary


def _problem(n=60, m=12, k=20, seed=0, density=0.3):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((k, m))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((n, m)) * (rng.random((n, m)) < density)
    return X, D


# ---------------------------------------------------------------------------- sparse input
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize(
    "penalty, solver, k",
    [
        ("l1", "lars", 20),
        ("l1", "cd", 20),
        ("l0", "omp", 20),
        ("l1/2", "cd", 20),
        ("l1", "fista", 20),  # Gram form (k <= 2 m)
        ("l0", "ista", 20),
        ("l1", "fista", 40),  # residual form (k > 2 m): densified one block at a time
        ("cel0", "fista", 40),
    ],
)
def test_sparse_X_codes_equal_dense_codes(fmt, penalty, solver, k):
    X, D = _problem(k=k)
    Xs = sp.csr_array(X) if fmt == "csr" else sp.csc_array(X)
    kw = {"penalty": penalty, "alpha": 0.2, "solver": solver, "batch_size": 25}
    dense = lq_sparse_encode(X, D, **kw)
    assert_allclose(lq_sparse_encode(Xs, D, **kw), dense, rtol=1e-9, atol=1e-10)
    coder = LqSparseCoder(D, **kw)
    assert_allclose(coder.fit(Xs).transform(Xs), dense, rtol=1e-9, atol=1e-10)
    assert_allclose(coder.objective(Xs, dense), coder.objective(X, dense), rtol=1e-12)


def test_sparse_X_is_not_densified():
    # 20,000 x 5,000 at 0.1 % density: the dense matrix would take 800 MB
    rng = np.random.default_rng(0)
    X = sp.random_array((20_000, 5_000), density=1e-3, format="csr", rng=rng)
    D = rng.standard_normal((32, 5_000))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    tracemalloc.start()
    try:
        C = LqSparseCoder(D, alpha=0.05).transform(X)
        C2 = LqSparseCoder(D, alpha=0.05, solver="fista", max_iter=20).transform(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert C.shape == C2.shape == (20_000, 32)
    assert peak < 60e6, peak  # codes and X D^T are 5 MB each
    rows = X[:50].toarray()
    assert_allclose(C[:50], lq_sparse_encode(rows, D, alpha=0.05), atol=1e-10)


def test_dictionary_learners_transform_sparse_and_fit_says_why_not():
    X, _ = _problem(n=80, m=10, density=0.5)
    for est in (
        LqDictionaryLearning(6, alpha=0.1, max_iter=3, random_state=0),
        MiniBatchLqDictionaryLearning(6, alpha=0.1, max_iter=2, batch_size=20, random_state=0),
    ):
        est.fit(X)
        assert_allclose(est.transform(sp.csr_array(X)), est.transform(X), rtol=1e-9, atol=1e-12)
        assert_allclose(est.transform(sp.csc_matrix(X)), est.transform(X), rtol=1e-9, atol=1e-12)
        with pytest.raises(TypeError, match="transform accepts sparse X"):
            type(est)(6).fit(sp.csr_array(X))
    with pytest.raises(TypeError, match="transform accepts sparse X"):
        MiniBatchLqDictionaryLearning(6).partial_fit(sp.csr_array(X))
    Dc = _lq_dictionary(4, 10) * (1 + 1j)
    with pytest.raises(ValueError, match="real dictionary"):
        lq_sparse_encode(sp.csr_array(X), Dc)


# ---------------------------------------------------------------------------- pandas output
def test_pipelines_output_pandas_with_named_codes():
    pd = pytest.importorskip("pandas")
    X, D = _problem(n=40, m=6, k=5)
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(6)], index=np.arange(100, 140))
    for coder, width, prefix in [
        (LqSparseCoder(D, alpha=0.1), 5, "lqsparsecoder"),
        (LqSparseCoder(D, alpha=0.1, split_sign=True), 10, "lqsparsecoder"),
        (LqDictionaryLearning(4, alpha=0.1, max_iter=3, random_state=0), 4, "lqdictionarylearning"),
        (
            MiniBatchLqDictionaryLearning(4, alpha=0.1, max_iter=2, batch_size=10, random_state=0),
            4,
            "minibatchlqdictionarylearning",
        ),
    ]:
        pipe = make_pipeline(StandardScaler(), coder).set_output(transform="pandas")
        out = pipe.fit_transform(df)
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == [f"{prefix}{i}" for i in range(width)]
        assert list(out.index) == list(df.index)
        assert list(pipe.get_feature_names_out()) == list(out.columns)
        plain = make_pipeline(StandardScaler(), clone(coder)).fit_transform(X)
        assert_allclose(out.to_numpy(), plain)
    coder = LqSparseCoder(D, alpha=0.1).fit(df)
    assert list(coder.feature_names_in_) == list(df.columns)


# ---------------------------------------------------------------------------- dask arrays
def test_coder_transform_of_dask_array_is_lazy_with_the_codes_shape():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 16))
    D = rng.standard_normal((8, 16))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    calls = []

    def block(i):
        calls.append(i)
        return X[i * 500 : (i + 1) * 500]

    import dask

    Xd = da.concatenate(
        [da.from_delayed(dask.delayed(block)(i), (500, 16), dtype=float) for i in range(4)]
    )
    coder = LqSparseCoder(D, penalty="l0", alpha=0.1)
    C = coder.transform(Xd)
    assert calls == []  # nothing computed yet
    assert isinstance(C, da.Array) and C.shape == (2000, 8) and C.dtype == np.float64
    assert_allclose(C.compute(), coder.transform(X), rtol=1e-12, atol=1e-12)
    signed = LqSparseCoder(D, alpha=0.1, split_sign=True).transform(da.from_array(X, chunks=700))
    assert signed.shape == (2000, 16) and signed.chunks[0] == (700, 700, 600)
    c32 = coder.transform(da.from_array(X.astype(np.float32), chunks=500))
    assert c32.dtype == np.float32 and c32.compute().dtype == np.float32


def test_dictionary_learner_transform_of_dask_array():
    da = pytest.importorskip("dask.array")
    X, _ = _problem(n=300, m=10, density=0.6)
    dl = LqDictionaryLearning(6, penalty="l1/2", alpha=0.1, max_iter=3, random_state=0).fit(X)
    C = dl.transform(da.from_array(X, chunks=(70, 5)))
    assert isinstance(C, da.Array) and C.shape == (300, 6)
    assert_allclose(C.compute(), dl.transform(X), rtol=1e-12, atol=1e-12)


def test_minibatch_fit_of_dask_array_equals_partial_fit_on_its_chunks(tmp_path):
    da = pytest.importorskip("dask.array")
    zarr = pytest.importorskip("zarr")
    X, _ = _problem(n=400, m=10, density=0.7, seed=3)
    kw = {"penalty": "l1/2", "alpha": 0.1, "batch_size": 30, "max_iter": 2, "random_state": 0}
    store = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(90, 10))
    store[:] = X
    for Xd in (da.from_array(X, chunks=(90, 10)), da.from_zarr(str(tmp_path / "x.zarr"))):
        streamed = MiniBatchLqDictionaryLearning(**kw).fit(Xd)
        online = MiniBatchLqDictionaryLearning(**kw)
        for _ in range(2):  # max_iter passes over the blocks, in storage order
            for s in range(0, 400, 90):
                online.partial_fit(X[s : s + 90])
        assert streamed.n_steps_ == online.n_steps_ == 2 * (3 * 4 + 2)
        assert streamed.n_iter_ == 2 and streamed.error_.shape == (2,)
        assert_allclose(streamed.components_, online.components_, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        MiniBatchLqDictionaryLearning(**kw).fit(Xd[Xd[:, 0] > -10])


def test_streaming_fit_holds_few_chunks_in_memory():
    da = pytest.importorskip("dask.array")
    import dask

    chunk = (4000, 32)  # 1 MB per chunk, 20 chunks, each made only when it is read

    def make(i):
        return np.random.default_rng(i).standard_normal(chunk)

    blocks = [da.from_delayed(dask.delayed(make)(i), chunk, dtype=float) for i in range(20)]
    Xd = da.concatenate(blocks)

    def est():
        return MiniBatchLqDictionaryLearning(
            16, alpha=0.5, max_iter=1, batch_size=500, random_state=0
        )

    est().fit(Xd[:8000])  # imports and compiled kernels are not part of the measure
    tracemalloc.start()
    try:
        fitted = est().fit(Xd)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fitted.n_steps_ == 160
    assert peak < 3 * 4000 * 32 * 8, peak  # (dask alone takes 2.3 chunks to read one)


# ---------------------------------------------------------------------------- partial_fit
def test_partial_fit_takes_one_step_per_mini_batch():
    X, _ = _problem(n=95, m=8, density=0.8, seed=1)
    kw = {"penalty": "cel0", "alpha": 0.1, "batch_size": 30, "random_state": 0}
    whole = MiniBatchLqDictionaryLearning(6, **kw).partial_fit(X)
    pieces = MiniBatchLqDictionaryLearning(6, **kw)
    pieces._start(X)  # the same initial dictionary as a first call on all of X
    pieces.n_iter_, pieces.error_ = 0, np.zeros(0)
    for s in range(0, 95, 30):
        pieces.partial_fit(X[s : s + 30])
    assert whole.n_steps_ == pieces.n_steps_ == 4
    assert_allclose(whole.components_, pieces.components_, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------- renamed parameters
@pytest.mark.parametrize("cls", [LqDictionaryLearning, MiniBatchLqDictionaryLearning])
def test_learning_rate_is_renamed_lr(cls):
    X, _ = _problem(n=60, m=6, density=0.8)
    kw = {"fit_algorithm": "sgd", "alpha": 0.1, "max_iter": 2, "random_state": 0}
    new = cls(4, lr=0.3, **kw).fit(X)
    with pytest.warns(FutureWarning, match="'learning_rate' was renamed to 'lr'"):
        old = cls(4, learning_rate=0.3, **kw).fit(X)
    assert_allclose(old.components_, new.components_)
    with pytest.raises(ValueError, match="set only 'lr'"):
        cls(4, lr=0.2, learning_rate=0.3, **kw).fit(X)
    assert cls().verbose == 0 and cls().get_params()["lr"] == 1e-2


def test_full_batch_shuffle_is_deprecated():
    X, _ = _problem(n=40, m=6, density=0.8)
    with pytest.warns(FutureWarning, match="'shuffle' has no effect"):
        LqDictionaryLearning(4, alpha=0.1, max_iter=2, shuffle=True).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        LqDictionaryLearning(4, alpha=0.1, max_iter=2).fit(X)


# ---------------------------------------------------------------------------- array-API libraries
def _namespaces():
    """(name, module) of the array libraries that run on this machine's CPU."""
    out = []
    for name in ("array_api_strict", "torch"):
        try:
            out.append((name, __import__(name)))
        except ImportError:  # pragma: no cover - both are test dependencies
            continue
    return out


@pytest.mark.parametrize("name, xp", _namespaces(), ids=[n for n, _ in _namespaces()])
@pytest.mark.parametrize("k", [10, 30])  # Gram form, residual form
def test_generic_coders_on_array_api_libraries_equal_numpy(name, xp, k):
    X, D = _problem(n=8, m=12, k=k, density=1.0, seed=4)
    cases = [(p, "fista") for p in ("l1", "l0", "l1/2", "lq", "cel0")] + [
        ("l1", "ista"),
        ("cel0", "ista"),
    ]
    for penalty, solver in cases:
        kw = {"penalty": penalty, "alpha": 0.2, "q": 0.7, "solver": solver, "max_iter": 40}
        ref = lq_sparse_encode(X, D, **kw)
        out = lq_sparse_encode(xp.asarray(X), xp.asarray(D), **kw)
        assert type(out).__module__.split(".")[0] == name
        assert_allclose(np.asarray(out), ref, rtol=1e-10, atol=1e-12)
    # a NumPy dictionary follows the signals into their library
    coder = LqSparseCoder(D, penalty="l1/2", alpha=0.2, max_iter=60)
    out = coder.transform(xp.asarray(X))
    assert type(out).__module__.split(".")[0] == name
    assert_allclose(np.asarray(out), coder.transform(X), atol=1e-12)
    with pytest.raises(ValueError, match="use 'fista'"):
        lq_sparse_encode(xp.asarray(X), xp.asarray(D), solver="cd")


def _array_api_cases():
    return [
        ("array_api_strict", "CPU_DEVICE", "float64"),
        ("array_api_strict", "device1", "float32"),
        ("torch", "cpu", "float64"),
        ("torch", "cpu", "float32"),
    ]


@pytest.mark.parametrize("ns, device, dtype", _array_api_cases())
def test_sklearn_array_api_checks_with_matching_dictionary(monkeypatch, ns, device, dtype):
    # scikit-learn's array-API checks need SCIPY_ARRAY_API=1 (set by `make test`)
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    from sklearn.utils._testing import _array_api_for_tests

    xp, dev = _array_api_for_tests(ns, device, dtype)
    D = _lq_dictionary(5, 10)  # the checks use X with 10 features
    for solver in ("fista", "ista"):
        est = LqSparseCoder(xp.asarray(D, device=dev), alpha=0.1, solver=solver)
        for check_values in (False, True):
            estimator_checks.check_array_api_input(
                "LqSparseCoder",
                est,
                array_namespace=ns,
                device_name=device,
                dtype_name=dtype,
                check_values=check_values,
            )


def test_sklearn_array_api_namespace_checks_with_matching_dictionary(monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    import array_api_strict
    from sklearn.utils._array_api import NamespaceAndDevice

    D = _lq_dictionary(5, 10)
    estimator_checks.check_array_api_same_namespace(
        "LqSparseCoder",
        LqSparseCoder(array_api_strict.asarray(D), alpha=0.1),
        array_namespace="array_api_strict",
    )
    # the mixed-input permutation that runs without a GPU: y on array_api_strict's
    # second device, X a torch CPU tensor (the others are in gpu/test_gpu_coding.py)
    torch = pytest.importorskip("torch")
    estimator_checks.check_array_api_mixed_inputs(
        "LqSparseCoder",
        LqSparseCoder(torch.asarray(D), alpha=0.1),
        other_ns_and_device=NamespaceAndDevice("array_api_strict", "device1"),
        X_ns_and_device=NamespaceAndDevice("torch", "cpu"),
    )
