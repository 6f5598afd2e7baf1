"""
=================================================================
Kronecker SBL on synthetic data: NMSE and support recovery sweeps
=================================================================

The paper's synthetic setup (He & Joseph, 2024): three Gaussian factors, a Kronecker support
with ``K`` nonzeros per factor and Kronecker-structured values, known noise variance. We sweep
the SNR, the number of measurements (through ``M_1``) and the sparsity ``K``, and report the
NMSE and the support recovery rate ``|S_hat & S| / |S_hat | S|`` (``S_hat``: entries above
1e-3 of the largest) of SVD-KroSBL, AM-KroSBL and Kronecker OMP. The paper uses ``N_i = 15``
and 200 trials; this example uses ``N_i = 10`` and a few trials to stay fast.
"""

import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sparsestat.bayes import KroneckerSBL
from sparsestat.datasets import make_kronecker_sparse_signal
from sparsestat.linear_model import kronecker_omp

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
N_I = 8 if QUICK else 10
N_TRIALS = 1 if QUICK else 3
SWEEPS = {
    "SNR (dB)": [10, 25] if QUICK else [5, 15, 25],
    "M_1": [4, 7] if QUICK else [4, 6, 8],
    "K": [2, 3] if QUICK else [2, 3, 4],
}
DEFAULTS = {"SNR (dB)": 25, "M_1": 6, "K": 2}
METHODS = ["SVD-KroSBL", "AM-KroSBL", "Kronecker OMP"]


def srr(coef_hat, coef):
    s_hat = np.abs(coef_hat) > 1e-3 * np.abs(coef_hat).max() if np.any(coef_hat) else coef_hat != 0
    s = coef != 0
    return np.sum(s_hat & s) / np.sum(s_hat | s)


def run(snr, m1, k, seed):
    factors, y, coef, info = make_kronecker_sparse_signal(
        factor_shapes=((m1, N_I), (N_I - 2, N_I), (N_I, N_I)),
        n_nonzero=k,
        snr_db=snr,
        random_state=seed,
        return_info=True,
    )
    out = {}
    for name in METHODS:
        if name == "Kronecker OMP":
            coef_hat = kronecker_omp(factors, y)
        else:
            est = KroneckerSBL(method="svd" if name.startswith("SVD") else "am",
                               noise_variance=info.noise_variance)  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                coef_hat = est.fit(factors, y).coef_
        out[name] = (np.sum((coef_hat - coef) ** 2) / np.sum(coef**2), srr(coef_hat, coef))
    return out


fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
for col, (param, values) in enumerate(SWEEPS.items()):
    nmse = {m: [] for m in METHODS}
    rate = {m: [] for m in METHODS}
    for v in values:
        setting = dict(DEFAULTS, **{param: v})
        trials = [
            run(setting["SNR (dB)"], setting["M_1"], setting["K"], seed) for seed in range(N_TRIALS)
        ]
        for m in METHODS:
            nmse[m].append(np.median([t[m][0] for t in trials]))
            rate[m].append(np.mean([t[m][1] for t in trials]))
    for m in METHODS:
        axes[0, col].semilogy(values, nmse[m], "o-", label=m)
        axes[1, col].plot(values, rate[m], "o-", label=m)
        print(f"{param:9s} {m:14s} median NMSE {np.round(nmse[m], 5)}  SRR {np.round(rate[m], 2)}")
    axes[1, col].set_xlabel(param)
axes[0, 0].set_ylabel("median NMSE")
axes[1, 0].set_ylabel("support recovery rate")
axes[0, 0].legend(fontsize=8)
for ax in axes.ravel():
    ax.grid(alpha=0.3)
fig.suptitle(f"N = {N_I}^3, {N_TRIALS} trial(s) per point")
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("synthetic_sweeps.png", dpi=120)
    print("figure saved to synthetic_sweeps.png")
plt.show()
