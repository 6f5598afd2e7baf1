"""SparseAutoencoder against SAELens (its trainer) and a plain-PyTorch TopK loop.

Same arrays, width, k, batch size, learning rate, Adam betas and number of samples for every
library. Inputs are pre-scaled so that E||x|| = sqrt(d) (SAELens' ``expected_average``
convention) and every trainer runs with its own scaling turned off. Reported per run: wall
seconds and samples/s of training, FVU, mean L0 and the fraction of latents that never fire
on the held-out rows, MMCS to the true atoms on planted data.

SAELens is optional (``pip install sae-lens``; it pulls transformer-lens, transformers,
wandb, ...). When it is not importable its rows say "not installed". We ran it from a
separate virtual environment holding the same torch / numpy / scikit-learn pins::

    PYTHONPATH=.:benchmarks /tmp/saelens/bin/python benchmarks/bench_sae.py

Set ``SPARSESTAT_QUICK=1`` for a tiny configuration.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch
from _harness import DEFAULT_THREADS, bench_header, limit_threads, markdown_table, ratio
from sklearn.datasets import load_digits

from sparsestat.datasets import make_planted_features
from sparsestat.metrics import fvu, mmcs
from sparsestat.neural import SparseAutoencoder

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"

try:  # optional peer
    import sae_lens
    from sae_lens import SAETrainer
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
except Exception:  # any import failure means "not installed"
    sae_lens = None


def _prescale(X_train, X_test):
    s = np.sqrt(X_train.shape[1]) / np.linalg.norm(X_train, axis=1).mean()
    return (X_train * s).astype(np.float32), (X_test * s).astype(np.float32)


def _batches(X, batch_size, seed=0):
    rng = np.random.RandomState(seed)
    while True:
        perm = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0] - batch_size + 1, batch_size):
            yield torch.from_numpy(X[perm[start : start + batch_size]])


def _quality(X_test, X_hat, Z, atoms):
    Z = np.asarray(Z)
    return {
        "fvu": fvu(X_test, X_hat),
        "l0": float((Z != 0).sum(1).mean()),
        "dead": float(((Z != 0).sum(0) == 0).mean()),
        "mmcs": float("nan") if atoms is None else None,
    }


def run_ours(X, X_test, atoms, cfg):
    sae = SparseAutoencoder(
        cfg["F"],
        activation=cfg["activation"],
        k=cfg["k"],
        lr=cfg["lr"],
        batch_size=cfg["batch"],
        max_epochs=cfg["epochs"],
        input_scaling="none",
        random_state=0,
    )
    t0 = time.perf_counter()
    sae.fit(X)
    seconds = time.perf_counter() - t0
    Z = sae.transform(X_test)
    q = _quality(X_test, sae.inverse_transform(Z), Z, atoms)
    q["mmcs"] = mmcs(atoms, sae.components_) if atoms is not None else float("nan")
    return seconds, q


def run_saelens(X, X_test, atoms, cfg):
    if sae_lens is None:
        return None
    common = {"d_in": X.shape[1], "d_sae": cfg["F"], "k": cfg["k"], "normalize_activations": "none"}
    if cfg["activation"] == "batchtopk":
        sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(**common))
    else:
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(**common))
    total = cfg["epochs"] * (X.shape[0] // cfg["batch"]) * cfg["batch"]
    tcfg = SAETrainerConfig(
        total_training_samples=total,
        train_batch_size_samples=cfg["batch"],
        lr=cfg["lr"],
        lr_end=cfg["lr"],
        adam_beta1=0.9,
        adam_beta2=0.999,
        device="cpu",
    )
    torch.manual_seed(0)
    trainer = SAETrainer(tcfg, sae, _batches(X, cfg["batch"]))
    t0 = time.perf_counter()
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):
        trainer.fit()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        xt = torch.from_numpy(X_test)
        Z = sae.encode(xt)
        X_hat = sae.decode(Z).numpy()
    q = _quality(X_test, X_hat, Z.numpy(), atoms)
    W_dec = sae.W_dec.detach().numpy()
    q["mmcs"] = mmcs(atoms, W_dec) if atoms is not None else float("nan")
    return seconds, q


def run_plain_torch(X, X_test, atoms, cfg):
    """A minimal TopK SAE loop: unit-norm decoder, Adam, MSE, no AuxK."""
    if cfg["activation"] != "topk":
        return None
    torch.manual_seed(0)
    d, F, k = X.shape[1], cfg["F"], cfg["k"]
    W_dec = torch.nn.Parameter(torch.nn.functional.normalize(torch.randn(F, d), dim=1))
    W_enc = torch.nn.Parameter(W_dec.detach().clone())
    b_enc = torch.nn.Parameter(torch.zeros(F))
    b_dec = torch.nn.Parameter(torch.from_numpy(X.mean(0)))
    params = [W_enc, b_enc, W_dec, b_dec]
    opt = torch.optim.Adam(params, lr=cfg["lr"])

    def encode(x):
        a = torch.relu((x - b_dec) @ W_enc.T + b_enc)
        v, i = a.topk(k, dim=1)
        return torch.zeros_like(a).scatter(1, i, v)

    n_steps = cfg["epochs"] * (X.shape[0] // cfg["batch"])
    batches = _batches(X, cfg["batch"])
    t0 = time.perf_counter()
    for _ in range(n_steps):
        x = next(batches)
        loss = (encode(x) @ W_dec + b_dec - x).square().sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            W_dec /= W_dec.norm(dim=1, keepdim=True)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        xt = torch.from_numpy(X_test)
        Z = encode(xt)
        X_hat = (Z @ W_dec + b_dec).numpy()
    q = _quality(X_test, X_hat, Z.numpy(), atoms)
    q["mmcs"] = mmcs(atoms, W_dec.detach().numpy()) if atoms is not None else float("nan")
    return seconds, q


def problems():
    n, epochs = (4000, 2) if QUICK else (20000, 5)
    X, _, atoms = make_planted_features(n + 5000, 64, 128, random_state=0)
    Xtr, Xte = _prescale(X[:n], X[n:])
    lr = min(max(2e-4 / np.sqrt(128 / 2**14), 1e-4), 3e-3)
    for act in ("topk", "batchtopk"):
        cfg = {"F": 128, "k": 4, "batch": 512, "epochs": epochs, "lr": lr, "activation": act}
        yield f"B1 planted n={n} F=128 k=4 ({act})", Xtr, Xte, atoms, cfg
    digits = load_digits().data
    Xtr, Xte = _prescale(digits[:1500], digits[1500:])
    cfg = {
        "F": 256,
        "k": 8,
        "batch": 256,
        "epochs": 5 if QUICK else 30,
        "lr": 2e-3,
        "activation": "topk",
    }
    yield "B4 digits F=256 k=8 (topk)", Xtr, Xte, None, cfg


def main():
    torch.set_num_threads(DEFAULT_THREADS)
    print(bench_header("Sparse autoencoders: SparseAutoencoder vs SAELens"))
    print(f"torch {torch.__version__}; SAELens: ", end="")
    print(sae_lens.__version__ if sae_lens is not None else "not installed")
    print(f"torch threads: {torch.get_num_threads()}; python {sys.version.split()[0]}\n")
    rows = []
    with limit_threads():
        warm = next(problems())
        run_ours(warm[1][:1024], warm[2][:256], None, dict(warm[4], epochs=1))
        for name, Xtr, Xte, atoms, cfg in problems():
            samples = cfg["epochs"] * (Xtr.shape[0] // cfg["batch"]) * cfg["batch"]
            ours = run_ours(Xtr, Xte, atoms, cfg)
            peers = {"SAELens": run_saelens(Xtr, Xte, atoms, cfg)}
            peers["plain torch"] = run_plain_torch(Xtr, Xte, atoms, cfg)
            results = {"sparsestat": ours, **peers}
            for lib, res in results.items():
                if res is None:
                    note = "not installed" if lib == "SAELens" else "n/a"
                    rows.append([name, lib, note, "", "", "", "", "", ""])
                    continue
                seconds, q = res
                speed = ratio(res[0], ours[0]) if lib != "sparsestat" else "1.00x"
                rows.append(
                    [
                        name,
                        lib,
                        round(seconds, 2),
                        round(samples / seconds),
                        speed,
                        round(q["fvu"], 4),
                        round(q["l0"], 2),
                        round(100 * q["dead"], 1),
                        round(q["mmcs"], 3) if q["mmcs"] == q["mmcs"] else "n/a",
                    ]
                )
    headers = [
        "problem",
        "library",
        "train (s)",
        "samples/s",
        "our speed-up",
        "FVU (test)",
        "L0 (test)",
        "never-firing %",
        "MMCS",
    ]
    print(markdown_table(rows, headers))


if __name__ == "__main__":
    main()
