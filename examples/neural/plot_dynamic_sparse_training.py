"""
===============================================
Random pruning, SET and RigL at a fixed budget
===============================================

Unstructured sparse training keeps a fixed number of nonzero weights per layer from the
first step to the last. The budget is spread over the layers either uniformly or with the
Erdős–Rényi-kernel rule (ERK), which gives small layers more density. A *static* random
mask is the naive baseline that Liu et al. (ICLR 2022) showed to be strong; SET and RigL
additionally move connections during training: they drop the weakest active weights and
grow as many new ones, at random (SET) or where the dense gradient is largest (RigL).

This example shows the ERK densities of a digits MLP, the test accuracy of the three
methods as the sparsity grows, and that the number of nonzero weights stays exactly at its
budget while the masks evolve.
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

from sparsestat.neural import SparseMLPClassifier
from sparsestat.neural.layers import erk_densities, uniform_densities

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
hidden = (64, 64) if QUICK else (256, 256)
epochs = 4 if QUICK else 15
sparsities = [0.8, 0.95] if QUICK else [0.5, 0.8, 0.9, 0.95]
methods = ["static", "set", "rigl"]

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# %%
# Layer densities at 90% sparsity
# -------------------------------
shapes = [(hidden[0], 64), (hidden[1], hidden[0]), (10, hidden[1])]
erk = erk_densities(shapes, 0.1)
uni = uniform_densities(shapes, 0.1)
for name, dens in (("ERK", erk), ("uniform", uni)):
    print(name, [f"{d:.3f}" for d in dens])

fig, axes = plt.subplots(1, 3, figsize=(14, 4))
pos = np.arange(len(shapes))
axes[0].bar(pos - 0.2, erk, width=0.4, label="ERK")
axes[0].bar(pos + 0.2, uni, width=0.4, label="uniform")
axes[0].set_xticks(pos, [f"{o}x{i}" for o, i in shapes])
axes[0].set_ylabel("layer density")
axes[0].set_title("90% sparsity overall")
axes[0].legend()

# %%
# Accuracy against sparsity
# -------------------------
models = {}
for method in methods:
    accs = []
    for s in sparsities:
        clf = SparseMLPClassifier(
            hidden_layer_sizes=hidden,
            method=method,
            sparsity=s,
            max_epochs=epochs,
            lr=1e-3,
            batch_size=64,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X_train, y_train)
        accs.append(clf.score(X_test, y_test))
        models[method, s] = clf
    print(method, [f"{a:.3f}" for a in accs])
    axes[1].plot(sparsities, accs, "o-", label=method)
axes[1].set_xlabel("sparsity")
axes[1].set_ylabel("test accuracy")
axes[1].legend()

# %%
# The budget over training
# ------------------------
# The count of active weights is the same after every epoch, while SET and RigL keep
# rewiring (RigL's drop fraction decays with a cosine and stops at 75% of the steps).
s = sparsities[-1]
for method in ("set", "rigl"):
    clf = models[method, s]
    epochs_axis = np.arange(1, len(clf.nnz_history_) + 1)
    axes[2].plot(epochs_axis, clf.nnz_history_, "-", label=f"{method}: nonzero weights")
    axes[2].plot(epochs_axis, clf.mask_flips_, "o--", label=f"{method}: mask changes")
axes[2].set_xlabel("epoch")
axes[2].set_title(f"sparsity {s}")
axes[2].legend(fontsize=8)
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("dynamic_sparse_training.png", dpi=120)
    print("figure saved to dynamic_sparse_training.png")
plt.show()
