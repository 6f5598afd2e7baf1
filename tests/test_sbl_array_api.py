"""The generic (array-API) SBL path, the one CuPy and CUDA tensors take, run on the CPU.

Every kernel and every EM variant runs on ``array_api_strict`` (the standard and nothing more,
including its second simulated device, which NumPy cannot read directly) and on torch CPU
tensors, and is compared with the NumPy path (SciPy Cholesky E-steps). This covers on a
CPU-only machine what ``gpu/test_gpu_kron.py`` checks on a CUDA device.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sparsestat._kernels.kron import (
    am_mstep,
    dense_estep,
    feature_estep,
    kron_estep,
    kron_predictive_variance,
    outer_ravel,
    posterior_covariance,
    svd_mstep,
)
from sparsestat.bayes import KroneckerSBL, SparseBayesianLearning
from sparsestat.datasets import make_kronecker_sparse_signal


def _strict(device_name):
    xps = pytest.importorskip("array_api_strict")

    def convert(a):
        return xps.asarray(np.asarray(a), device=xps.Device(device_name))

    return convert


def _torch():
    torch = pytest.importorskip("torch", reason="torch (the `torch` extra) is not installed")
    return lambda a: torch.asarray(np.asarray(a))


NAMESPACES = {
    "array_api_strict": lambda: _strict("CPU_DEVICE"),
    "array_api_strict-device1": lambda: _strict("device1"),
    "torch-cpu": _torch,
}


@pytest.fixture(params=list(NAMESPACES), ids=list(NAMESPACES))
def to_xp(request):
    return NAMESPACES[request.param]()


#: the Kronecker EM runs the kernels above; its second-device run would repeat the CPU one
@pytest.fixture(params=["array_api_strict", "torch-cpu"])
def to_xp_em(request):
    return NAMESPACES[request.param]()


def host(a):
    from sparsestat._kernels._dispatch import to_host

    return to_host(a)


def rel(a, b) -> float:
    return float(np.linalg.norm(host(a) - np.asarray(b)) / np.linalg.norm(b))


def _random(rng, shape, cplx):
    out = rng.standard_normal(shape)
    return out + 1j * rng.standard_normal(shape) if cplx else out


@pytest.mark.parametrize("cplx", [False, True])
def test_kernels_match_numpy(to_xp, cplx):
    rng = np.random.default_rng(0)
    mats = [_random(rng, s, cplx) for s in ((3, 4), (2, 5), (4, 3))]
    gammas = [rng.uniform(0.1, 2, n) for n in (4, 5, 3)]
    Y = _random(rng, (24, 2), cplx)
    ref = kron_estep(mats, gammas, 0.2, Y)
    got = kron_estep([to_xp(m) for m in mats], [to_xp(g) for g in gammas], 0.2, to_xp(Y))
    assert type(got.mean) is type(to_xp(Y))
    assert rel(got.mean, ref.mean) < 1e-12 and rel(got.sigma_diag, ref.sigma_diag) < 1e-12
    assert abs(got.logdet - ref.logdet) < 1e-10 * abs(ref.logdet)
    # dense E-steps: the generic solve against the NumPy Cholesky, and the feature-space form
    A = _random(rng, (30, 8), cplx)
    g = rng.uniform(0.1, 2, 8)
    y = _random(rng, (30, 1), cplx)
    for wide in (False, True):
        Aw = A[:6] if wide else A
        yw = y[: Aw.shape[0]]
        gw = g[: Aw.shape[1]]
        ref = dense_estep(Aw, gw, 0.3, yw)
        got = dense_estep(to_xp(Aw), to_xp(gw), 0.3, to_xp(yw))
        assert rel(got.mean, ref.mean) < 1e-10 and rel(got.sigma_diag, ref.sigma_diag) < 1e-10
    gram, b = A.conj().T @ A, A.conj().T @ y
    ref = feature_estep(gram, b, float(np.sum(np.abs(y) ** 2)), g, 0.3, 30)
    got = feature_estep(to_xp(gram), to_xp(b), float(np.sum(np.abs(y) ** 2)), to_xp(g), 0.3, 30)
    assert rel(got.mean, ref.mean) < 1e-10 and rel(got.sigma_diag, ref.sigma_diag) < 1e-10
    assert abs(got.logdet - ref.logdet) < 1e-9 * abs(ref.logdet)
    assert (
        rel(posterior_covariance(to_xp(A), to_xp(g), 0.3), posterior_covariance(A, g, 0.3)) < 1e-10
    )
    new = [_random(rng, s, cplx) for s in ((2, 4), (3, 5), (1, 3))]
    ref_v = kron_predictive_variance(new, mats, gammas, 0.2)
    got_v = kron_predictive_variance(
        [to_xp(m) for m in new], [to_xp(m) for m in mats], [to_xp(g) for g in gammas], 0.2
    )
    assert rel(got_v, ref_v) < 1e-10


def test_msteps_match_numpy(to_xp):
    rng = np.random.default_rng(1)
    lam = rng.uniform(0.1, 1, 60)
    ones = [np.ones(n) for n in (4, 5, 3)]
    ref, _, _ = am_mstep(lam, ones, tol=0, max_sweeps=3)
    got, _, _ = am_mstep(to_xp(lam), [to_xp(o) for o in ones], tol=0, max_sweeps=3)
    assert rel(outer_ravel(got), outer_ravel(ref)) < 1e-12
    assert (
        rel(outer_ravel(svd_mstep(to_xp(lam), [4, 5, 3])), outer_ravel(svd_mstep(lam, [4, 5, 3])))
        < 1e-12
    )


@pytest.mark.parametrize(
    "method, block, cplx",
    [("svd", None, False), ("am", None, True), ("am", [0.8, None, 0.8], True)],
    ids=["svd-real", "am-complex", "pc-complex"],
)
def test_kronecker_sbl_em_matches_numpy(to_xp_em, method, block, cplx):
    to_xp = to_xp_em
    factors, y, _ = make_kronecker_sparse_signal(
        factor_shapes=((5, 7), (6, 7), (4, 7)), n_nonzero=2, snr_db=25, complex=cplx,
        random_state=2,
    )  # fmt: skip
    kw = {"method": method, "block": block, "max_iter": 8}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = KroneckerSBL(**kw).fit(factors, y)
        got = KroneckerSBL(**kw).fit([to_xp(f) for f in factors], to_xp(y))
    assert type(got.coef_) is type(to_xp(y)) and got.n_iter_ == ref.n_iter_
    assert rel(got.coef_, ref.coef_) < 1e-8
    assert abs(got.noise_variance_ / ref.noise_variance_ - 1) < 1e-8
    assert np.array_equal(host(got.support_), ref.support_)
    mean, std = got.predict(return_std=True)
    ref_mean, ref_std = ref.predict(return_std=True)
    assert rel(mean, ref_mean) < 1e-8 and rel(std, ref_std) < 1e-8


@pytest.mark.parametrize("shape", [(30, 50), (80, 12)], ids=["sample-space", "feature-space"])
@pytest.mark.parametrize("weighted", [False, True])
def test_sbl_em_matches_numpy(to_xp, shape, weighted):
    rng = np.random.default_rng(3)
    X = rng.standard_normal(shape)
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + 2.0 + 0.1 * rng.standard_normal(shape[0])
    w = rng.integers(0, 3, shape[0]).astype(float) if weighted else None
    ref = SparseBayesianLearning().fit(X, y, sample_weight=w)
    got = SparseBayesianLearning().fit(to_xp(X), to_xp(y), sample_weight=w)
    assert got.n_iter_ == ref.n_iter_
    assert rel(got.coef_, ref.coef_) < 1e-9 and abs(got.intercept_ - ref.intercept_) < 1e-9
    mean, std = got.predict(to_xp(X[:5]), return_std=True)
    ref_mean, ref_std = ref.predict(X[:5], return_std=True)
    assert rel(mean, ref_mean) < 1e-9 and rel(std, ref_std) < 1e-9


def test_float32_stays_float32_on_the_generic_path(to_xp):
    factors, y, _ = make_kronecker_sparse_signal(
        factor_shapes=((5, 7), (6, 7), (4, 7)), n_nonzero=2, snr_db=30, random_state=4
    )
    ref = KroneckerSBL().fit(factors, y)
    got = KroneckerSBL().fit(
        [to_xp(f.astype(np.float32)) for f in factors], to_xp(y.astype(np.float32))
    )
    assert host(got.coef_).dtype == np.float32
    assert np.array_equal(host(got.support_), ref.support_)
    assert rel(got.coef_, ref.coef_) < 1e-4
