"""GPU checks of sparse Bayesian learning: device results against the CPU (NumPy) path.

Each test runs on CuPy arrays and on torch CUDA tensors (whichever is installed with a CUDA
device; the others skip with the reason). What is checked, with the tolerances:

* kernels (mode products, the matrix-free E-step, the AM / SVD M-steps, the dense E-steps):
  float64 within 1e-10 relative of NumPy; float32 / complex64 within 1e-4;
* whole fits (``KroneckerSBL`` SVD / AM / PC on the full IRS-MIMO size, ``M = 288``,
  ``N = 5832``; ``SparseBayesianLearning`` in sample and feature space): float64 within 1e-8
  relative of the CPU fit with the same iteration count; float32 (complex64) within 2e-3
  relative of the float64 CPU fit on a well-separated synthetic problem with the same
  support, and within 0.5 dB of its channel NMSE on the IRS problem (float32 rounding can
  move a pruning decision by one iteration, so the iteration count is not compared there);
* fitted arrays and predictions stay on the device (``predict(return_std=True)`` too);
* device memory is released after ``fit``: over 20 fits, the memory held after a fit grows by
  less than 1 MiB.

``SPARSESTAT_GPU_DRY_RUN=1`` also runs every test on torch CPU tensors (device memory is
then not measured), to check the suite itself on a machine without a GPU:
``SPARSESTAT_GPU_DRY_RUN=1 python -m pytest gpu/test_gpu_kron.py -m gpu``.
"""

from __future__ import annotations

import gc
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sparsestat._kernels._dispatch import to_host
from sparsestat._kernels.kron import (
    am_mstep,
    dense_estep,
    feature_estep,
    kron_estep,
    kron_matvec,
    kron_rmatvec,
    outer_ravel,
    svd_mstep,
)
from sparsestat.bayes import KroneckerSBL, SparseBayesianLearning
from sparsestat.datasets import (
    irs_channels_from_coef,
    make_irs_mimo_channel,
    make_kronecker_sparse_signal,
)
from sparsestat.metrics import channel_nmse

pytestmark = pytest.mark.gpu

DRY_RUN = os.environ.get("SPARSESTAT_GPU_DRY_RUN") == "1"
MiB = 2**20


@dataclass
class Device:
    """How to put arrays on one device library, read them back and measure its memory."""

    name: str
    lib: Any
    put: Any
    used_bytes: Any  # callable returning bytes in use, or None (not measurable)

    def cast(self, a: np.ndarray) -> Any:
        return self.put(np.ascontiguousarray(a))


def _cupy() -> Device:
    cp = pytest.importorskip("cupy", reason="CuPy is not installed")
    try:
        if cp.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("CuPy found no CUDA device")
    except Exception as exc:  # no driver
        pytest.skip(f"no CUDA device for CuPy ({exc})")
    pool = cp.get_default_memory_pool()
    return Device("cupy", cp, cp.asarray, pool.used_bytes)


def _torch_cuda() -> Device:
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    return Device(
        "torch-cuda",
        torch,
        lambda a: torch.asarray(a, device="cuda"),
        torch.cuda.memory_allocated,
    )


def _torch_cpu() -> Device:
    torch = pytest.importorskip("torch", reason="torch is not installed")
    return Device("torch-cpu (dry run)", torch, torch.asarray, None)


BACKENDS = {"cupy": _cupy, "torch-cuda": _torch_cuda}
if DRY_RUN:
    BACKENDS["torch-cpu"] = _torch_cpu


@pytest.fixture(params=list(BACKENDS), scope="module")
def dev(request):
    return BACKENDS[request.param]()


def rel(a, b) -> float:
    return float(np.linalg.norm(to_host(a) - np.asarray(b)) / np.linalg.norm(b))


def _factors(rng, shapes, cplx, dtype=np.float64):
    mats = [rng.standard_normal(s) + (1j * rng.standard_normal(s) if cplx else 0) for s in shapes]
    single = dtype == np.float32
    return [m.astype((np.complex64 if cplx else np.float32) if single else m.dtype) for m in mats]


