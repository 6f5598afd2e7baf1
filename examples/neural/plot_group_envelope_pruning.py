"""
========================================================
k-level structured sparsity with the group envelope
========================================================

The weighted group sparse envelope (Refael, Arbel & Huleihel) is a convex regulariser that
selects whole groups of weights, here the hidden neurons of an MLP, with a prescribed number
``k`` of surviving groups per layer. Training applies its exact proximal operator after
every optimizer step, then projects onto exactly ``k`` neurons and fine-tunes.

On digits we vary the fraction of neurons kept, report accuracy, and call ``prune()``, which
returns a smaller dense network with the same predictions. With ``SPARSESTAT_QUICK=1`` a
tiny configuration runs in seconds.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sparsestat.neural import GroupEnvelopeMLPClassifier

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
hidden = (32, 16) if QUICK else (128, 64)
epochs = 4 if QUICK else 30
finetune = 2 if QUICK else 5
fractions = (0.25, 1.0) if QUICK else (0.1, 0.25, 0.5, 1.0)

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

rows = []
for frac in fractions:
    clf = GroupEnvelopeMLPClassifier(
        hidden_layer_sizes=hidden, n_nonzero_groups=frac, alpha=0.05, max_epochs=epochs,
        finetune_epochs=finetune, random_state=0, device="cpu",
    ).fit(X_train, y_train)  # fmt: skip
    small = clf.prune()
    same = np.max(np.abs(small.predict_proba(X_test) - clf.predict_proba(X_test)))
    rows.append(
        (frac, small.hidden_widths_, clf.score(X_test, y_test), clf.compression_ratio_, same)
    )

print("| k (fraction) | pruned widths | accuracy | compression | max |p_pruned - p| |")
print("|---|---|---|---|---|")
for frac, widths, acc, comp, same in rows:
    print(f"| {frac} | {widths} | {acc:.3f} | {comp:.1f}x | {same:.1e} |")

fig, ax = plt.subplots(figsize=(6, 4))
ax.plot([r[3] for r in rows], [r[2] for r in rows], "o-")
for frac, _, acc, comp, _ in rows:
    ax.annotate(f"k = {frac}", (comp, acc), textcoords="offset points", xytext=(5, 5))
ax.set(xlabel="compression (parameters, full / pruned)", ylabel="test accuracy",
       title="Group envelope: neurons kept vs accuracy (digits)")  # fmt: skip
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("group_envelope_pruning.png", dpi=120)
    print("figure saved to group_envelope_pruning.png")
plt.show()
