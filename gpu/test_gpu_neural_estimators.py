"""GPU checks of the torch estimators: CUDA training against CPU training, device memory.

Run with ``python -m pytest gpu/test_gpu_neural_estimators.py -m gpu -v``; skipped with a
clear message where PyTorch or a CUDA device is missing. Initial weights, masks and batch
order come from CPU generators, so a CUDA fit and a CPU fit with the same ``random_state``
differ by float32 rounding of the kernels, and, for estimators that draw noise during
training (SSVI's local reparameterisation, QuickSelection's dropout), by the device's random
stream: those are compared by their accuracy, the deterministic ones by their outputs.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the `torch` extra)")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: skipped"),
]


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, stratify=y, random_state=0)


def _cases():
    from sparsestat.neural import (
        COMETMoEClassifier,
        GroupEnvelopeMLPClassifier,
        MeanFieldVIClassifier,
        SSVIClassifier,
    )

    return [
        # (estimator, deterministic training?)
        (COMETMoEClassifier(n_experts=4, k=2, max_epochs=5), True),
        (
            GroupEnvelopeMLPClassifier(hidden_layer_sizes=(64,), max_epochs=5, finetune_epochs=2),
            True,
        ),
        (SSVIClassifier(hidden_layer_sizes=(64,), max_epochs=10, n_mc_samples=8), False),
        (MeanFieldVIClassifier(hidden_layer_sizes=(64,), max_epochs=10, n_mc_samples=8), False),
    ]


@pytest.mark.parametrize(("est", "deterministic"), _cases(), ids=lambda c: type(c).__name__)
def test_cuda_fit_matches_cpu_fit(digits, est, deterministic):
    Xtr, Xte, ytr, yte = digits
    gpu = est.set_params(device="cuda", random_state=0).fit(Xtr, ytr)
    assert next(gpu.module_.parameters()).device.type == "cuda"
    p_gpu = gpu.predict_proba(Xte)
    from sklearn.base import clone

    cpu = clone(est).set_params(device="cpu").fit(Xtr, ytr)
    p_cpu = cpu.predict_proba(Xte)
    if deterministic:  # float32 rounding only: probabilities within 1e-3
        np.testing.assert_allclose(p_gpu, p_cpu, atol=1e-3, rtol=0)
    else:  # the noise of training differs by device: same accuracy within 2 points
        assert abs(gpu.score(Xte, yte) - cpu.score(Xte, yte)) <= 0.02


def test_quickselection_and_recommender_on_cuda():
    from sklearn.datasets import make_classification

    from sparsestat.datasets import make_implicit_feedback
    from sparsestat.neural import QuickSelection, SparseMatrixFactorization

    X, _ = make_classification(
        n_samples=1000, n_features=100, n_informative=5, n_redundant=15, shuffle=False,
        random_state=0,
    )  # fmt: skip
    qs = QuickSelection(n_features_to_select=20, hidden_units=200, max_epochs=30)
    qs.set_params(device="cuda", random_state=0).fit(X)
    assert np.mean(qs.get_support(indices=True) < 20) >= 0.6
    R = make_implicit_feedback(300, 200, rank=5, density=0.1, random_state=0)
    mf = SparseMatrixFactorization(n_components=16, max_epochs=10, random_state=0)
    gpu = mf.set_params(device="cuda").fit(R)
    cpu = SparseMatrixFactorization(
        n_components=16, max_epochs=10, random_state=0, device="cpu"
    ).fit(R)
    assert gpu.budget_ == cpu.budget_
    # negative items are drawn by the device's generator: compare the ranking quality
    assert abs(gpu.score(R) - cpu.score(R)) < 0.1


def _all_estimators():
    from sparsestat.neural import (
        COMETMoEClassifier,
        GroupEnvelopeMLPClassifier,
        SparseMLPClassifier,
        SSVIClassifier,
    )

    return [
        SSVIClassifier(hidden_layer_sizes=(32,), max_epochs=1, n_mc_samples=2),
        COMETMoEClassifier(n_experts=4, max_epochs=1),
        GroupEnvelopeMLPClassifier(hidden_layer_sizes=(32,), max_epochs=1, finetune_epochs=1),
        SparseMLPClassifier(hidden_layer_sizes=(32,), method="sr-ste", max_epochs=1),
    ]


@pytest.mark.parametrize("est", _all_estimators(), ids=lambda e: type(e).__name__)
def test_device_memory_is_released_after_fit(digits, est):
    """20 fits: the allocated CUDA memory is back at its level after the first fit."""
    from sklearn.base import clone

    Xtr, Xte, ytr, _ = digits

    def fit_once():
        clone(est).set_params(device="cuda", random_state=0).fit(Xtr, ytr).predict_proba(Xte)

    fit_once()
    gc.collect()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    for _ in range(20):
        fit_once()
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= base + 1024 * 1024
