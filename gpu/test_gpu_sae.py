"""GPU checks of SparseAutoencoder: CUDA against the CPU, pickles, device memory.

Run with ``python -m pytest gpu/test_gpu_sae.py -m gpu -v`` (``make gpu``); skipped with a
clear message where PyTorch or a CUDA device is missing.

Tolerances (float32 training and inference on both devices): the same fitted weights encode
to the same codes to ``rtol = 1e-4`` and ``atol = 1e-4 * max|z|`` in float32 (different
matrix-product kernels; the selected latents may differ only at near-ties, at most 0.5 % of
the entries) and to 1e-10 in float64; one training step from the same state gives the same
gradients to ``1e-3`` relative to their largest entry (atomic scatter-adds on the GPU sum in
another order); whole fits are compared by quality (``1 - FVU`` within 0.03), since float32
rounding differences grow over the steps of a fit.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the `torch` extra)")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: SAE GPU checks"),
]


def _planted(n=8000, d=64, atoms=128, seed=0):
    from sparsestat.datasets import make_planted_features

    return make_planted_features(n, d, atoms, random_state=seed)


def _variants():
    from sparsestat.neural import (
        GSAE,
        AbsTopK,
        BatchTopK,
        FeatureChoice,
        JumpReLU,
        MatchingPursuit,
        MutualChoice,
        ReLU,
        TopAFA,
        TopK,
    )

    return [
        TopK(4),
        BatchTopK(4),
        AbsTopK(4, scope="batch"),
        MutualChoice(4),
        FeatureChoice(4),
        JumpReLU(4),
        ReLU(alpha=1.0),
        TopAFA(afa_coef=0.1),
        MatchingPursuit(4),
        GSAE(TopK(4), beta=1.0),
    ]


def test_same_weights_encode_the_same_on_cuda_and_cpu():
    from sparsestat.neural import BatchTopK, SparseAutoencoder

    X, _, _ = _planted()
    cpu = SparseAutoencoder(128, activation=BatchTopK(4), max_epochs=2, device="cpu")
    cpu.set_params(random_state=0).fit(X)
    gpu = pickle.loads(pickle.dumps(cpu))
    gpu.device_ = torch.device("cuda")
    for dtype, rtol in ((np.float64, 1e-10), (np.float32, 1e-4)):
        Xd = X[:2000].astype(dtype)
        Zc, Zg = cpu.transform(Xd), gpu.transform(Xd)
        assert Zg.dtype == dtype
        both = (Zc != 0) & (Zg != 0)
        assert ((Zc != 0) != (Zg != 0)).mean() <= 0.005
        np.testing.assert_allclose(Zg[both], Zc[both], rtol=rtol, atol=rtol * np.abs(Zc).max())


@pytest.mark.parametrize("sparse", [False, True])
def test_one_training_step_gives_the_same_gradients(sparse):
    from sparsestat.neural import SparseAutoencoder, TopK

    X, _, _ = _planted(n=4096)
    kw = {"n_components": 4096, "activation": TopK(32), "max_epochs": 1, "batch_size": 1024}
    est = SparseAutoencoder(**kw, device="cpu", sparse_path=sparse, random_state=0).fit(X)
    xb = torch.from_numpy(X[:1024].astype(np.float32))
    grads = {}
    for dev in ("cpu", "cuda"):
        e = pickle.loads(pickle.dumps(est))
        e.device_ = torch.device(dev)
        e.module_.to(dev).train()
        e._use_manual_step = lambda: False  # the autograd path on both devices
        loss = e._batch_loss(xb.to(dev), None, 1024)
        loss.backward()
        grads[dev] = [p.grad.detach().cpu().double() for p in e.module_.parameters()]
    for gc_, gg in zip(grads["cpu"], grads["cuda"]):
        scale = float(gc_.abs().max())
        assert float((gc_ - gg).abs().max()) <= 1e-3 * scale


@pytest.mark.parametrize("act", _variants(), ids=lambda a: repr(a))
def test_every_variant_trains_on_cuda_as_well_as_on_the_cpu(act):
    import warnings

    from sklearn.base import clone

    from sparsestat.neural import SparseAutoencoder

    X, _, _ = _planted()
    scores = {}
    for dev in ("cpu", "cuda"):
        est = SparseAutoencoder(128, activation=clone(act), max_epochs=4, batch_size=256)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            est.set_params(device=dev, random_state=0).fit(X, sample_gradients=np.ones_like(X))
            scores[dev] = est.score(X)
        assert est.module_.W_dec.device.type == dev
        assert np.isfinite(est.components_).all()
    assert abs(scores["cuda"] - scores["cpu"]) <= 0.03, scores


_LOADER = textwrap.dedent(
    """
    import pickle, sys
    import numpy as np
    import torch
    assert not torch.cuda.is_available()
    est = pickle.loads(open(sys.argv[1], "rb").read())
    X = np.load(sys.argv[2])
    np.save(sys.argv[3], est.transform(X))
    assert {p.device.type for p in est.module_.parameters()} == {"cpu"}
    """
)


def test_cuda_trained_sae_unpickles_in_a_cpu_only_process(tmp_path):
    from sparsestat.neural import SparseAutoencoder, TopK

    X, _, _ = _planted(n=4000)
    est = SparseAutoencoder(128, activation=TopK(4), max_epochs=2, device="cuda", random_state=0)
    est.fit(X)
    (tmp_path / "est.pkl").write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X[:500])
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    subprocess.run(
        [
            sys.executable,
            "-c",
            _LOADER,
            str(tmp_path / "est.pkl"),
            str(tmp_path / "X.npy"),
            str(tmp_path / "Z.npy"),
        ],
        check=True,
        env=env,
    )
    np.testing.assert_allclose(np.load(tmp_path / "Z.npy"), est.transform(X[:500]), atol=1e-10)


def test_device_memory_is_released_after_fit():
    from sparsestat.neural import BatchTopK, SparseAutoencoder

    X, _, _ = _planted(n=4000)
    used = []
    for i in range(20):
        est = SparseAutoencoder(512, activation=BatchTopK(8), max_epochs=1, device="cuda")
        est.set_params(random_state=i).fit(X).transform(X[:1000])
        del est
        gc.collect()
        torch.cuda.synchronize()
        used.append(torch.cuda.memory_allocated())
    assert used[-1] <= used[1] + 1024**2, [u / 1024**2 for u in used]  # no growth (MB)
