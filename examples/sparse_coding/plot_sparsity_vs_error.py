"""
============================================================
Sparsity against reconstruction error, per sparsity penalty
============================================================

The paper's main comparison (Rentzeperis et al. 2023): how many active coefficients does
each penalty need to reconstruct natural image patches to a given error? We code 8x8 patches
of scikit-learn's sample images against a fixed 2-D overcomplete DCT dictionary (255 atoms)
with :class:`~sparsestat.decomposition.LqSparseCoder` for l1 (soft thresholding), l0 (hard),
l1/2 (half thresholding) and CEL0, sweep ``alpha``, and plot the relative error
``||X - C D||^2 / ||X||^2`` against the mean number of nonzero coefficients per patch.

At equal error the non-convex penalties need clearly fewer active units than l1.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sparsestat.datasets import load_image_patches, make_dct_dictionary
from sparsestat.decomposition import LqSparseCoder

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
n_patches, n_alphas = (60, 4) if QUICK else (500, 8)

X = load_image_patches(8, n_patches=n_patches, random_state=0)
D = make_dct_dictionary(8, 16)
grids = {
    "l1": np.geomspace(0.05, 2.0, n_alphas),
    "l0": np.geomspace(0.01, 0.5, n_alphas),
    "l1/2": np.geomspace(0.02, 1.0, n_alphas),
    "cel0": np.geomspace(0.01, 2.0, n_alphas),
}

fig, ax = plt.subplots(figsize=(6, 4))
for penalty, alphas in grids.items():
    errs, nnzs = [], []
    for alpha in alphas:
        coder = LqSparseCoder(D, penalty=penalty, alpha=alpha, max_iter=300)
        C = coder.transform(X)
        errs.append(np.sum((X - C @ D) ** 2) / np.sum(X**2))
        nnzs.append(np.mean(np.count_nonzero(C, axis=1)))
    ax.plot(nnzs, errs, "o-", label=penalty)
    print(f"{penalty:5s} nnz/patch {np.round(nnzs, 1)}  rel. error {np.round(errs, 3)}")
ax.set_xlabel("nonzero coefficients per patch")
ax.set_ylabel("relative reconstruction error")
ax.set_yscale("log")
ax.set_title("Natural 8x8 patches, 255 DCT atoms")
ax.legend()
fig.tight_layout()

# Run as a script (not in the documentation gallery), the figure is saved in the working
# directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("sparsity_vs_error.png", dpi=120)
    print("figure saved to sparsity_vs_error.png")
