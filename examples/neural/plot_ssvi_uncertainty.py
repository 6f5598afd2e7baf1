"""
============================================================
Sparse subspace variational inference: accuracy, calibration
============================================================

A Bayesian MLP trained with sparse subspace variational inference (SSVI, Li et al., ICLR
2024) keeps only a fixed fraction of its variational parameters during the whole training.
On scikit-learn's digits we compare SSVI at 90% and 95% sparsity with dense mean-field VI
(:class:`~sparsestat.neural.MeanFieldVIClassifier`, the same code with every weight active)
and with a deterministic MLP (scikit-learn's :class:`~sklearn.neural_network.MLPClassifier`):
test accuracy and expected calibration error (ECE).

Then we train SSVI on the digits 0-4 only and look at the predictive entropy and the mutual
information (epistemic uncertainty) on held-out digits 0-4 and on the unseen classes 5-9.
With ``SPARSESTAT_QUICK=1`` a tiny configuration runs in seconds.
"""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from sparsestat.metrics import expected_calibration_error
from sparsestat.neural import MeanFieldVIClassifier, SSVIClassifier

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
hidden = (64,) if QUICK else (128, 128)
epochs = 8 if QUICK else 20
common = {"hidden_layer_sizes": hidden, "max_epochs": epochs, "random_state": 0, "device": "cpu"}

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)

models = {
    "SSVI, 90% sparse": SSVIClassifier(sparsity=0.9, **common),
    "SSVI, 95% sparse": SSVIClassifier(sparsity=0.95, **common),
    "dense mean-field VI": MeanFieldVIClassifier(**common),
    "deterministic MLP": MLPClassifier(hidden, max_iter=10 * epochs, random_state=0),
}
rows = []
probas = {}
for name, model in models.items():
    model.fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    probas[name] = proba
    acc = np.mean(model.classes_[proba.argmax(1)] == y_test)
    ece = expected_calibration_error(y_test, proba, classes=model.classes_)
    active = getattr(model, "n_active_", None)
    rows.append((name, acc, ece, active))

print("| model | accuracy | ECE | active weights |")
print("|---|---|---|---|")
for name, acc, ece, active in rows:
    print(f"| {name} | {acc:.3f} | {ece:.3f} | {active if active is not None else 'all'} |")

# %%
# Reliability diagram: accuracy against confidence in 10 bins.
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
edges = np.linspace(0, 1, 11)
for name, proba in probas.items():
    conf, correct = proba.max(1), proba.argmax(1) == y_test
    idx = np.clip(np.digitize(conf, edges) - 1, 0, 9)
    xs = [conf[idx == b].mean() for b in range(10) if np.any(idx == b)]
    ys = [correct[idx == b].mean() for b in range(10) if np.any(idx == b)]
    axes[0].plot(xs, ys, "o-", label=name)
axes[0].plot([0, 1], [0, 1], "k:", lw=1)
axes[0].set(xlabel="confidence", ylabel="accuracy", title="Reliability on digits (test)")
axes[0].legend(fontsize=8)

# %%
# Out-of-distribution: train on digits 0-4, compare uncertainty on 0-4 and on 5-9.
ind_train, ind_test = y_train < 5, y_test < 5
ood = SSVIClassifier(sparsity=0.9, **common).fit(X_train[ind_train], y_train[ind_train])
u_in = ood.predict_uncertainty(X_test[ind_test])
u_out = ood.predict_uncertainty(X_test[~ind_test])
labels = np.r_[np.zeros(ind_test.sum()), np.ones((~ind_test).sum())]
auroc = roc_auc_score(labels, np.r_[u_in["entropy"], u_out["entropy"]])
print(
    f"held-out digits 0-4: entropy {u_in['entropy'].mean():.3f}, "
    f"mutual information {u_in['mutual_info'].mean():.4f}"
)
print(
    f"unseen digits 5-9:   entropy {u_out['entropy'].mean():.3f}, "
    f"mutual information {u_out['mutual_info'].mean():.4f}; AUROC(entropy) {auroc:.3f}"
)
bins = np.linspace(0, np.log(5), 25)
axes[1].hist(u_in["entropy"], bins=bins, alpha=0.6, density=True, label="digits 0-4 (seen)")
axes[1].hist(u_out["entropy"], bins=bins, alpha=0.6, density=True, label="digits 5-9 (unseen)")
axes[1].set(xlabel="predictive entropy", ylabel="density", title="SSVI (90% sparse) entropy")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
