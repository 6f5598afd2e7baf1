"""GPU checks of the Kronecker / SBL kernels: the CuPy path against the CPU (NumPy) path.

Run on a CUDA machine with ``python -m pytest gpu/test_gpu_kron.py -m gpu``; everything is
skipped with a clear message where CuPy or a CUDA device is missing.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

cp = pytest.importorskip("cupy", reason="CuPy is not installed: GPU checks skipped")
try:
    _N_DEV = cp.cuda.runtime.getDeviceCount()
except Exception as exc:  # no driver / no device
    pytest.skip(f"no CUDA device available ({exc}): GPU checks skipped", allow_module_level=True)
if _N_DEV == 0:
    pytest.skip("no CUDA device available: GPU checks skipped", allow_module_level=True)

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from sparsestat._kernels.kron import (  # noqa: E402
    am_mstep,
    kron_estep,
    kron_matvec,
    kron_rmatvec,
    outer_ravel,
    svd_mstep,
)
from sparsestat.bayes import KroneckerSBL  # noqa: E402
from sparsestat.datasets import make_irs_mimo_channel  # noqa: E402


def _rel(a, b):
    a = cp.asnumpy(a) if isinstance(a, cp.ndarray) else np.asarray(a)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _factors(rng, shapes, cplx):
    if cplx:
        return [rng.standard_normal(s) + 1j * rng.standard_normal(s) for s in shapes]
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("cplx", [False, True])
def test_kron_matvec_cupy_matches_numpy(cplx):
    rng = np.random.default_rng(0)
    mats = _factors(rng, [(5, 7), (6, 8), (4, 9)], cplx)
    v = _factors(rng, [(7 * 8 * 9, 3)], cplx)[0]
    w = _factors(rng, [(5 * 6 * 4, 2)], cplx)[0]
    gm = [cp.asarray(m) for m in mats]
    out = kron_matvec(gm, cp.asarray(v))
    assert isinstance(out, cp.ndarray)
    assert _rel(out, kron_matvec(mats, v)) < 1e-12
    assert _rel(kron_rmatvec(gm, cp.asarray(w)), kron_rmatvec(mats, w)) < 1e-12


@pytest.mark.parametrize("cplx", [False, True])
def test_kron_estep_and_msteps_cupy_match_numpy(cplx):
    rng = np.random.default_rng(1)
    mats = _factors(rng, [(4, 6), (5, 7), (3, 8)], cplx)
    gammas = [rng.uniform(0.1, 2.0, n) for n in (6, 7, 8)]
    Y = _factors(rng, [(60, 2)], cplx)[0]
    p_cpu = kron_estep(mats, gammas, 0.1, Y)
    p_gpu = kron_estep(
        [cp.asarray(m) for m in mats], [cp.asarray(g) for g in gammas], 0.1, cp.asarray(Y)
    )
    assert isinstance(p_gpu.mean, cp.ndarray)
    assert _rel(p_gpu.mean, p_cpu.mean) < 1e-10
    assert _rel(p_gpu.sigma_diag, p_cpu.sigma_diag) < 1e-10
    assert abs(p_gpu.logdet - p_cpu.logdet) < 1e-9 * abs(p_cpu.logdet)
    lam = rng.uniform(0.1, 1.0, 6 * 7 * 8)
    g_cpu, _, _ = am_mstep(lam, [np.ones(n) for n in (6, 7, 8)], tol=0, max_sweeps=5)
    g_gpu, _, _ = am_mstep(cp.asarray(lam), [cp.ones(n) for n in (6, 7, 8)], tol=0, max_sweeps=5)
    assert _rel(outer_ravel(g_gpu), outer_ravel(g_cpu)) < 1e-12
    s_cpu, s_gpu = svd_mstep(lam, [6, 7, 8]), svd_mstep(cp.asarray(lam), [6, 7, 8])
    assert _rel(outer_ravel(s_gpu), outer_ravel(s_cpu)) < 1e-10


@pytest.mark.parametrize("method,block", [("svd", None), ("am", None), ("am", [0.8, None, 0.8])])
def test_kronecker_sbl_fit_on_gpu_matches_cpu(method, block):
    factors, y, coef, info = make_irs_mimo_channel(snr_db=20, random_state=0, return_info=True)
    kw = {
        "method": method,
        "block": block,
        "noise_variance": info.noise_variance,
        "inner_tol": 1e-4,
        "inner_tol_relative": True,
        "prune_abs": 1e-4,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cpu = KroneckerSBL(**kw).fit(factors, y)
        gpu = KroneckerSBL(**kw).fit([cp.asarray(f) for f in factors], cp.asarray(y))
    assert isinstance(gpu.coef_, cp.ndarray)
    assert gpu.n_iter_ == cpu.n_iter_
    assert _rel(gpu.coef_, cpu.coef_) < 1e-8
