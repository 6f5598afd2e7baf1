"""Prox kernels and penalties on the GPU (CuPy and CUDA torch) against the CPU (Numba) path.

The GPU runs the generic array-API kernels (there is no fused CuPy prox kernel: the generic
code is a handful of elementwise operations that CuPy fuses well enough). Tolerances: float64
1e-12 (the formulas are the same, only the order of rounding differs); float32 ``rtol = atol =
2e-5`` against the float64 CPU result (a few float32 ulps, more near the half / lq thresholds,
where the jump of the prox makes entries within rounding of the threshold ambiguous: those are
excluded by the mask below). The same checks run on torch CPU tensors and on
array-api-strict in ``make test`` (tests/test_prox.py), so only the device itself is new here.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from sparsestat._kernels import prox as P
from sparsestat.penalties import CEL0, L0, L1, L1_2, Lq

pytestmark = pytest.mark.gpu

T = 0.5
CASES = {
    "prox_l1": lambda z: P.prox_l1(z, T),
    "prox_l0": lambda z: P.prox_l0(z, T),
    "prox_l1_2": lambda z: P.prox_l1_2(z, T),
    "prox_lq": lambda z: P.prox_lq(z, T, 0.3),
    "prox_cel0": lambda z: P.prox_cel0(z, T, 0.7, 1.1),
    "prox_cel0_hard": lambda z: P.prox_cel0(z, T, 1.0, 1.2),
    "prox_group_l1": lambda z: P.prox_group_l1(z, T, np.arange(z.shape[-1]) // 4),
    "project_topk": lambda z: P.project_topk(z, 8),
    "project_abs_topk": lambda z: P.project_abs_topk(z, 8),
}
#: threshold of each operator (entries within float32 rounding of it are excluded)
THRESHOLDS = {
    "prox_l0": np.sqrt(2 * T),
    "prox_l1_2": 1.5 * T ** (2 / 3),
    "prox_lq": float(P.lq_threshold(T, 0.3)[0]),
    "prox_cel0_hard": np.sqrt(2 * T * 1.0),
}


def _z(dtype):
    return (np.random.default_rng(0).standard_normal((4096, 256)) * 2).astype(dtype)


def _compare(name, got, z, dtype):
    ref = CASES[name](z.astype(np.float64))
    if dtype == np.float64:
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
        return
    ok = np.ones(z.shape, dtype=bool)
    if name in THRESHOLDS:
        ok = np.abs(np.abs(z) - THRESHOLDS[name]) > 1e-5 * THRESHOLDS[name]
    if name.startswith("project"):
        ok = np.ones(z.shape, dtype=bool)  # rank-based: compared exactly below
        np.testing.assert_array_equal(got != 0, CASES[name](z) != 0)
    np.testing.assert_allclose(got[ok], ref[ok], rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CASES))
def test_cupy_matches_cpu(cp, name, dtype):
    z = _z(dtype)
    zg = cp.asarray(z)
    CASES[name](zg)  # warm-up (compilation of elementwise kernels)
    cp.cuda.Device().synchronize()
    t0 = time.perf_counter()
    gpu = CASES[name](zg)
    cp.cuda.Device().synchronize()
    dt = time.perf_counter() - t0
    assert isinstance(gpu, cp.ndarray) and gpu.dtype == zg.dtype
    _compare(name, cp.asnumpy(gpu), z, dtype)
    print(f"{name} {np.dtype(dtype).name}: {z.size / dt / 1e9:.2f} Gelem/s on the GPU")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_cuda_matches_cpu(torch_cuda, name, dtype):
    z = _z(dtype)
    out = CASES[name](torch_cuda.from_numpy(z).cuda())
    assert out.is_cuda and out.dtype == torch_cuda.from_numpy(z).dtype
    _compare(name, out.cpu().numpy(), z, dtype)


def test_penalty_objects_on_cupy(cp):
    z = _z(np.float64)[:64]
    zg = cp.asarray(z)
    for pen in (L1(0.3), L0(0.3), L1_2(0.3), Lq(0.3, q=0.4), CEL0(0.3, atom_norms=None)):
        np.testing.assert_allclose(
            cp.asnumpy(pen.prox(zg, step=0.7)), pen.prox(z, step=0.7), rtol=1e-12, atol=1e-12
        )
        assert abs(pen.value(zg) - pen.value(z)) <= 1e-10 * max(1.0, abs(pen.value(z)))
