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
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sparsestat.datasets import load_image_patches
from sparsestat.decomposition import MiniBatchLqDictionaryLearning

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
n_patches, n_atoms, epochs = (300, 32, 1) if QUICK else (4000, 128, 2)

X = load_image_patches(8, n_patches=n_patches, whiten=True, random_state=0)
alphas = {"l1": 0.5, "l0": 0.1, "l1/2": 0.3, "cel0": 0.2}

fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
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
    print(f"{penalty:5s} nnz/patch {nnz:5.1f}  relative error {err:.3f}")
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
plt.show()
