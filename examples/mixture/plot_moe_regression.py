"""
=========================================
Gaussian mixture of experts on 1-D data
=========================================

A mixture of three linear experts whose gate is a softmax of linear logits. We draw data
with :func:`~sparsestat.datasets.make_moe_regression`, fit
:class:`~sparsestat.mixture.GaussianMoERegressor` by EM, and show the fitted experts, the
conditional mean ``predict`` and the gate probabilities ``predict_proba``, next to the true
gate probabilities.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sparsestat.datasets import make_moe_regression
from sparsestat.metrics import voronoi_loss
from sparsestat.mixture import GaussianMoERegressor

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
n = 600 if QUICK else 3000

truth = {
    "gate_coef_": np.array([[-6.0], [0.0], [6.0]]) - np.array([[6.0]]),
    "gate_intercept_": np.array([-4.0, 0.0, -4.0]) - np.array([-4.0]),
    "coef_": np.array([[-3.0], [1.0], [-2.0]]),
    "intercept_": np.array([-1.0, 0.5, 4.0]),
    "variances_": np.array([0.05, 0.1, 0.08]),
}
X, y, params, labels = make_moe_regression(
    n, truth=truth, x_range=(-2, 2), return_labels=True, random_state=0
)
moe = GaussianMoERegressor(n_experts=3, n_init=1 if QUICK else 5, random_state=0).fit(X, y)
print(f"mean log-likelihood {moe.lower_bound_:.3f} after {moe.n_iter_} EM iterations")
print(f"Voronoi loss to the truth: {voronoi_loss(moe, params):.3f}")

grid = np.linspace(-2, 2, 400)[:, None]
proba = moe.predict_proba(grid)
S = grid @ params["gate_coef_"].T + params["gate_intercept_"]
true_proba = np.exp(S - S.max(axis=1, keepdims=True))
true_proba /= true_proba.sum(axis=1, keepdims=True)
# match fitted experts to true ones by their intercepts, for the colours
order = np.argsort(moe.intercept_)

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True)
ax1.scatter(X[:, 0], y, c=labels, s=4, cmap="viridis", alpha=0.5)
for c, i in enumerate(order):
    ax1.plot(grid[:, 0], grid @ moe.coef_[i] + moe.intercept_[i], color=f"C{c}", lw=1)
ax1.plot(grid[:, 0], moe.predict(grid), "k", lw=2, label="predict (conditional mean)")
ax1.set_ylim(y.min() - 1, y.max() + 1)
ax1.set_ylabel("y")
ax1.legend(loc="upper left", fontsize=8)
for c, i in enumerate(order):
    ax2.plot(grid[:, 0], proba[:, i], color=f"C{c}", label=f"fitted gate, expert {c}")
    ax2.plot(grid[:, 0], true_proba[:, c], color=f"C{c}", ls="--")
ax2.set_xlabel("x")
ax2.set_ylabel("gate probability (dashed: truth)")
ax2.legend(fontsize=8)
fig.tight_layout()

# Run as a script (not in the documentation gallery), the figure is saved in the working
# directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("moe_regression.png", dpi=120)
    print("figure saved to moe_regression.png")
