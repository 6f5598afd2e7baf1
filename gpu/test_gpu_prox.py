"""Prox kernels: the CuPy path against the CPU (Numba) path, with timings."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sparsestat._kernels import prox as P

pytestmark = pytest.mark.gpu

CASES = {
    "prox_l1": lambda z: P.prox_l1(z, 0.5),
    "prox_l0": lambda z: P.prox_l0(z, 0.5),
    "prox_l1_2": lambda z: P.prox_l1_2(z, 0.5),
    "prox_lq": lambda z: P.prox_lq(z, 0.5, 0.3),
    "prox_cel0": lambda z: P.prox_cel0(z, 0.5, 0.7, 1.1),
    "prox_group_l1": lambda z: P.prox_group_l1(z, 0.5, np.arange(z.shape[-1]) // 4),
    "project_topk": lambda z: P.project_topk(z, 8),
    "project_abs_topk": lambda z: P.project_abs_topk(z, 8),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_cupy_matches_cpu(cp, name):
    z = np.random.default_rng(0).standard_normal((4096, 256))
    cpu = CASES[name](z)
    zg = cp.asarray(z)
    CASES[name](zg)  # warm-up (compilation of elementwise kernels)
    cp.cuda.Device().synchronize()
    t0 = time.perf_counter()
    gpu = CASES[name](zg)
    cp.cuda.Device().synchronize()
    dt = time.perf_counter() - t0
    assert isinstance(gpu, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(gpu), cpu, rtol=1e-12, atol=1e-12)
    print(f"{name}: {z.size / dt / 1e9:.2f} Gelem/s on the GPU")
