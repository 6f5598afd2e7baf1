"""
=====================================================
Sparse autoencoders recover planted features
=====================================================

A sparse autoencoder (SAE) learns an overcomplete dictionary and a one-layer encoder whose
codes are sparse. On synthetic data with a *planted* dictionary we know the true atoms, so
we can measure recovery by the mean max cosine similarity (MMCS) between true and learned
atoms, next to the fraction of variance unexplained (FVU) at a given L0 (active latents per
row).

We compare the activations of :class:`sparsestat.neural.SparseAutoencoder` on flat planted
features (non-negative magnitudes) and on signed (bidirectional) features, where only
AbsTopK and signed matching pursuit can use one atom for both signs. Finally, we look at
the atoms an SAE learns on scikit-learn's handwritten digits.

Set ``SPARSESTAT_QUICK=1`` for a tiny configuration.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from sparsestat.datasets import make_planted_features
from sparsestat.metrics import fvu, mmcs
from sparsestat.neural import SparseAutoencoder, TopK
from sparsestat.neural.layers import make_activation

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"

# %%
# Planted data
# ------------
# Every atom fires with probability 4 / n_atoms, with a magnitude in [0.5, 1.5], in
# d = 64 dimensions with 128 atoms. Each activation is a variant object with its own
# parameters (``TopK(k=4)``, ``BatchTopK(k=4)``, ...); here each name's defaults with
# ``k = 4`` where the variant has a ``k``.
n_train, d, n_atoms, epochs = (2000, 16, 32, 3) if QUICK else (20000, 64, 128, 6)
k = 4
activations = (
    ["topk", "mp"]
    if QUICK
    else [
        "topk",
        "batchtopk",
        "mutual_choice",
        "feature_choice",
        "abstopk",
        "jumprelu",
        "relu_l1",
        "top_afa",
        "mp",
    ]
)

rows = []
for kind in ("flat", "signed"):
    X, _, atoms = make_planted_features(n_train + 2000, d, n_atoms, kind=kind, random_state=0)
    X_train, X_test = X[:n_train], X[n_train:]
    for activation in activations if kind == "flat" else ["topk", "abstopk"]:
        act = make_activation(activation)
        if "k" in act.get_params():
            act.set_params(k=k)
        sae = SparseAutoencoder(
            n_atoms,
            activation=act,
            max_epochs=epochs,
            batch_size=256,
            random_state=0,
        ).fit(X_train)
        Z = sae.transform(X_test)
        rows.append(
            (
                kind,
                activation,
                mmcs(atoms, sae.components_),
                fvu(X_test, sae.inverse_transform(Z)),
                float((Z != 0).sum(axis=1).mean()),
            )
        )

print(f"{'data':8s} {'activation':15s} {'MMCS':>6s} {'FVU':>6s} {'L0':>6s}")
for kind, activation, m, f, l0 in rows:
    print(f"{kind:8s} {activation:15s} {m:6.3f} {f:6.3f} {l0:6.2f}")

# %%
# Recovery and the FVU / L0 trade-off
# -----------------------------------
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
labels = [f"{kind}\n{act}" for kind, act, *_ in rows]
axes[0].bar(range(len(rows)), [r[2] for r in rows], color="tab:blue")
axes[0].axhline(0.9, color="k", lw=0.8, ls="--")
axes[0].set_xticks(range(len(rows)), labels, rotation=90, fontsize=7)
axes[0].set_ylabel("MMCS to the true dictionary")
axes[0].set_ylim(0, 1.05)
for kind, marker in (("flat", "o"), ("signed", "s")):
    pts = [r for r in rows if r[0] == kind]
    axes[1].scatter([r[4] for r in pts], [r[3] for r in pts], marker=marker, label=kind)
    for r in pts:
        axes[1].annotate(r[1], (r[4], r[3]), fontsize=7)
axes[1].set_xlabel("L0 (active latents per row, test set)")
axes[1].set_ylabel("FVU (test set)")
axes[1].legend()
fig.tight_layout()

# %%
# Atoms learned on digits
# -----------------------
# 64 latents with k = 8 on the 8x8 digit images (scaled to [0, 1]).
digits = load_digits().data / 16.0
sae = SparseAutoencoder(
    64, activation=TopK(k=8), max_epochs=2 if QUICK else 40, batch_size=128, random_state=0
).fit(digits)
print(f"digits: 1 - FVU = {sae.score(digits):.3f}")
fig_training = fig
fig, axes = plt.subplots(4, 8, figsize=(8, 4.4))
for ax, atom in zip(axes.ravel(), sae.components_[:32]):
    ax.imshow(atom.reshape(8, 8), cmap="RdBu_r", vmin=-np.abs(atom).max(), vmax=np.abs(atom).max())
    ax.set_axis_off()
fig.suptitle("SparseAutoencoder atoms on digits (first 32 of 64)")
# Run as a script (not in the documentation gallery), the figures are saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig_training.savefig("sae_planted_features.png", dpi=120)
    fig.savefig("sae_planted_features_atoms.png", dpi=120)
    print("figures saved to sae_planted_features.png and sae_planted_features_atoms.png")
plt.show()
