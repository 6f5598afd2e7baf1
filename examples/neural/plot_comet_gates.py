"""
================================================
Sparse mixture-of-experts gates: COMET and peers
================================================

A teacher with four linear regimes (selected by the signs of two features) is fitted by a
mixture of six small MLP experts with different gates (Ibrahim et al., KDD 2023):

* ``comet``: k = 2 soft binary trees with smooth-step routing; once routing is binary each
  tree reaches one leaf, so at most k experts are used per sample;
* ``topk``: the k largest logits (Shazeer et al. 2017);
* ``dselect_k``: k smooth-step binary selectors (Hazimeh et al. 2021);
* ``hash``: a fixed, non-learned routing (seeded random-hyperplane codes of the rows);
* ``softmax``: the dense reference (every expert always used).

We report the test MSE and the mean and maximum number of experts per sample under the
default hard routing at prediction (every smooth-step output rounded to its more likely side:
at most k experts by construction), the same for the soft routing used in training, and for
COMET the fraction of training samples routed softly to at most k experts along training
(driven by the entropy penalty). With ``SPARSESTAT_QUICK=1`` a tiny configuration runs in seconds.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sparsestat.neural import COMETMoERegressor

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
n = 400 if QUICK else 3000
epochs = 4 if QUICK else 60

rng = np.random.default_rng(0)
X = rng.normal(size=(n, 6))
regime = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
coefs = rng.normal(size=(4, 6))
y = np.einsum("ij,ij->i", X, coefs[regime]) + 0.05 * rng.normal(size=n)
X_train, X_test, y_train, y_test = X[: n // 2], X[n // 2 :], y[: n // 2], y[n // 2 :]

results = {}
for gate in ("comet", "topk", "dselect_k", "hash", "softmax"):
    model = COMETMoERegressor(
        n_experts=6, k=2, gate=gate, expert_hidden=(8,), gamma=0.05, entropy_coef=1.0,
        lr=0.02, batch_size=128, max_epochs=epochs, random_state=0, device="cpu",
    ).fit(X_train, y_train)  # fmt: skip
    # default: hard routing at prediction (at most k experts per sample by construction)
    mse = np.mean((model.predict(X_test) - y_test) ** 2)
    used = model.selected_experts(X_test).sum(1)
    # the same fitted gate routed softly (as in training)
    soft = model.set_params(hard_routing=False)
    mse_soft = np.mean((soft.predict(X_test) - y_test) ** 2)
    share_soft = np.mean(soft.selected_experts(X_test).sum(1) <= 2)
    model.set_params(hard_routing=True)
    results[gate] = (mse, used.mean(), used.max(), mse_soft, share_soft, model)

print(
    "| gate | test MSE | mean experts / sample | max experts / sample "
    "| soft routing: test MSE | soft routing: share with <= k |"
)
print("|---|---|---|---|---|---|")
for gate, (mse, mean_used, max_used, mse_soft, share_soft, _) in results.items():
    print(
        f"| {gate} | {mse:.4f} | {mean_used:.2f} | {max_used} | {mse_soft:.4f} | {share_soft:.3f} |"
    )

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
names = list(results)
axes[0].bar(names, [results[g][0] for g in names])
axes[0].set(ylabel="test MSE", title="Accuracy")
axes[1].bar(names, [results[g][1] for g in names])
axes[1].axhline(2, color="k", ls=":", lw=1)
axes[1].set(ylabel="experts per sample", title="Sparsity of the gate (k = 2)")
comet = results["comet"][-1]
axes[2].plot([h["frac_le_k"] for h in comet.history_], label="COMET")
axes[2].set(xlabel="epoch", ylabel="share of samples", title="Routed to <= k experts")
axes[2].set_ylim(0, 1.02)
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("comet_gates.png", dpi=120)
    print("figure saved to comet_gates.png")
plt.show()
