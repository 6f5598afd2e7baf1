"""
===========================================================
Receptive fields learned under l1, l0, l1/2 and CEL0 codes
===========================================================

Olshausen and Field's experiment with the penalties of Rentzeperis et al. (2023): an
overcomplete dictionary is learned on whitened natural image patches by
:class:`~sparsestat.decomposition.MiniBatchLqDictionaryLearning` (mini-batches of 250 patches,
atoms on the unit sphere, block-coordinate dictionary updates), once per penalty. The atoms
play the role of V1 receptive fields; localised, oriented, Gabor-like atoms appear with every
penalty.

Each learned dictionary is then analysed like a population of V1 cells: a 2-D Gabor is fitted
to some atoms by least squares (:func:`~sparsestat.decomposition.fit_gabor`; the fraction of
the atom explained, ``R^2``, and the shape summary ``(n_x, n_y) = (sigma_x f, sigma_y f)`` of
Ringach 2002), and every atom's orientation tuning is probed with full-field gratings coded by
the same penalty (:func:`~sparsestat.decomposition.orientation_tuning`; selective when the
circular variance is below 0.5). The paper's exact analysis protocol was not available; this
one is a reconstruction.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sparsestat.datasets import load_image_patches
from sparsestat.decomposition import (
    LqSparseCoder,
    MiniBatchLqDictionaryLearning,
    fit_gabor,
    orientation_tuning,
)

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
n_patches, n_atoms, epochs = (300, 32, 1) if QUICK else (4000, 128, 2)
n_fit = 3 if QUICK else 12  # atoms per penalty given a Gabor fit

X = load_image_patches(8, n_patches=n_patches, whiten=True, random_state=0)
alphas = {"l1": 0.5, "l0": 0.1, "l1/2": 0.3, "cel0": 0.2}

fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
shapes = {}
for ax, (penalty, alpha) in zip(axes, alphas.items()):
    dl = MiniBatchLqDictionaryLearning(
        n_atoms,
        penalty=penalty,
        alpha=alpha,
        batch_size=250,
        max_iter=epochs,
        transform_max_iter=100,
        random_state=0,
    ).fit(X)
    C = dl.transform(X[:500])
    nnz = np.mean(np.count_nonzero(C, axis=1))
    err = np.sum((X[:500] - C @ dl.components_) ** 2) / np.sum(X[:500] ** 2)
    fits = [fit_gabor(atom, n_starts=1) for atom in dl.components_[:n_fit]]
    shapes[penalty] = np.array([(f.nx, f.ny) for f in fits if f.r2 > 0.5]).reshape(-1, 2)
    coder = LqSparseCoder(dl.components_, penalty=penalty, alpha=alpha, max_iter=100)
    tuning = orientation_tuning(coder, n_orient=8 if QUICK else 12, n_phases=4)
    print(
        f"{penalty:5s} nnz/patch {nnz:5.1f}  relative error {err:.3f}  "
        f"median Gabor R2 {np.median([f.r2 for f in fits]):.2f}  "
        f"orientation-selective {np.mean(tuning.selective):.0%}"
    )
    side = int(np.ceil(np.sqrt(n_atoms)))
    mosaic = np.full((side * 9, side * 9), np.nan)
    for i, atom in enumerate(dl.components_):
        r, c = divmod(i, side)
        mosaic[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = atom.reshape(8, 8) / np.abs(atom).max()
    ax.imshow(mosaic, cmap="gray", vmin=-1, vmax=1)
    ax.set_title(f"{penalty}: {nnz:.1f} active, err {err:.2f}")
    ax.axis("off")
fig.suptitle("Learned dictionaries (8x8 whitened patches)")
fig.tight_layout()

# %%
# Shapes of the atoms that a Gabor describes well (R^2 > 0.5), in Ringach's plane: cells
# with n_x, n_y around 0.2-0.5 are the elongated, few-lobed simple cells of macaque V1.
fig2, ax2 = plt.subplots(figsize=(4.5, 4))
for penalty, pts in shapes.items():
    ax2.scatter(pts[:, 0], pts[:, 1], label=penalty, s=18)
ax2.set(xlabel="$n_x = \\sigma_x f$", ylabel="$n_y = \\sigma_y f$", xlim=(0, 1.5), ylim=(0, 1.5))
ax2.legend()
fig2.tight_layout()

# Run as a script (not in the documentation gallery), the figure is saved in the working
# directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("v1_receptive_fields.png", dpi=120)
    print("figure saved to v1_receptive_fields.png")
    fig2.savefig("v1_gabor_shapes.png", dpi=120)
    print("figure saved to v1_gabor_shapes.png")
