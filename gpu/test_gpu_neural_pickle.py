"""GPU check of the torch estimators' pickling: trained on CUDA, unpickled on a CPU-only process.

Run with ``python -m pytest gpu/test_gpu_neural_pickle.py -m gpu -v``; skipped with a clear
message where PyTorch or a CUDA device is missing. The CPU-only side runs in a subprocess with
``CUDA_VISIBLE_DEVICES=''`` (torch there sees no GPU at all), so a payload that still held a
CUDA storage would fail to load exactly as on a CPU-only machine.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.utils import get_tags

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the `torch` extra)")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="no CUDA device: pickling check skipped"
    ),
]

_LOADER = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    import torch
    assert not torch.cuda.is_available()
    est = pickle.loads(open(sys.argv[1], "rb").read())
    X = np.load(sys.argv[2])
    devices = {p.device.type for p in est.module_.parameters()}
    assert devices == {"cpu"}, devices
    np.save(sys.argv[3], getattr(est, sys.argv[4])(X))
    """
)


def _estimators():
    from sparsestat.neural import (
        COMETMoEClassifier,
        GroupEnvelopeMLPClassifier,
        QuickSelection,
        SparseMatrixFactorization,
        SparseMLPClassifier,
        SSVIClassifier,
        SSVIRegressor,
    )

    return [
        SSVIClassifier(hidden_layer_sizes=(32,), sparsity=0.8, max_epochs=3, n_mc_samples=4),
        SSVIRegressor(hidden_layer_sizes=(32,), sparsity=0.8, max_epochs=3, n_mc_samples=4),
        COMETMoEClassifier(max_epochs=3),
        SparseMLPClassifier(hidden_layer_sizes=(32,), method="rigl", max_epochs=3),
        GroupEnvelopeMLPClassifier(hidden_layer_sizes=(32,), max_epochs=3, finetune_epochs=1),
        QuickSelection(n_features_to_select=10, hidden_units=64, max_epochs=3),
        SparseMatrixFactorization(n_components=8, max_epochs=3),
    ]


def _output_method(est):
    for name in ("predict_proba", "decision_function", "transform", "predict"):
        if hasattr(est, name):
            return name
    raise AssertionError(type(est).__name__)


@pytest.mark.parametrize("est", _estimators(), ids=lambda e: type(e).__name__)
def test_cuda_trained_estimator_unpickles_in_cpu_only_process(est, tmp_path):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0)[:400]
    y = y[:400]
    if type(est).__name__ == "SSVIRegressor":
        y = X[:, 10] + X[:, 20]
    est.set_params(device="cuda", random_state=0)
    est.fit(X, y) if get_tags(est).target_tags.required else est.fit(X)
    assert next(est.module_.parameters()).device.type == "cuda"
    method = _output_method(est)
    on_gpu = getattr(est, method)(X)
    payload = pickle.dumps(est)
    # the torch payload was written from CPU copies: loading it without map_location on
    # this GPU machine still gives CPU tensors only
    raw = torch.load(io.BytesIO(est.__getstate__()["_torch_payload"]), weights_only=False)
    assert {p.device.type for p in raw["module_"].parameters()} == {"cpu"}
    # the fitted estimator is untouched by pickling: still on the GPU
    assert next(est.module_.parameters()).device.type == "cuda"
    cpu_here = getattr(pickle.loads(payload).set_params(device="cpu"), method)(X)

    files = [tmp_path / "est.pkl", tmp_path / "X.npy", tmp_path / "proba.npy"]
    files[0].write_bytes(payload)
    np.save(files[1], X)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _LOADER, *map(str, files), method],
        check=True,
        env=env,
        timeout=300,
    )
    cpu_only = np.load(files[2])
    np.testing.assert_allclose(cpu_only, cpu_here, atol=1e-6)
    # CPU and GPU differ only by float32 rounding (and, for Monte-Carlo predictions, by the
    # device's random stream)
    if method == "predict_proba":
        assert np.mean(cpu_only.argmax(1) == on_gpu.argmax(1)) >= 0.95
    elif method == "transform":
        np.testing.assert_array_equal(cpu_only, on_gpu)
    else:
        np.testing.assert_allclose(cpu_only, on_gpu, rtol=0.05, atol=0.05)
