"""
==========================================
N:M sparse training from scratch on digits
==========================================

Fine-grained N:M sparsity keeps at most ``n`` nonzero weights in every group of ``m``
consecutive input weights of a layer, the pattern that sparse tensor cores accelerate (2:4 on
NVIDIA Ampere and later). :class:`~sparsestat.neural.SparseMLPClassifier` trains such networks
from scratch: the dense weight is kept, the N:M mask is recomputed from ``|W|`` at every
forward pass, and gradients reach the pruned weights through a straight-through estimator
(STE). SR-STE adds a small decay on the pruned weights, which makes the mask settle (fewer
mask flips, the paper's "sparse architecture divergence"); progressive gradient flow (PGF)
starts dense and lets the pruned weights fade out.

We compare test accuracy on the digits data at 2:4, 1:8 and 1:16, show the N:M pattern of a
trained first layer, and count the mask flips per epoch.
"""

import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from sparsestat.neural import PGF, SRSTE, STE, SparseMLPClassifier

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
hidden = (64,) if QUICK else (128, 128)
epochs = 4 if QUICK else 15
patterns = [(2, 4), (1, 8)] if QUICK else [(2, 4), (1, 8), (1, 16)]
methods = {"ste": STE, "sr-ste": SRSTE, "pgf": PGF}
if QUICK:
    del methods["pgf"]

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)


def fit(**params):
    clf = SparseMLPClassifier(
        hidden_layer_sizes=hidden,
        max_epochs=epochs,
        lr=1e-3,
        batch_size=64,
        random_state=0,
        **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X_train, y_train)
    return clf


dense_acc = fit(method="dense").score(X_test, y_test)
results = {method: [] for method in methods}
models = {}
for method in methods:
    for n, m in patterns:
        clf = fit(method=methods[method](n=n, m=m))
        results[method].append(clf.score(X_test, y_test))
        models[method, n, m] = clf
        print(
            f"{method:7s} {n}:{m:<3d} accuracy {results[method][-1]:.3f}  "
            f"sparsity {clf.sparsity_:.3f}"
        )
print(f"dense        accuracy {dense_acc:.3f}")

# %%
# Accuracy against sparsity
# -------------------------
# Digits is easy: even 1:16 (94% of the weights zero) stays close to the dense network.
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
sparsity = [1 - n / m for n, m in patterns]
for method in methods:
    axes[0].plot(sparsity, results[method], "o-", label=method)
axes[0].axhline(dense_acc, color="k", ls="--", label="dense")
axes[0].set_xticks(sparsity, [f"{n}:{m}" for n, m in patterns])
axes[0].set_xlabel("N:M pattern")
axes[0].set_ylabel("test accuracy")
axes[0].legend()

# %%
# The N:M pattern
# ---------------
# A 16 x 32 corner of the first layer of the 2:4 SR-STE model: in every row, each group of
# four consecutive weights holds exactly two nonzeros.
w = models["sr-ste", 2, 4].export_sparse().branches[0][0].weight.detach().numpy()
patch = np.abs(w[:16, :32])
axes[1].imshow(np.where(patch > 0, patch, np.nan), cmap="viridis", aspect="auto")
for c in range(0, 33, 4):
    axes[1].axvline(c - 0.5, color="w", lw=0.8)
axes[1].set_title("|W| of layer 1, 2:4 (white: pruned)")
axes[1].set_xlabel("input")
axes[1].set_ylabel("unit")

# %%
# Mask flips per epoch
# --------------------
# SR-STE's decay on the pruned weights settles the mask faster than plain STE.
for method in ("ste", "sr-ste"):
    axes[2].plot(np.arange(1, epochs + 1), models[method, 2, 4].mask_flips_, "o-", label=method)
axes[2].set_yscale("log")
axes[2].set_xlabel("epoch")
axes[2].set_ylabel("mask entries changed (2:4)")
axes[2].legend()
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("nm_sparse_training.png", dpi=120)
    print("figure saved to nm_sparse_training.png")
plt.show()