@pytest.mark.parametrize("single", [False, True], ids=["float64", "float32"])
@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_kernels_match_numpy(dev, cplx, single):
    rng = np.random.default_rng(0)
    tol = 1e-4 if single else 1e-10
    dtype = np.float32 if single else np.float64
    mats = _factors(rng, [(5, 7), (6, 8), (4, 9)], cplx, dtype)
    v = _factors(rng, [(7 * 8 * 9, 3)], cplx, dtype)[0]
    w = _factors(rng, [(5 * 6 * 4, 2)], cplx, dtype)[0]
    ref = [m.astype(np.complex128 if cplx else np.float64) for m in mats]
    gm = [dev.cast(m) for m in mats]
    out = kron_matvec(gm, dev.cast(v))
    assert isinstance(out, type(gm[0]))
    assert rel(out, kron_matvec(ref, v.astype(ref[0].dtype))) < tol
    assert rel(kron_rmatvec(gm, dev.cast(w)), kron_rmatvec(ref, w.astype(ref[0].dtype))) < tol
    gammas = [rng.uniform(0.1, 2.0, n).astype(dtype) for n in (7, 8, 9)]
    Y = _factors(rng, [(120, 2)], cplx, dtype)[0]
    p_cpu = kron_estep(ref, [g.astype(np.float64) for g in gammas], 0.1, Y.astype(ref[0].dtype))
    p_dev = kron_estep(gm, [dev.cast(g) for g in gammas], 0.1, dev.cast(Y))
    assert rel(p_dev.mean, p_cpu.mean) < tol and rel(p_dev.sigma_diag, p_cpu.sigma_diag) < tol
    lam = rng.uniform(0.1, 1.0, 7 * 8 * 9)
    g_cpu, _, _ = am_mstep(lam, [np.ones(n) for n in (7, 8, 9)], tol=0, max_sweeps=5)
    g_dev, _, _ = am_mstep(
        dev.cast(lam.astype(dtype)), [dev.cast(np.ones(n, dtype)) for n in (7, 8, 9)],
        tol=0, max_sweeps=5,
    )  # fmt: skip
    assert rel(outer_ravel(g_dev), outer_ravel(g_cpu)) < tol
    s_cpu, s_dev = svd_mstep(lam, [7, 8, 9]), svd_mstep(dev.cast(lam.astype(dtype)), [7, 8, 9])
    assert rel(outer_ravel(s_dev), outer_ravel(s_cpu)) < tol
    A = _factors(rng, [(60, 20)], cplx, dtype)[0]
    g = rng.uniform(0.1, 2, 20).astype(dtype)
    y = _factors(rng, [(60, 1)], cplx, dtype)[0]
    Ar, gr, yr = A.astype(ref[0].dtype), g.astype(np.float64), y.astype(ref[0].dtype)
    d_cpu = dense_estep(Ar, gr, 0.3, yr)
    d_dev = dense_estep(dev.cast(A), dev.cast(g), 0.3, dev.cast(y))
    assert rel(d_dev.mean, d_cpu.mean) < tol
    gram = A.conj().T @ A
    f_dev = feature_estep(
        dev.cast(gram), dev.cast(A.conj().T @ y), float(np.sum(np.abs(y) ** 2)),
        dev.cast(g), 0.3, 60,
    )  # fmt: skip
    assert rel(f_dev.mean, d_cpu.mean) < tol * 10


IRS_SETTINGS = {"inner_tol": 1e-4, "inner_tol_relative": True, "prune_abs": 1e-4}
IRS_METHODS = {
    "svd": {"method": "svd", "prune_threshold": 0.0},
    "am": {"method": "am", "prune_threshold": [1e-2, 1e-1, 1e-3], "inner_max_iter": 1000},
    "pc": {
        "method": "am",
        "block": [0.8, None, 0.8],
        "prune_threshold": [1e-2, 1e-1, 1e-2],
        "inner_max_iter": 9,
    },
}


def _quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.mark.parametrize("name", list(IRS_METHODS))
def test_kronecker_sbl_irs_float64_matches_cpu(dev, name):
    factors, y, _, info = make_irs_mimo_channel(snr_db=20, random_state=0, return_info=True)
    kw = {**IRS_SETTINGS, **IRS_METHODS[name], "noise_variance": info.noise_variance}
    cpu = _quiet_fit(KroneckerSBL(**kw), factors, y)
    gpu = _quiet_fit(KroneckerSBL(**kw), [dev.cast(f) for f in factors], dev.cast(y))
    assert isinstance(gpu.coef_, type(dev.cast(y)))
    assert gpu.n_iter_ == cpu.n_iter_
    assert rel(gpu.coef_, cpu.coef_) < 1e-8
    mean, std = gpu.predict(return_std=True)
    ref_mean, ref_std = cpu.predict(return_std=True)
    assert isinstance(std, type(mean)) and rel(mean, ref_mean) < 1e-8
    assert rel(std, ref_std) < 1e-8


