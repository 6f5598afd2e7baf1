"""GPU: LqSparseCoder on CuPy arrays and CUDA torch tensors against the NumPy path.

The coder's FISTA / ISTA path is array-API code: on the GPU it is the same algorithm as on
the CPU (the CPU run of the same checks on ``array_api_strict`` and torch CPU tensors is in
``tests/test_lq_coding_io.py``). Tolerances:

- float64, ISTA for a fixed 200 steps (one path, only the order of the sums in the GEMMs
  differs): codes equal to 1e-8; FISTA on l1 run to convergence (``tol=1e-10``, a convex
  problem with one solution): codes equal to 1e-6. (FISTA's momentum restarts compare
  objectives, so after a few hundred steps on a non-convex penalty two devices may follow
  different paths to different critical points: those runs are compared through the
  objective, below.)
- float32 FISTA against float64 FISTA on the CPU: the mean objective
  ``1/2 ||x - c D||^2 + alpha P(c)`` over the signals within 1e-3 relative.

Also: scikit-learn's array-API checks on the CUDA namespaces with a matching dictionary, and
no growth of the device memory pool over 20 ``transform`` calls.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.utils import estimator_checks

from sparsestat.decomposition import LqSparseCoder, lq_sparse_encode

pytestmark = pytest.mark.gpu

PENALTIES = ["l1", "l0", "l1/2", "lq", "cel0"]


def _lq_dictionary(k, m):
    D = np.random.default_rng(0).standard_normal((k, m))
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def _problem(n=4096, m=64, k=128, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((k, m))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return rng.standard_normal((n, m)), D


def _objective(X, C, D, penalty):
    coder = LqSparseCoder(D, penalty=penalty, alpha=0.2, q=0.7)
    return coder.objective(X, C)


def _check_library(asarray, to_numpy):
    for k in (128, 256):  # Gram form (k <= 2 m), residual form
        X, D = _problem(k=k)
        Xd, Dd = asarray(X), asarray(D)
        for penalty in PENALTIES:
            kw = {"penalty": penalty, "alpha": 0.2, "q": 0.7}
            # ISTA for a fixed number of steps: the same path on both devices
            ista = {**kw, "solver": "ista", "max_iter": 200, "tol": 0.0}
            ref = lq_sparse_encode(X, D, **ista)
            got = to_numpy(lq_sparse_encode(Xd, Dd, **ista))
            np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-8, err_msg=penalty)
            # FISTA in float32 against FISTA in float64 on the CPU, through the objective
            fista = {**kw, "solver": "fista", "max_iter": 300}
            ref = lq_sparse_encode(X, D, **fista)
            got32 = to_numpy(LqSparseCoder(D, **fista).transform(asarray(X.astype(np.float32))))
            F32 = _objective(X, got32.astype(np.float64), D, penalty)
            F64 = _objective(X, ref, D, penalty)
            assert F32.mean() <= F64.mean() * (1 + 1e-3), (penalty, k, F32.mean(), F64.mean())
        l1 = {"penalty": "l1", "alpha": 0.2, "solver": "fista", "max_iter": 5000, "tol": 1e-10}
        got = to_numpy(lq_sparse_encode(Xd, Dd, **l1))
        np.testing.assert_allclose(got, lq_sparse_encode(X, D, **l1), atol=1e-6)


def test_coder_on_cupy_matches_numpy(cp):
    _check_library(cp.asarray, cp.asnumpy)


def test_coder_on_torch_cuda_matches_numpy(torch_cuda):
    _check_library(
        lambda a: torch_cuda.asarray(a, device="cuda"), lambda t: t.detach().cpu().numpy()
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sklearn_array_api_checks_on_cuda(torch_cuda, monkeypatch, dtype):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    from sklearn.utils._array_api import NamespaceAndDevice

    D = _lq_dictionary(5, 10)
    est = LqSparseCoder(torch_cuda.asarray(D, device="cuda"), alpha=0.1)
    estimator_checks.check_array_api_input(
        "LqSparseCoder",
        est,
        array_namespace="torch",
        device_name="cuda",
        dtype_name=dtype,
        check_values=True,
    )
    estimator_checks.check_array_api_mixed_inputs(
        "LqSparseCoder",
        est,
        other_ns_and_device=NamespaceAndDevice("numpy", None),
        X_ns_and_device=NamespaceAndDevice("torch", "cuda"),
    )


def test_sklearn_array_api_checks_on_cupy(cp, monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    est = LqSparseCoder(cp.asarray(_lq_dictionary(5, 10)), alpha=0.1)
    estimator_checks.check_array_api_input(
        "LqSparseCoder", est, array_namespace="cupy", check_values=True
    )


def test_device_memory_does_not_grow_over_repeated_transforms(cp):
    X, D = _problem(n=20_000, k=256)
    coder = LqSparseCoder(D, penalty="l1/2", alpha=0.2, max_iter=100)
    Xg = cp.asarray(X)
    pool = cp.get_default_memory_pool()
    coder.transform(Xg)  # warm-up: the pool keeps the blocks of the first call
    cp.cuda.Device().synchronize()
    used = []
    for _ in range(20):
        C = coder.transform(Xg)
        del C
        cp.cuda.Device().synchronize()
        used.append(pool.used_bytes())
    assert max(used) <= used[0] + 1024, used


def test_coding_throughput_is_printed(cp):
    """Signals per second on the GPU and on the CPU (not asserted; shown by ``make gpu``)."""
    X, D = _problem(n=200_000, m=64, k=256)
    coder = LqSparseCoder(D, penalty="l1/2", alpha=0.2, solver="fista", max_iter=200)
    Xg = cp.asarray(X)
    coder.transform(Xg[:1000])
    cp.cuda.Device().synchronize()
    t0 = time.perf_counter()
    coder.transform(Xg)
    cp.cuda.Device().synchronize()
    t_gpu = time.perf_counter() - t0
    t0 = time.perf_counter()
    coder.transform(X[:20_000])
    t_cpu = (time.perf_counter() - t0) * 10  # extrapolated from a tenth of the signals
    print(
        f"LqSparseCoder l1/2 FISTA, 200k x 64 signals, 256 atoms: GPU {2e5 / t_gpu:.3g} "
        f"signals/s, CPU {2e5 / t_cpu:.3g} signals/s ({t_cpu / t_gpu:.1f}x)"
    )
