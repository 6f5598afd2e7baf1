"""
===========================================================
Error rates of sparse regression under local privacy
===========================================================

Every user privatises their own ``(x, y)`` before it leaves their device. How fast does
the error ``||theta_hat - theta*||_2`` fall with the number of users ``n`` and the privacy
budget ``epsilon``, and how does it grow with the dimension ``d`` and the sparsity ``k``?

We compare the three estimators of :mod:`sparsestat.privacy`:

* :class:`~sparsestat.privacy.LDPSparseLinearRegression` (non-interactive, NLDP),
* the same with public unlabelled covariates (``public_X``),
* :class:`~sparsestat.privacy.LDPIHTRegressor` (sequentially interactive),

with the non-private elementary estimator (``epsilon=np.inf``) and scikit-learn's
``LassoCV`` on the raw data as references. The legend shows each fitted log-log slope next
to the theory's exponent (Zhu et al., ICLR 2024): ``-1/2`` in n, ``-1`` in epsilon,
``+1`` (NLDP) / ``+1/2`` (public, LDP-IHT) in d, and ``+1/2`` (NLDP) / ``+1`` (LDP-IHT) in
k. The NLDP runs use ``simulate_aggregate=True`` (one aggregated noise draw, same
distribution as per-user noise); LDP-IHT runs per user. The design is Rademacher, so the
clipping bound ``tau1 = 1`` is exact. The soft threshold is chosen by ``alpha="cv"``
(cross-validation on the private statistics, pure post-processing): the theory-style
``alpha="auto"`` is conservative and sets every coefficient to zero until n is of the order
of ``d^4``. At these sample sizes (at most 1.6e5 users, so that the example runs in
seconds) the non-interactive estimator is *not* yet in its asymptotic regime: the noise in
the privatised covariance is as large as the covariance itself, its error saturates near
``||theta*||_2`` and its slopes are flatter than the theory's. The public-data variant,
which has no noise in the covariance, and LDP-IHT are much closer to their rates. The test
suite checks the NLDP slopes in n and epsilon (ratios within [0.4, 0.6]) in the
noise-dominated regime with larger n.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LassoCV

from sparsestat.privacy import LDPIHTRegressor, LDPSparseLinearRegression

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
REPEATS = 1 if QUICK else 3
N_BASE = 20_000 if QUICK else 80_000


def make_data(n, d, k, seed):
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, 1.0], size=(n, d))
    theta = np.zeros(d)
    theta[rng.choice(d, k, replace=False)] = rng.choice([-1.0, 1.0], k) / k
    y = X @ theta + 0.1 * rng.standard_normal(n)
    return X, y, theta


def errors(n, d, k, eps, with_lasso=False):
    """Mean l2 errors of each estimator over REPEATS data sets."""
    out = {}
    for rep in range(REPEATS):
        X, y, theta = make_data(n, d, k, rep)
        P = make_data(5000, d, k, 100 + rep)[0]
        common = {
            "bounds_X": 1.0,
            "bounds_y": 1.5,
            "delta": n**-1.1,
            "alpha": "cv",
            "random_state": rep,
        }
        models = {
            "NLDP": LDPSparseLinearRegression(eps, simulate_aggregate=True, **common),
            "NLDP + public X": LDPSparseLinearRegression(
                eps, simulate_aggregate=True, public_X=P, **common
            ),
            "LDP-IHT": LDPIHTRegressor(
                n_nonzero_coefs=k,
                epsilon=eps,
                step_size=0.5,
                bounds_X=1.0,
                bounds_y=1.5,
                random_state=rep,
            ),
            "non-private (eps=inf)": LDPSparseLinearRegression(np.inf, **common),
        }
        if with_lasso:
            models["LassoCV (raw data)"] = LassoCV(cv=3, fit_intercept=False, alphas=20)
        for name, model in models.items():
            err = np.linalg.norm(model.fit(X, y).coef_ - theta)
            out[name] = out.get(name, 0.0) + err / REPEATS
    return out


def sweep(values, make_args, **kw):
    table = {}
    for v in values:
        for name, err in errors(*make_args(v), **kw).items():
            table.setdefault(name, []).append(err)
    return table


# %%
# Four sweeps: n, epsilon, d and k (the others fixed at n = N_BASE, eps = 1, d = 4, k = 2).
ns = np.array([N_BASE // 4, N_BASE // 2, N_BASE, 2 * N_BASE])
epss = np.array([0.25, 0.5, 1.0])
ds = np.array([2, 3, 4, 6])
ks = np.array([1, 2, 3, 4])
panels = [
    ("n (users)", ns, sweep(ns, lambda n: (int(n), 4, 2, 1.0), with_lasso=True)),
    ("epsilon", epss, sweep(epss, lambda e: (N_BASE, 4, 2, float(e)))),
    ("d", ds, sweep(ds, lambda d: (N_BASE, int(d), 2, 1.0))),
    ("k (d = 8)", ks, sweep(ks, lambda k: (N_BASE, 8, int(k), 1.0))),
]
theory = {
    "n (users)": {"NLDP": -0.5, "NLDP + public X": -0.5, "LDP-IHT": -0.5},
    "epsilon": {"NLDP": -1.0, "NLDP + public X": -1.0, "LDP-IHT": -1.0},
    "d": {"NLDP": 1.0, "NLDP + public X": 0.5, "LDP-IHT": 0.5},
    "k (d = 8)": {"NLDP": 0.5, "NLDP + public X": 0.5, "LDP-IHT": 1.0},
}

# %%
# Plot each sweep on log-log axes, with the fitted slope beside the theory's.
fig, axes = plt.subplots(2, 2, figsize=(11, 8))
print(f"{'sweep':<12} {'estimator':<22} {'slope':>7} {'theory':>7}")
for ax, (label, xs, table) in zip(axes.ravel(), panels):
    for name, errs in table.items():
        errs = np.asarray(errs)
        slope = np.polyfit(np.log(xs), np.log(errs), 1)[0]
        th = theory[label].get(name)
        legend = f"{name}: slope {slope:+.2f}" + (f" (theory {th:+.2f})" if th is not None else "")
        style = "--" if "non-private" in name or "Lasso" in name else "-o"
        ax.loglog(xs, errs, style, label=legend)
        print(f"{label:<12} {name:<22} {slope:+7.2f} {'' if th is None else f'{th:+.2f}':>7}")
    ax.set_xlabel(label)
    ax.set_ylabel("l2 error")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
fig.suptitle("Sparse linear regression under local differential privacy")
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("ldp_rates.png", dpi=120)
    print("figure saved to ldp_rates.png")
plt.show()
