"""
===========================================================
QuickSelection: feature selection with a sparse autoencoder
===========================================================

:class:`~sparsestat.neural.QuickSelection` trains a sparse denoising autoencoder with
Sparse Evolutionary Training and ranks the input features by the *strength* of their
neurons, the summed magnitude of their surviving connections. It is unsupervised: it
favours features that take part in correlated structure.

On Madelon-like data (5 informative and 15 redundant features, linear combinations of the
informative ones, followed by 80 noise features) we check how many of the first 20 columns
it recovers, and the accuracy of an extra-trees classifier on the selected columns against
20 random columns and 20 columns of highest variance.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.model_selection import cross_val_score

from sparsestat.neural import QuickSelection

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
n_samples = 500 if QUICK else 1000
epochs = 10 if QUICK else 30

X, y = make_classification(
    n_samples=n_samples,
    n_features=100,
    n_informative=5,
    n_redundant=15,
    n_repeated=0,
    shuffle=False,
    random_state=0,
)
qs = QuickSelection(n_features_to_select=20, hidden_units=200, max_epochs=epochs, random_state=0)
qs.fit(X)
selected = qs.get_support(indices=True)
print(f"recovered {np.mean(selected < 20):.2f} of the 20 structured features (chance 0.20)")

rng = np.random.default_rng(0)
subsets = {
    "QuickSelection": selected,
    "highest variance": np.argsort(-X.var(axis=0))[:20],
    "random": rng.choice(100, 20, replace=False),
    "all 100": np.arange(100),
}
scores = {}
for name, cols in subsets.items():
    clf = ExtraTreesClassifier(n_estimators=50 if QUICK else 100, random_state=0)
    scores[name] = cross_val_score(clf, X[:, cols], y, cv=3).mean()
    print(f"{name:17s} extra-trees accuracy {scores[name]:.3f}")

# %%
# Neuron strength of every feature
# --------------------------------
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
colors = np.where(np.arange(100) < 5, "C3", np.where(np.arange(100) < 20, "C1", "C7"))
axes[0].bar(np.arange(100), qs.feature_importances_, color=colors)
axes[0].scatter(selected, qs.feature_importances_[selected] * 1.03, marker="v", s=12, c="k")
axes[0].set_xlabel("feature (red: informative, orange: redundant, grey: noise)")
axes[0].set_ylabel("neuron strength")
axes[0].set_title("triangles: selected")

axes[1].barh(list(scores), list(scores.values()))
axes[1].set_xlim(0.5, 1.0)
axes[1].set_xlabel("3-fold accuracy (extra trees)")
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("quickselection.png", dpi=120)
    print("figure saved to quickselection.png")
plt.show()
