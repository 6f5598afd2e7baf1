"""
=======================================================================
Parameter-estimation rates of softmax, temperature and activation gates
=======================================================================

Nguyen, Akbarian and Ho (ICML 2024) show that a temperature in a linear softmax gate
(the dense-to-sparse gate ``beta_1^T x / tau + beta_0``) makes the gate parameters
non-identifiable along the scaling ``(beta_1, tau) -> (c beta_1, c tau)``: their estimation
rates are slower than any polynomial. Passing the linear layer through a non-linear,
non-homogeneous activation (``tanh(beta_1^T x) / tau + beta_0``) restores polynomial rates.

We simulate from a two-expert Gaussian mixture of experts, fit
:class:`~sparsestat.mixture.GaussianMoERegressor` by EM started at the true parameters (as the
companion paper's simulations do), and plot the Voronoi loss
(:func:`~sparsestat.metrics.voronoi_loss`) against the sample size on log-log axes, with the
fitted slopes. For the dense-to-sparse gate we plot both the loss on the identifiable
``beta_1 / tau`` and the raw temperature error ``|tau_hat - tau*|``.

The truths are in the curved, non-saturated regime of the activation
(``|beta_1^T x| <= 4``): a saturated tanh is a step function and makes ``(beta_1, tau)``
practically non-identifiable at any n.
"""

import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sparsestat.datasets import make_moe_regression
from sparsestat.metrics import voronoi_loss
from sparsestat.mixture import GaussianMoERegressor

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
ns = np.array([500, 2000]) if QUICK else np.geomspace(1000, 32000, 6).astype(int)
n_rep = 1 if QUICK else 4

experts = {
    "coef_": np.array([[1.0], [-2.0]]),
    "intercept_": np.array([1.5, -1.0]),
    "variances_": np.array([0.1, 0.2]),
}
settings = {
    "softmax": (
        dict(experts, gate_coef_=np.array([[2.0], [0.0]]), gate_intercept_=np.array([0.5, 0.0])),
        (-1.0, 1.0),
    ),
    "dense_to_sparse": (
        dict(
            experts,
            gate_coef_=np.array([[1.0], [0.0]]),
            gate_intercept_=np.array([0.5, 0.0]),
            temperature_=0.5,
        ),
        (-1.0, 1.0),
    ),
    "activation_dense_to_sparse": (
        dict(
            experts,
            gate_coef_=np.array([[2.0], [-1.0]]),
            gate_intercept_=np.array([0.3, 0.0]),
            temperature_=1.0,
        ),
        (-2.0, 2.0),
    ),
}


def fit_loss(gate, truth, x_range, n, seed):
    X, y, params = make_moe_regression(
        n, truth=truth, gate=gate, x_range=x_range, random_state=seed
    )
    start = {k: v for k, v in params.items() if k.endswith("_")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DTS non-identifiability warning, max_iter reached
        moe = GaussianMoERegressor(
            2,
            gate=gate,
            fit_temperature=True,  # also for the dense-to-sparse gate, as in the paper
            initial_params=start,
            n_init=1,
            max_iter=200,
            tol=1e-8,
        ).fit(X, y)
    loss, parts = voronoi_loss(moe, params, return_parts=True)
    return loss, parts.get("temperature_raw", np.nan)


results = {}
for gate, (truth, x_range) in settings.items():
    losses = np.array(
        [
            [fit_loss(gate, truth, x_range, n, 100 * i + j) for j in range(n_rep)]
            for i, n in enumerate(ns)
        ]
    )
    results[gate] = losses.mean(axis=1)  # (len(ns), 2): loss, |d tau|


def slope(y):
    return np.polyfit(np.log(ns), np.log(y), 1)[0]


fig, ax = plt.subplots(figsize=(6.4, 4.5))
labels = {
    "softmax": "softmax gate",
    "dense_to_sparse": "dense-to-sparse, loss on beta_1/tau",
    "activation_dense_to_sparse": "tanh activation gate",
}
print("| gate | slope of mean Voronoi loss |")
print("|---|---|")
for gate, res in results.items():
    s = slope(res[:, 0])
    ax.loglog(ns, res[:, 0], "o-", label=f"{labels[gate]} (slope {s:.2f})")
    print(f"| {gate} | {s:.2f} |")
dtau = results["dense_to_sparse"][:, 1]
s_tau = slope(dtau)
ax.loglog(ns, dtau, "s--", label=f"dense-to-sparse, |tau - tau*| (slope {s_tau:.2f})")
print(f"| dense_to_sparse, temperature error | {s_tau:.2f} |")
ax.loglog(ns, results["softmax"][0, 0] * np.sqrt(ns[0] / ns), "k:", label="n^(-1/2)")
ax.set_xlabel("sample size n")
ax.set_ylabel("mean Voronoi loss")
ax.set_title("Parameter estimation rates (EM started at the truth)")
ax.legend(fontsize=8)
fig.tight_layout()

# Run as a script (not in the documentation gallery), the figure is saved in the working
# directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("temperature_rates.png", dpi=120)
    print("figure saved to temperature_rates.png")