@pytest.mark.parametrize("name", list(IRS_METHODS))
def test_kronecker_sbl_irs_float32_within_half_a_db(dev, name):
    factors, y, _, info = make_irs_mimo_channel(snr_db=20, random_state=0, return_info=True)
    kw = {**IRS_SETTINGS, **IRS_METHODS[name], "noise_variance": info.noise_variance}
    cpu = _quiet_fit(KroneckerSBL(**kw), factors, y)
    single = [dev.cast(f.astype(np.complex64)) for f in factors]
    gpu = _quiet_fit(KroneckerSBL(**kw), single, dev.cast(y.astype(np.complex64)))
    assert to_host(gpu.coef_).dtype == np.complex64
    db = [
        10 * np.log10(channel_nmse(info.H_true, irs_channels_from_coef(to_host(c), info)))
        for c in (cpu.coef_, gpu.coef_)
    ]
    assert abs(db[1] - db[0]) <= 0.5, db


@pytest.mark.parametrize("cplx", [False, True], ids=["real", "complex"])
def test_kronecker_sbl_float32_synthetic(dev, cplx):
    factors, y, _ = make_kronecker_sparse_signal(
        factor_shapes=((10, 14), (11, 14), (12, 14)), n_nonzero=2, snr_db=30, complex=cplx,
        random_state=1,
    )  # fmt: skip
    cpu = _quiet_fit(KroneckerSBL(), factors, y)
    single = np.complex64 if cplx else np.float32
    gpu = _quiet_fit(
        KroneckerSBL(), [dev.cast(f.astype(single)) for f in factors], dev.cast(y.astype(single))
    )
    assert to_host(gpu.coef_).dtype == single
    assert np.array_equal(to_host(gpu.support_), cpu.support_)
    assert rel(gpu.coef_, cpu.coef_) < 2e-3


@pytest.mark.parametrize("shape", [(300, 800), (4000, 200)], ids=["sample-space", "feature-space"])
def test_sparse_bayesian_learning_on_the_device(dev, shape):
    rng = np.random.default_rng(2)
    X = rng.standard_normal(shape)
    w = np.zeros(shape[1])
    w[rng.choice(shape[1], 10, replace=False)] = rng.standard_normal(10)
    y = X @ w + 1.0 + 0.05 * rng.standard_normal(shape[0])
    cpu = _quiet_fit(SparseBayesianLearning(), X, y)
    gpu = _quiet_fit(SparseBayesianLearning(), dev.cast(X), dev.cast(y))
    assert isinstance(gpu.coef_, type(dev.cast(y))) and gpu.n_iter_ == cpu.n_iter_
    assert rel(gpu.coef_, cpu.coef_) < 1e-8
    mean, std = gpu.predict(dev.cast(X[:50]), return_std=True)
    ref_mean, ref_std = cpu.predict(X[:50], return_std=True)
    assert rel(mean, ref_mean) < 1e-8 and rel(std, ref_std) < 1e-8
    gpu32 = _quiet_fit(
        SparseBayesianLearning(), dev.cast(X.astype(np.float32)), dev.cast(y.astype(np.float32))
    )
    assert to_host(gpu32.coef_).dtype == np.float32
    assert np.array_equal(to_host(gpu32.support_), cpu.support_)
    assert rel(gpu32.coef_, cpu.coef_) < 2e-3


def test_device_memory_is_released_after_fit(dev):
    if dev.used_bytes is None:
        pytest.skip(f"{dev.name}: device memory is not measurable")
    factors, y, _, info = make_irs_mimo_channel(snr_db=20, random_state=0, return_info=True)
    kw = {**IRS_SETTINGS, **IRS_METHODS["pc"], "noise_variance": info.noise_variance}
    gf, gy = [dev.cast(f) for f in factors], dev.cast(y)
    held = []
    for _ in range(20):
        est = _quiet_fit(KroneckerSBL(**kw), gf, gy)
        del est
        gc.collect()
        held.append(dev.used_bytes())
    assert held[-1] - held[0] < MiB, [h / MiB for h in held]
