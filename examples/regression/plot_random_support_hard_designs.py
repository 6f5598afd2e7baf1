"""
===========================================================
Sparse regression on badly conditioned designs
===========================================================

:class:`~sparsestat.linear_model.RandomSupportRegressor` first removes common factors from
the design, with a label-free certificate choosing how many, and then runs a Lasso in the
preconditioned coordinates. Dense, global ill-conditioning (an equicorrelated or factor
design) hurts the Lasso on every support; after factor removal the residual columns are
nearly orthogonal on random supports, and the prediction error drops.

The first panel shows the in-sample prediction error ``||X (w_hat - w*)||^2 / N`` against the
number of samples for each design of :func:`~sparsestat.datasets.make_sparse_regression`
(worst-case values on a random support, noise 0.1), for our estimator, ``LassoCV``,
orthogonal matching pursuit, and, when installed, ``IHTRegressor`` and abess (best subset
selection). The second panel shows the certificate score against the number of removed
factors: it falls sharply when the single common factor of the equicorrelated design is
removed, and with three factors for the three-factor design.

Set ``SPARSESTAT_QUICK=1`` for a tiny configuration.
"""

import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LassoCV, OrthogonalMatchingPursuit

from sparsestat.datasets import make_sparse_regression
from sparsestat.linear_model import RandomSupportRegressor

warnings.simplefilter("ignore", ConvergenceWarning)
QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"

k = 5
d = 60 if QUICK else 150
ns = [40, 80] if QUICK else [40, 80, 160, 320]
designs = (
    ["iid", "equicorrelated"]
    if QUICK
    else ["iid", "equicorrelated", "factor", "random_walk", "near_duplicate"]
)

# %%
# The methods. Peers that are not installed are left out.
methods = {
    "RandomSupport (ours)": lambda: RandomSupportRegressor(n_nonzero_coefs=k, random_state=0),
    "LassoCV": lambda: LassoCV(cv=5, precompute=True),
    "OMP": lambda: OrthogonalMatchingPursuit(n_nonzero_coefs=k),
}
try:
    from sparsestat.linear_model import IHTRegressor

    methods["IHT"] = lambda: IHTRegressor(n_nonzero_coefs=k)
except ImportError:
    print("IHTRegressor: not available")
try:
    from abess.linear import LinearRegression as AbessRegression

    methods["abess"] = lambda: AbessRegression(support_size=k)
except ImportError:
    print("abess: not installed")


def prediction_error(X, coef_true, model):
    return float(np.mean((X @ (np.ravel(model.coef_) - coef_true) + model.intercept_) ** 2))


# %%
# Prediction error against the number of samples.
errors = {design: {name: [] for name in methods} for design in designs}
for design in designs:
    for n in ns:
        X, y, w = make_sparse_regression(
            n,
            d,
            k,
            design=design,
            rho=0.999,
            values="worst_case",
            noise=0.1,
            coef=True,
            random_state=n,
        )
        for name, make in methods.items():
            errors[design][name].append(prediction_error(X, w, make().fit(X, y)))

print("prediction error at N =", ns[-1])
print(f"{'design':>16} " + " ".join(f"{name:>20}" for name in methods))
for design in designs:
    row = " ".join(f"{errors[design][name][-1]:20.2e}" for name in methods)
    print(f"{design:>16} {row}")

# %%
# The certificate against the number of removed factors.
cert_curves = {}
for design, kwargs in [("equicorrelated", {"rho": 0.999}), ("factor", {"n_factors": 3})]:
    X, y = make_sparse_regression(ns[-1], d, k, design=design, random_state=0, **kwargs)
    est = RandomSupportRegressor(n_nonzero_coefs=k, alpha=0.01, random_state=0).fit(X, y)
    cert_curves[design] = (est.certificate_, est.n_factors_)

fig, axes = plt.subplots(1, len(designs) + 1, figsize=(3.2 * (len(designs) + 1), 3.2))
for ax, design in zip(axes, designs):
    for name in methods:
        ax.loglog(ns, errors[design][name], marker="o", label=name)
    ax.set_title(design)
    ax.set_xlabel("N")
axes[0].set_ylabel("prediction error")
axes[0].legend(fontsize=7)
ax = axes[-1]
for design, (cert, r_star) in cert_curves.items():
    ax.semilogy(np.arange(cert.size), cert, marker="o", label=f"{design} (r* = {r_star})")
ax.set_xlabel("removed factors r")
ax.set_ylabel("certificate")
ax.legend(fontsize=7)
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("random_support_hard_designs.png", dpi=120)
    print("figure saved to random_support_hard_designs.png")
plt.show()
