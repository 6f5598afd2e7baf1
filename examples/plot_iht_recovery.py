"""
=============================================
Exact support recovery with hard thresholding
=============================================

How many noiseless Gaussian measurements does it take to recover a ``k``-sparse vector
exactly? We compare :class:`~sparsestat.linear_model.IHTRegressor` with its normalised step
(the default), the classical fixed step ``1/||X||^2``, scikit-learn's orthogonal matching
pursuit and the cross-validated Lasso, on an iid design, as the number of samples grows
past ``n = 4 k log d``.

Run with ``--demo`` for more trials; run as a script, it saves its figure to ``demo_output/``.
"""

import math
import os
import sys
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LassoCV, OrthogonalMatchingPursuit

from sparsestat.datasets import make_sparse_regression
from sparsestat.linear_model import IHTRegressor
from sparsestat.metrics import support_recovery

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
DEMO = "--demo" in sys.argv
warnings.simplefilter("ignore", ConvergenceWarning)

d, k = (200, 5) if QUICK else (500, 10)
n_trials = 2 if QUICK else (5 if DEMO else 10)
ratios = [1.0, 2.0, 4.0] if QUICK else [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
n_grid = [int(r * k * math.log(d)) for r in ratios]

methods = {
    "IHT (normalised step)": lambda: IHTRegressor(k, fit_intercept=False, max_iter=1000),
    "IHT (step 1/L)": lambda: IHTRegressor(k, step_size=1.0, fit_intercept=False, max_iter=1000),
    "OMP": lambda: OrthogonalMatchingPursuit(n_nonzero_coefs=k, fit_intercept=False),
    "LassoCV": lambda: LassoCV(cv=3, fit_intercept=False, alphas=30),
}

# %%
# Run the experiment: fraction of trials with the exact support, and mean fit time.
success = {m: np.zeros(len(n_grid)) for m in methods}
seconds = dict.fromkeys(methods, 0.0)
for i, n in enumerate(n_grid):
    for trial in range(n_trials):
        X, y, coef = make_sparse_regression(
            n, d, k, design="iid", noise=0.0, coef=True, random_state=1000 * i + trial
        )
        for name, make in methods.items():
            t0 = time.perf_counter()
            est = make().fit(X, y)
            seconds[name] += time.perf_counter() - t0
            tol = 1e-6 * np.max(np.abs(est.coef_)) if np.any(est.coef_) else 0.0
            scores = support_recovery(coef, est.coef_, tol=tol)
            success[name][i] += scores["jaccard"] == 1.0
for name in methods:
    success[name] /= n_trials

# %%
# Table and figure.
header = "| n / (k log d) | " + " | ".join(methods) + " |"
lines = [header, "|" + "---|" * (len(methods) + 1)]
for i, r in enumerate(ratios):
    lines.append(f"| {r:g} | " + " | ".join(f"{success[m][i]:.2f}" for m in methods) + " |")
lines.append("| total fit time (s) | " + " | ".join(f"{seconds[m]:.2f}" for m in methods) + " |")
print(f"Exact support recovery, d = {d}, k = {k}, {n_trials} trials per point")
print("\n".join(lines))

fig, ax = plt.subplots(figsize=(6, 4))
for name in methods:
    ax.plot(ratios, success[name], marker="o", label=name)
ax.axvline(4.0, color="grey", ls=":", lw=1)
ax.set_xlabel("n / (k log d)")
ax.set_ylabel("exact support recovery rate")
ax.set_title(f"Noiseless iid design, d = {d}, k = {k}")
ax.legend()
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in demo_output/.
if "sphinx_gallery" not in sys.modules:
    os.makedirs("demo_output", exist_ok=True)
    fig.savefig("demo_output/iht_recovery.png", dpi=120)
    print("figure saved to demo_output/iht_recovery.png")
plt.show()
