"""Sparse training on digits: accuracy and time per epoch, against torch.ao and a dense MLP.

Problem: digits (stratified 70/30 split, seed 0, standardised), MLP 64 -> 256 -> 256 -> 10,
Adam lr 1e-3, batch 64, the same number of epochs for every method, one seed.

Ours (``SparseMLPClassifier``): unstructured static random masks, SET and RigL with ERK
layer densities at 50 / 80 / 90 / 95% sparsity; N:M trained from scratch with SR-STE at 2:4,
1:4, 1:8 and 1:16 (50, 75, 87.5 and 93.75% sparsity).

Peers: a dense MLP (same loop, ``method="dense"``), and for N:M the torch.ao pipeline
(NVIDIA ASP recipe): train dense for half of the epochs, prune once with
``torch.ao.pruning.WeightNormSparsifier(sparsity_level=1, sparse_block_shape=(1, M),
zeros_per_block=M-N)``, fine-tune with the masks for the other half, ``squash_mask``.

Columns: achieved weight sparsity, test accuracy, seconds per epoch (whole fit / epochs) and
the time per epoch relative to the dense MLP (below 1 means slower: masks do not save compute
on a CPU). Usage: ``python benchmarks/bench_sparse_training.py [--quick]``.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from _harness import bench_header, limit_threads, markdown_table, ratio
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

QUICK = "--quick" in sys.argv
EPOCHS = 4 if QUICK else 20
HIDDEN = (64, 64) if QUICK else (256, 256)
SPARSITIES = [0.5, 0.9] if QUICK else [0.5, 0.8, 0.9, 0.95]
PATTERNS = [(2, 4), (1, 8)] if QUICK else [(2, 4), (1, 4), (1, 8), (1, 16)]


def load():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte), ytr, yte


def ours(data, **params):
    from sparsestat.neural import SparseMLPClassifier

    Xtr, Xte, ytr, yte = data
    clf = SparseMLPClassifier(
        hidden_layer_sizes=HIDDEN,
        max_epochs=EPOCHS,
        lr=1e-3,
        batch_size=64,
        random_state=0,
        device="cpu",
        **params,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(Xtr, ytr)
    seconds = time.perf_counter() - t0
    return clf.sparsity_, clf.score(Xte, yte), seconds / EPOCHS


def torch_ao_nm(data, n, m):
    """Dense training, one-shot WeightNormSparsifier N:M prune, masked fine-tuning."""
    import torch
    from torch.ao.pruning import WeightNormSparsifier

    Xtr, Xte, ytr, yte = data
    torch.manual_seed(0)
    sizes = [Xtr.shape[1], *HIDDEN, 10]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    X = torch.as_tensor(Xtr, dtype=torch.float32)
    y = torch.as_tensor(ytr)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        for idx in torch.randperm(len(X), generator=gen).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()

    t0 = time.perf_counter()
    for _ in range(EPOCHS // 2):
        epoch()
    linear_names = [
        f"{i}.weight" for i, mod in enumerate(model) if isinstance(mod, torch.nn.Linear)
    ]
    sp = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, m), zeros_per_block=m - n)
    sp.prepare(model, [{"tensor_fqn": name} for name in linear_names])
    sp.step()
    for _ in range(EPOCHS - EPOCHS // 2):
        epoch()
    sp.squash_mask()
    seconds = time.perf_counter() - t0
    weights = [mod.weight.detach() for mod in model if isinstance(mod, torch.nn.Linear)]
    nnz = sum(int((w != 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    with torch.no_grad():
        pred = model(torch.as_tensor(Xte, dtype=torch.float32)).argmax(1).numpy()
    return 1 - nnz / total, float(np.mean(pred == yte)), seconds / EPOCHS


def main():
    print(bench_header("sparse training on digits (MLP 64-256-256-10)"))
    data = load()
    rows = []
    with limit_threads():
        import torch

        torch.set_num_threads(1)
        ours(data, method="dense")  # warm-up (imports, allocator)
        _, dense_acc, dense_t = ours(data, method="dense")
        rows.append(["dense MLP", "0%", 0.0, dense_acc, dense_t, "1.00x"])
        for method in ("static", "set", "rigl"):
            for s in SPARSITIES:
                sp, acc, t = ours(data, method=method, sparsity=s)
                rows.append([f"{method} (ERK)", f"{s:.0%}", sp, acc, t, ratio(dense_t, t)])
        for n, m in PATTERNS:
            from sparsestat.neural import SRSTE

            sp, acc, t = ours(data, method=SRSTE(n=n, m=m))
            rows.append([f"SR-STE {n}:{m}", f"{1 - n / m:.1%}", sp, acc, t, ratio(dense_t, t)])
            try:
                sp, acc, t = torch_ao_nm(data, n, m)
                rows.append(
                    [
                        f"torch.ao {n}:{m} prune+finetune",
                        f"{1 - n / m:.1%}",
                        sp,
                        acc,
                        t,
                        ratio(dense_t, t),
                    ]
                )
            except ImportError:
                rows.append([f"torch.ao {n}:{m}", "not installed", "", "", "", ""])
    print(f"{EPOCHS} epochs, batch 64, Adam 1e-3, seed 0; torch threads 1\n")
    print(
        markdown_table(
            rows,
            [
                "method",
                "target sparsity",
                "achieved sparsity",
                "test accuracy",
                "s / epoch",
                "speed vs dense",
            ],
        )
    )


if __name__ == "__main__":
    main()
