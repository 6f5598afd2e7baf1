"""IHTRegressor on the GPU (CuPy and CUDA torch, array-API dispatch) against the CPU fit.

The whole fit (weights, centring, normalised IHT, least-squares refit) and ``predict`` run on
the device; ``coef_`` stays there. Tolerances: float64 1e-8 on the coefficients (the
iterations are the same; only reductions are ordered differently on the device) and the same
support; float32 the same support and ``rtol = 1e-3`` against the float64 CPU fit (float32
least squares on a well-conditioned 20-column support). Memory: 20 fits must not grow the
device's memory pool. The same fit runs on torch CPU and array-api-strict in ``make test``
(tests/test_iht.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import config_context

from sparsestat.linear_model import IHTRegressor

pytestmark = pytest.mark.gpu


def _problem(n=20_000, d=2_000, k=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = np.zeros(d)
    w[rng.choice(d, k, replace=False)] = rng.choice([-1.0, 1.0], k) * rng.uniform(1, 2, k)
    return X, X @ w + 0.1 * rng.standard_normal(n), w


def _check(asarray, to_numpy, dtype):
    X, y, w = _problem()
    sw = np.random.default_rng(1).uniform(0.5, 2.0, y.size)
    ref = IHTRegressor(20).fit(X, y, sample_weight=sw)
    Xd, yd, swd = (asarray(a.astype(dtype)) for a in (X, y, sw))
    with config_context(array_api_dispatch=True):
        est = IHTRegressor(20).fit(Xd, yd, sample_weight=swd)
        pred = est.predict(Xd)
    coef = to_numpy(est.coef_)
    np.testing.assert_array_equal(np.flatnonzero(coef), np.flatnonzero(ref.coef_))
    if dtype == np.float64:
        np.testing.assert_allclose(coef, ref.coef_, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(to_numpy(pred), ref.predict(X), rtol=1e-8, atol=1e-8)
    else:
        np.testing.assert_allclose(coef, ref.coef_, rtol=1e-3, atol=1e-3)
    return est


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_iht_on_cupy_matches_cpu(cp, dtype):
    est = _check(cp.asarray, cp.asnumpy, dtype)
    assert isinstance(est.coef_, cp.ndarray)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_iht_on_torch_cuda_matches_cpu(torch_cuda, dtype):
    est = _check(lambda a: torch_cuda.from_numpy(a).cuda(), lambda t: t.cpu().numpy(), dtype)
    assert est.coef_.is_cuda


def test_iht_releases_device_memory(cp):
    X, y, _ = _problem(n=5_000, d=500)
    Xd, yd = cp.asarray(X), cp.asarray(y)
    pool = cp.get_default_memory_pool()
    with config_context(array_api_dispatch=True):
        IHTRegressor(20).fit(Xd, yd)
        cp.cuda.Device().synchronize()
        before = pool.used_bytes()
        for _ in range(20):
            IHTRegressor(20).fit(Xd, yd)
        cp.cuda.Device().synchronize()
    assert pool.used_bytes() <= before + 1024**2
