"""GPU checks of sparse training: 2:4 semi-structured export, CUDA vs CPU training, memory.

Run with ``python -m pytest gpu/test_gpu_sparse_training.py -m gpu -s``; every test is skipped
with a clear message where PyTorch or a CUDA device is missing. The speed-up of the
semi-structured matmul over the dense one is reported as a warning (never asserted).
"""

from __future__ import annotations

import time
import warnings

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the `torch` extra)")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA device: 2:4 semi-structured export skipped"
    ),
]


def _semi_structured_supported() -> bool:
    major, _ = torch.cuda.get_device_capability()
    return major >= 8


@pytest.fixture
def sparse_model():
    from sparsestat.neural.layers import NMSparseLinear

    if not _semi_structured_supported():
        pytest.skip("2:4 sparse tensor cores need compute capability >= 8.0")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        NMSparseLinear(256, 512, n=2, m=4),
        torch.nn.ReLU(),
        NMSparseLinear(512, 128, n=2, m=4),
    )
    for layer in (model[0], model[2]):
        layer.finalize_()
    return model.cuda().half()


def test_export_matches_dense_matmul(sparse_model):
    from sparsestat.neural.layers import export_semi_structured, is_nm_sparse

    exported = export_semi_structured(sparse_model)
    x = torch.randn(128, 256, device="cuda", dtype=torch.float16)
    with torch.no_grad():
        dense = sparse_model(x)
        sparse = exported(x)
    assert is_nm_sparse(sparse_model[0].weight, 2, 4)
    torch.testing.assert_close(sparse, dense, atol=2e-2, rtol=2e-2)
    # the input model is untouched and still dense storage
    assert sparse_model[0].weight.layout == torch.strided


def test_export_rejects_non_sparse_weights():
    from sparsestat.neural.layers import export_semi_structured

    dense = torch.nn.Linear(128, 128).cuda().half()
    with pytest.raises(RuntimeError, match="2:4"):
        export_semi_structured(dense)


def test_semi_structured_speedup_is_reported(sparse_model):
    from sparsestat.neural.layers import export_semi_structured, nm_mask

    if not _semi_structured_supported():
        pytest.skip("needs compute capability >= 8.0")
    big = torch.nn.Linear(4096, 4096, bias=False).cuda().half()
    with torch.no_grad():
        big.weight.mul_(nm_mask(big.weight, 2, 4))
    exported = export_semi_structured(big)
    x = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)

    def bench(mod):
        with torch.no_grad():
            for _ in range(5):
                mod(x)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(50):
                mod(x)
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / 50

    t_dense, t_sparse = bench(big), bench(exported)
    msg = (
        f"2:4 semi-structured 4096x4096 fp16 matmul: dense {t_dense * 1e3:.3f} ms, "
        f"sparse {t_sparse * 1e3:.3f} ms, speed-up {t_dense / t_sparse:.2f}x"
    )
    print("\n" + msg)
    warnings.warn(msg, UserWarning, stacklevel=1)  # shown in the summary of `make gpu`
    assert t_sparse > 0


# --------------------------------------------------------------------------- estimators
def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0)[:600], y[:600]


@pytest.mark.parametrize("method", ["static", "sr-ste", "dense"])
def test_cuda_training_matches_cpu_training(method):
    """Same seed on CUDA and on the CPU: masks, batches and initial weights come from CPU
    generators, so the two fits differ only by float32 rounding of the kernels.
    Tolerance: 1e-3 on the probabilities after 3 epochs (float32, cuBLAS vs CPU BLAS)."""
    from sparsestat.neural import SparseMLPClassifier
    from sparsestat.neural.layers import is_nm_sparse

    X, y = _digits()
    kw = {"hidden_layer_sizes": (64,), "method": method, "max_epochs": 3, "random_state": 0}
    gpu = SparseMLPClassifier(device="cuda", **kw).fit(X, y)
    cpu = SparseMLPClassifier(device="cpu", **kw).fit(X, y)
    assert next(gpu.module_.parameters()).device.type == "cuda"
    for a, b in zip(gpu.masks_, cpu.masks_):
        assert (a == b).mean() >= 0.99  # N:M masks may flip on near ties
    torch.testing.assert_close(
        torch.as_tensor(gpu.predict_proba(X)), torch.as_tensor(cpu.predict_proba(X)),
        atol=1e-3, rtol=0,
    )  # fmt: skip
    if method == "sr-ste":
        assert is_nm_sparse(gpu.module_.linears()[0].weight.detach().cpu(), 2, 4)


def test_cuda_dynamic_sparse_training_keeps_exact_budgets():
    from sparsestat.neural import RigL, SparseMLPClassifier

    X, y = _digits()
    clf = SparseMLPClassifier(
        hidden_layer_sizes=(64,), method=RigL(update_interval=5), sparsity=0.9,
        max_epochs=3, random_state=0, device="cuda",
    ).fit(X, y)  # fmt: skip
    assert sum(clf.mask_flips_) > 0 and len(set(clf.nnz_history_)) == 1
    assert clf.sparsity_ == pytest.approx(0.9, abs=0.01)


def test_device_memory_is_released_after_fit():
    """20 fits of a sparse MLP on CUDA: the allocated device memory does not grow."""
    import gc

    from sparsestat.neural import SparseMLPClassifier

    X, y = _digits()

    def fit_once():
        clf = SparseMLPClassifier(
            hidden_layer_sizes=(64,), method="rigl", max_epochs=1, random_state=0, device="cuda"
        ).fit(X, y)
        clf.predict_proba(X)

    fit_once()
    gc.collect()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    for _ in range(20):
        fit_once()
    gc.collect()
    torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= base + 1024 * 1024
